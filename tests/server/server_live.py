"""Helpers of the server tests: datasets on disk, the app in-process, a real server process.

Owns: :func:`make_datasets` (small precomputed datasets under a directory, with the arrays
they hold), :class:`InProcess` (the app driven through httpx's ASGI transport, lifespan
included, behind a blocking API) and :class:`LiveServer` (``bigarrays serve`` as a
subprocess on a free 127.0.0.1 port, polled on /healthz and stopped by its pid).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

import anyio.from_thread
import httpx
import numpy as np

import bigarrays_core as bc

__all__ = ["SHARDING", "InProcess", "LiveServer", "free_port", "make_datasets", "tensorstore_sharded"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_datasets(root: str, rng: np.random.Generator) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Datasets under ``root``: ``{name: url}`` and ``{name: its mip-0 voxels (x, y, z, c)}``.

    em:    uint16, negative voxel offset, edge chunks clipped on every axis, 2 mips (mip 1 empty)
    zst:   uint8, zstd-compressed raw chunks
    gz:    uint8, gzip-compressed raw chunks
    bl:    uint16, blosc-compressed raw chunks
    rgb:   uint8, 3 channels
    seg:   uint32, compressed_segmentation + zstd
    holes: uint8, only some chunks written (the rest missing)
    """
    specs: dict[str, dict[str, Any]] = {
        "em": dict(dtype="uint16", size=(150, 100, 70), chunk_size=(64, 64, 32), voxel_offset=(-64, 10, 5),
                   num_mips=2),
        "zst": dict(dtype="uint8", size=(128, 96, 64), chunk_size=(64, 64, 32), compression="zstd"),
        "gz": dict(dtype="uint8", size=(128, 96, 64), chunk_size=(64, 64, 32), compression="gzip"),
        "bl": dict(dtype="uint16", size=(100, 64, 40), chunk_size=(32, 32, 16), compression="blosc"),
        "rgb": dict(dtype="uint8", size=(64, 48, 20), chunk_size=(32, 32, 16), num_channels=3),
        "seg": dict(dtype="uint32", size=(64, 64, 32), chunk_size=(32, 32, 16), encoding="compressed_segmentation",
                    compression="zstd"),
        "holes": dict(dtype="uint8", size=(128, 128, 64), chunk_size=(64, 64, 32)),
    }
    urls: dict[str, str] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, spec in specs.items():
        url = f"file://{os.path.join(root, name)}"
        ba = bc.create(url, resolution=(8, 8, 40), **spec)
        if name == "seg":
            data = rng.integers(0, 6, size=ba.shape, dtype=np.uint32) * 1000
        else:
            info = np.iinfo(ba.dtype)
            data = rng.integers(info.min, info.max, size=ba.shape, dtype=ba.dtype, endpoint=True)
        if name == "holes":
            data[:] = 0
            data[0:64, 0:64, 0:32] = rng.integers(1, 255, size=(64, 64, 32, 1), dtype=np.uint8)
            ba[0:64, 0:64, 0:32] = data[0:64, 0:64, 0:32]
        else:
            ba.write(ba.bounds, data)
        urls[name] = url
        arrays[name] = np.asfortranarray(data)
    return urls, arrays


class InProcess:
    """The app run in-process (lifespan included) with a blocking httpx-like API.

    Requests say ``Accept-Encoding: identity`` unless they pass their own.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._stack = AsyncExitStack()
        self.client: httpx.AsyncClient = self._portal.call(self._start)

    async def _start(self) -> httpx.AsyncClient:
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        transport = httpx.ASGITransport(app=self.app)
        # Plain bodies unless a test asks for a content coding (httpx would ask for gzip and zstd).
        return await self._stack.enter_async_context(httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers={"Accept-Encoding": "identity"}))

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(lambda: self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)

    def close(self) -> None:
        try:
            self._portal.call(self._stack.aclose)
        finally:
            self._portal_cm.__exit__(None, None, None)


class LiveServer:
    """``bigarrays serve ...`` (through ``bigarrays_cli.main``) on a free port of 127.0.0.1.

    The server runs in its own session so that :meth:`stop` ends it and its worker
    processes by that session's id, and nothing else.
    """

    def __init__(self, datasets: Mapping[str, str], log_path: str, *, workers: int = 1, args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-c", "import sys; from bigarrays_cli import main; sys.exit(main())", "serve",
               *(f"{k}={v}" for k, v in datasets.items()),
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
               "--log-level", "warning", *args]
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(60.0)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.log()
                raise RuntimeError(f"bigarrays serve exited with {self.proc.returncode}:\n{out}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"bigarrays serve did not answer /healthz on {self.url} within {timeout} s")

    def pids(self) -> list[int]:
        """The server's process and its worker processes."""
        import psutil

        parent = psutil.Process(self.proc.pid)
        return [parent.pid] + [c.pid for c in parent.children(recursive=True)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the session this server (and its workers) started
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


#: A sharding spec TensorStore writes and Neuroglancer reads: gzip'd chunks and minishard
#: indexes, identity hash, a non-zero preshift.
SHARDING = {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 2, "hash": "identity", "minishard_bits": 2,
            "shard_bits": 3, "minishard_index_encoding": "gzip", "data_encoding": "gzip"}


def tensorstore_sharded(path: str, data: np.ndarray, chunk_size: Sequence[int] = (32, 32, 16),
                        resolution: Sequence[float] = (8, 8, 8), encoding: str = "raw",
                        layer_type: str = "image") -> Any:
    """Write ``data`` ``(x, y, z, c)`` as a sharded precomputed volume with TensorStore (its
    own writer, not bigarrays'); returns TensorStore's local handle of it."""
    import tensorstore as ts

    x, y, z, c = data.shape
    scale: dict[str, Any] = {"size": [x, y, z], "encoding": encoding, "chunk_size": list(chunk_size),
                             "resolution": list(resolution), "sharding": SHARDING}
    if encoding == "compressed_segmentation":
        scale["compressed_segmentation_block_size"] = [8, 8, 8]
    spec = {"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/",
            "multiscale_metadata": {"type": layer_type, "data_type": data.dtype.name, "num_channels": c},
            "scale_metadata": scale, "create": True, "delete_existing": True}
    store = ts.open(spec).result()
    store[...] = data
    return ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/"}).result()
