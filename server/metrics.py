"""Prometheus-style metrics of one worker: requests, latency, cache.

Owns: :class:`Metrics` (counters and a latency histogram, thread-safe),
:class:`MetricsMiddleware` (a pure ASGI middleware that times every request and labels it
with its route template, not its raw path, so label sets stay bounded) and
:func:`render` (the text exposition format, version 0.0.4).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import defaultdict
from typing import Any

from bigarrays_server.cache import ChunkCache
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BUCKETS", "Metrics", "MetricsMiddleware", "render"]

#: Latency histogram bucket bounds, seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Request counts by (method, route, status) and a latency histogram by route.

    ``buckets[route][i]`` counts the requests that took more than ``BUCKETS[i - 1]`` and at
    most ``BUCKETS[i]`` seconds (the last slot: more than ``BUCKETS[-1]``); :func:`render`
    accumulates them. One observation is a few dictionary updates under a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.bytes_sent: dict[str, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float, sent: int) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.buckets[route][bisect_left(BUCKETS, seconds)] += 1
            self.sums[route] += seconds
            self.counts[route] += 1
            self.bytes_sent[route] += sent


class MetricsMiddleware:
    """Time each HTTP request from its start to the end of its body."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        sent = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - start, sent)


def _labels(**labels: Any) -> str:
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in labels.items())
    return "{" + inner + "}"


def render(metrics: Metrics, cache: ChunkCache) -> str:
    """The metrics in Prometheus text format."""
    lines: list[str] = []
    with metrics._lock:
        lines += ["# HELP bigarrays_requests_total HTTP requests by method, route and status.",
                  "# TYPE bigarrays_requests_total counter"]
        for (method, route, status), n in sorted(metrics.requests.items()):
            lines.append(f"bigarrays_requests_total{_labels(method=method, route=route, status=status)} {n}")
        lines += ["# HELP bigarrays_request_duration_seconds Request latency, to the end of the body.",
                  "# TYPE bigarrays_request_duration_seconds histogram"]
        for route in sorted(metrics.counts):
            cumulative = 0
            for bound, n in zip(BUCKETS, metrics.buckets[route], strict=False):
                cumulative += n
                lines.append(f"bigarrays_request_duration_seconds_bucket{_labels(route=route, le=bound)} {cumulative}")
            lines.append(f"bigarrays_request_duration_seconds_bucket{_labels(route=route, le='+Inf')} "
                         f"{metrics.counts[route]}")
            lines.append(f"bigarrays_request_duration_seconds_sum{_labels(route=route)} {metrics.sums[route]:.6f}")
            lines.append(f"bigarrays_request_duration_seconds_count{_labels(route=route)} {metrics.counts[route]}")
        lines += ["# HELP bigarrays_response_bytes_total Body bytes sent, by route.",
                  "# TYPE bigarrays_response_bytes_total counter"]
        for route, n in sorted(metrics.bytes_sent.items()):
            lines.append(f"bigarrays_response_bytes_total{_labels(route=route)} {n}")
    s = cache.stats
    for name, kind, value, text in (
        ("cache_hits_total", "counter", s.hits, "Decoded-chunk cache hits."),
        ("cache_misses_total", "counter", s.misses, "Decoded-chunk cache misses (chunks loaded)."),
        ("cache_coalesced_total", "counter", s.coalesced, "Misses served by another request's load."),
        ("cache_evictions_total", "counter", s.evictions, "Chunks evicted to stay within the budget."),
        ("cache_invalidations_total", "counter", s.invalidations, "Chunks dropped by writes."),
        ("cache_bytes", "gauge", cache.current_bytes, "Bytes of decoded chunks held."),
        ("cache_max_bytes", "gauge", cache.max_bytes, "The cache budget of this worker."),
        ("cache_entries", "gauge", len(cache), "Chunks held."),
    ):
        lines += [f"# HELP bigarrays_{name} {text}", f"# TYPE bigarrays_{name} {kind}", f"bigarrays_{name} {value}"]
    return "\n".join(lines) + "\n"
