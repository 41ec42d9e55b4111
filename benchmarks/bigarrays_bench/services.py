"""Processes the server cases need: ``bigarrays serve`` and nginx, on 127.0.0.1 free ports.

Each is started as a child process, waited for until it answers, and stopped by its pid
(SIGTERM, then SIGKILL) when the ``with`` block ends. ``bigarrays serve`` is also waited for
until its processes are idle: a worker answers at once, then loads its paste kernels and
freezes its objects in the background (~0.3 s of CPU each), which a case would otherwise time
in its first reads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

__all__ = ["bigarrays_server", "free_port", "nginx", "throttled_link", "wrk_requests_per_second"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


def _wait_idle(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Until ``proc`` and its children used under 10 ms of CPU in the last 0.3 s."""
    import psutil

    def cpu() -> float:
        total = 0.0
        try:
            root = psutil.Process(proc.pid)
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
        except psutil.Error:
            pass
        return total

    deadline = time.monotonic() + timeout
    last = cpu()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = cpu()
        if now - last < 0.01:
            return
        last = now


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def bigarrays_server(datasets: dict[str, Path], *, workers: int = 1, cache_mb: float = 512,
                     log: Path, args: tuple[str, ...] = ()) -> Iterator[str]:
    """Run ``bigarrays serve NAME=DIR ... [args]``; yields its base URL."""
    port = free_port()
    exe = shutil.which("bigarrays") or ""
    cmd = ([exe] if exe else [sys.executable, "-m", "bigarrays_cli"]) + [
        "serve", *(f"{n}={p}" for n, p in datasets.items()), "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--cache-mb", str(cache_mb), "--log-level", "warning", *args]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/healthz", proc, "bigarrays serve")
        _wait_idle(proc)
        yield base
    finally:
        _stop(proc)


@contextmanager
def nginx(root: Path, scratch: Path, *, workers: int = 2) -> Iterator[str]:
    """Serve the files under ``root`` with nginx (sendfile, no access log); yields its base URL."""
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if exe is None:
        raise FileNotFoundError("nginx is not installed (apt-get install nginx-light)")
    port = free_port()
    scratch.mkdir(parents=True, exist_ok=True)
    conf = scratch / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes {workers};
pid {scratch}/nginx.pid;
error_log {scratch}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {scratch}/body;
    proxy_temp_path {scratch}/proxy;
    fastcgi_temp_path {scratch}/fastcgi;
    uwsgi_temp_path {scratch}/uwsgi;
    scgi_temp_path {scratch}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
""")
    proc = subprocess.Popen([exe, "-c", str(conf), "-p", str(scratch)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/info", proc, "nginx")
        yield base
    finally:
        _stop(proc)


def wrk_requests_per_second(url: str, *, seconds: float, threads: int = 2, connections: int = 16) -> float:
    """Run ``wrk`` against ``url`` and return its Requests/sec (non-2xx answers make it fail)."""
    exe = shutil.which("wrk")
    if exe is None:
        raise FileNotFoundError("wrk is not installed (apt-get install wrk)")
    done = subprocess.run([exe, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", url],
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    if "Non-2xx" in done.stdout:
        raise RuntimeError(f"wrk got error answers from {url}: {done.stdout}")
    for line in done.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"no Requests/sec in wrk's output: {done.stdout}")


@contextmanager
def throttled_link(port: int, mb_per_s: float) -> Iterator[str]:
    """A TCP proxy on 127.0.0.1 to ``port`` whose answers (server to client) pass at most
    ``mb_per_s`` MB/s in all (one token bucket shared by every connection, as one link is):
    a slow network for the cases that ask when compression on the wire pays. Yields its base
    URL; runs in a daemon thread, stopped when the block ends."""
    import asyncio
    import threading

    rate = mb_per_s * 1e6
    loop = asyncio.new_event_loop()
    state = {"next": 0.0}
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limited: bool) -> None:
        try:
            while True:
                data = await reader.read(262144)  # coarse enough for asyncio's timer to hold the rate
                if not data:
                    break
                if limited:
                    now = loop.time()
                    start = max(now, state["next"])
                    state["next"] = start + len(data) / rate
                    if state["next"] > now:
                        await asyncio.sleep(state["next"] - now)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(pipe(client_r, up_w, False), pipe(up_r, client_w, True))
        except asyncio.CancelledError:
            pass  # the link is being shut down

    async def start() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        holder["server"] = server
        holder["port"] = server.sockets[0].getsockname()[1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    async def shutdown() -> None:
        server = holder["server"]
        server.close()  # type: ignore[attr-defined]
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        yield f"http://127.0.0.1:{holder['port']}"
    finally:
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
