"""The hot path: cached chunks answered in pure ASGI, without FastAPI's routing.

Owns: :class:`ChunkFastPath`, the outermost middleware of the app. It answers
``GET``/``HEAD /v1/{ds}/chunks/{mip}/{chunk}`` in the raw format (no query string or
``?format=raw``; no ``Accept`` or one that negotiates to raw) when the chunk is in the
worker's cache: prebuilt headers, and the cached array itself as the body (a view, no
copy). Everything else -- a cache miss, a malformed name, another format, another route,
any error -- falls through to the FastAPI app, which is the reference for every answer.
What the fast path sends is exactly what the chunk route would send for the same
request: the same status, headers in the same order (the route's, then CORS from the
same :class:`~bigarrays_server.cors.CorsPolicy`), body, cache hit count and metrics line.

Headers are built once per URL path (the first hit) and kept in a bounded table that
holds no chunk data, so the cache's byte budget still bounds what a worker keeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from bigarrays_server.bbox import RequestBox
from bigarrays_server.cache import MISSING
from bigarrays_server.cors import CorsPolicy
from bigarrays_server.errors import ApiError
from bigarrays_server.formats import MEDIA_TYPES, negotiate
from bigarrays_server.metrics import Metrics
from bigarrays_server.reader import ChunkReader, body_view
from bigarrays_server.routes_chunks import chunk_ref
from bigarrays_server.routes_cutout import describe_headers
from bigarrays_server.state import ServerState
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

import bigarrays_core as bc

__all__ = ["ROUTE", "ChunkFastPath"]

#: The route template the fast path serves (and counts its requests under in /metrics).
ROUTE: Final = "/v1/{ds}/chunks/{mip}/{chunk}"
_RAW_QUERIES: Final = frozenset({b"", b"format=raw"})
_PLAIN_ACCEPTS: Final = frozenset({b"*/*", b"application/octet-stream"})
_MAX_TARGETS: Final = 65536


class _Target:
    """What one URL path resolves to: the chunk's cache key and its response headers."""

    __slots__ = ("cache_key", "headers")

    def __init__(self, cache_key: object, headers: list[tuple[bytes, bytes]]) -> None:
        self.cache_key = cache_key
        self.headers = headers


class ChunkFastPath:
    """Answer cache hits of the chunk route directly; pass everything else to ``app``.

    Being the outermost layer, it also lets the worker notice other workers' writes
    (:meth:`ServerState.observe_writes`) before any request reads the cache.

    Parameters
    ----------
    app:
        The app to fall through to (FastAPI's middleware stack).
    cors:
        The CORS policy the app's :class:`~bigarrays_server.cors.CorsMiddleware` applies.
    metrics:
        The worker's metrics, where fast answers are counted like routed ones.
    state:
        Returns the worker's :class:`ServerState`, or None before the lifespan has built it
        (then every request falls through).
    """

    def __init__(self, app: ASGIApp, cors: CorsPolicy, metrics: Metrics,
                 state: Callable[[], ServerState | None]) -> None:
        self.app = app
        self.cors = cors
        self.metrics = metrics
        self.state = state
        self._targets: dict[str, _Target | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state() if scope["type"] == "http" else None
        if state is not None:
            state.observe_writes()  # another worker's write empties this worker's cache first
        if state is not None and scope["method"] in ("GET", "HEAD") and scope["query_string"] in _RAW_QUERIES:
            start = time.perf_counter()
            answer = self._answer(scope, state)
            if answer is not None:
                headers, body = answer
                method = scope["method"]
                if method == "HEAD":
                    body = b""
                status, sent = 500, 0  # what MetricsMiddleware records when sending fails
                try:
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    status = 200
                    await send({"type": "http.response.body", "body": body})
                    sent = len(body)
                finally:
                    self.metrics.observe(method, ROUTE, status, time.perf_counter() - start, sent)
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope, state: ServerState) -> tuple[list[tuple[bytes, bytes]], memoryview | bytes] | None:
        """(headers, body) for a cache hit of the chunk route; None to fall through."""
        path: str = scope["path"]
        if not path.startswith("/v1/") or path.count("/") != 5 or path.split("/", 4)[3] != "chunks":
            return None
        origin = None
        for name, value in scope["headers"]:
            if name == b"accept":
                if value not in _PLAIN_ACCEPTS and not _negotiates_raw(value):
                    return None
            elif name == b"origin" and origin is None:
                origin = value.decode("latin-1")
        target = self._targets.get(path)
        if target is None:
            if path in self._targets:
                return None  # known not to be a chunk of this server
            target = _resolve(state, path)
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            self._targets[path] = target
            if target is None:
                return None
        arr = state.cache.peek(target.cache_key)
        if arr is None or arr is MISSING:
            return None
        return target.headers + list(self.cors.headers_for(origin)), body_view(arr)


def _negotiates_raw(accept: bytes) -> bool:
    try:
        return negotiate(None, accept.decode("latin-1"), ("raw", "npy", "encoded")) == "raw"
    except ApiError:
        return False


def _resolve(state: ServerState, path: str) -> _Target | None:
    """The target of ``/v1/{ds}/chunks/{mip}/{chunk}``, or None for any other (or bad) path."""
    parts = path.split("/")
    mip = parts[4] if len(parts) == 6 and parts[3] == "chunks" else ""
    # Only the canonical spelling of a mip (and none too long to be one).
    if not (mip.isascii() and mip.isdigit()) or len(mip) > 9 or str(int(mip)) != mip:
        return None
    try:
        ba = state.datasets.get(parts[2]).at(int(mip))
        ref = chunk_ref(ba, parts[5])
    except (ApiError, bc.BigArraysError):
        return None
    req = RequestBox(ref.box, (0, ba.num_channels), ba.dtype)
    # The headers the chunk route sends, built by the same code and the same Response class.
    route_headers = Response(b"", headers=describe_headers(req, ba, "raw", req.nbytes),
                             media_type=MEDIA_TYPES["raw"]).raw_headers
    return _Target(ChunkReader.cache_key(ba, ref), route_headers)
