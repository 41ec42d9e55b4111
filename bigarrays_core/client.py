"""The REST client of a bigarrays server: ``Client(url)["em"]`` indexes like a BigArray.

Owns: :class:`Client` and :class:`RemoteArray`. A remote array takes the same indices as a
:class:`~bigarrays_core.BigArray` (absolute coordinates, ``:`` for the bounds, integers
drop axes, ``...``) and returns the same arrays: Fortran-ordered ``(x, y, z, c)`` of the
dataset's dtype. Large reads are split into chunk-aligned pieces fetched concurrently;
429/503/504 and dropped connections are retried with backoff (honouring
``Retry-After``); a 413 is followed by fetching the server's ``detail.split``. HTTP errors
become the core's errors (400 -> :class:`SelectionError`, 404 -> :class:`DatasetNotFoundError`
or :class:`ChunkNotFoundError`, 409 -> :class:`AlignmentError` with ``nearest``, ...).

Needs ``httpx`` (a dependency of bigarrays), imported when a Client is made.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import numpy as np

from bigarrays_core.array.indexing import Selection, parse_selection
from bigarrays_core.errors import (
    AlignmentError,
    BigArraysError,
    ChunkNotFoundError,
    DatasetNotFoundError,
    OutOfBoundsError,
    SelectionError,
    StorageError,
    StoragePermissionError,
    StorageTimeoutError,
    WriteDataError,
)
from bigarrays_core.geometry import Box, ChunkGrid

__all__ = ["Client", "RemoteArray"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_DEFAULT_PIECE_BYTES = 64 * 2**20


def _parse_box(text: str) -> tuple[Box, tuple[int, int] | None]:
    parts = text.split(",")
    if len(parts) == 4:
        c0, _, c1 = parts[3].partition(":")
        return Box.parse(",".join(parts[:3])), (int(c0), int(c1))
    return Box.parse(text), None


class Client:
    """A connection to a bigarrays server.

    Parameters
    ----------
    url:
        The server's base URL, e.g. ``http://127.0.0.1:8000``.
    token:
        The server's write token, sent as ``Authorization: Bearer`` on writes.
    timeout:
        Seconds per request (connect, read between bytes).
    max_workers:
        Pieces fetched at once.
    piece_bytes:
        Largest piece one request asks for; bigger reads are split on the chunk grid.
    retries:
        Attempts after the first for 429/502/503/504 and broken connections.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, max_workers: int = 4,
                 piece_bytes: int = _DEFAULT_PIECE_BYTES, retries: int = 5, backoff: float = 0.2,
                 transport: Any = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.token = token
        self.piece_bytes = max(1, int(piece_bytes))
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                  limits=httpx.Limits(max_connections=max_workers + 2))
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="bigarrays-client")
        self._infos: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request, retrying transient failures; raise the core's error for an error status."""
        import httpx

        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    kind = StorageTimeoutError if isinstance(exc, httpx.TimeoutException) else StorageError
                    raise kind(f"{method} {self.url}{path} failed after {attempt + 1} attempts: {exc!r}") from exc
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    raise self._error(method, path, response)
                wait = response.headers.get("retry-after")
                if wait is not None and wait.isdigit():
                    time.sleep(min(float(wait), 30.0))
                    attempt += 1
                    continue
            time.sleep(random.uniform(0, min(10.0, self.backoff * 2**attempt)))
            attempt += 1

    def _error(self, method: str, path: str, response: Any) -> BigArraysError:
        try:
            body = response.json()
            code, message, detail = body.get("error", ""), body.get("message", ""), body.get("detail") or {}
        except ValueError:
            code, message, detail = "", response.text[:200], {}
        text = f"{method} {self.url}{path}: {response.status_code} {code}: {message}"
        status = response.status_code
        exc: BigArraysError
        if status == 409 and code == "unaligned":
            nearest = detail.get("nearest")
            exc = AlignmentError(text, box=_parse_box(detail["bbox"])[0] if detail.get("bbox") else None,
                                 nearest=_parse_box(nearest)[0] if nearest else None)
        elif status == 404 and code == "missing_chunk":
            exc = ChunkNotFoundError(text, key=detail.get("key"))
        elif status == 404:
            exc = DatasetNotFoundError(text)
        elif status == 400 and code == "bad_data":
            exc = WriteDataError(text)
        elif status == 400 and code == "out_of_bounds":
            exc = OutOfBoundsError(text)
        elif status in (400, 406, 413):
            exc = SelectionError(text)
        elif status in (401, 403):
            exc = StoragePermissionError(text)
        elif status == 504:
            exc = StorageTimeoutError(text)
        else:
            exc = StorageError(text)
        exc.status = status  # type: ignore[attr-defined]
        exc.detail = detail  # type: ignore[attr-defined]
        return exc

    # -- public API ------------------------------------------------------------------
    def datasets(self) -> list[dict[str, Any]]:
        """The server's datasets: ``[{"name", "url", "shape", "dtype", ...}]``."""
        result: list[dict[str, Any]] = self.request("GET", "/v1/datasets").json()
        return result

    def info(self, name: str) -> dict[str, Any]:
        """The server's ``/v1/{name}/info`` (cached per client)."""
        with self._lock:
            cached = self._infos.get(name)
        if cached is None:
            cached = self.request("GET", f"/v1/{quote(name, safe='')}/info").json()
            with self._lock:
                self._infos[name] = cached
        return cached

    def __getitem__(self, name: str) -> RemoteArray:
        return RemoteArray(self, name, 0)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


class RemoteArray:
    """One mip of a dataset on a server, indexed like a :class:`~bigarrays_core.BigArray`."""

    def __init__(self, client: Client, name: str, mip: int = 0) -> None:
        self.client = client
        self.name = name
        self._meta = client.info(name)
        scales = self._meta["scales"]
        if not 0 <= mip < len(scales):
            raise DatasetNotFoundError(f"dataset {name!r} on {client.url} has no mip {mip} (it has {len(scales)})")
        self._scale = scales[mip]
        self.mip = mip
        self.dtype = np.dtype(self._meta["dtype"])

    # -- description, as BigArray ----------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        return dict(self._meta["info"])

    @property
    def num_channels(self) -> int:
        return int(self._meta["num_channels"])

    @property
    def num_mips(self) -> int:
        return len(self._meta["scales"])

    @property
    def voxel_offset(self) -> tuple[int, int, int]:
        x, y, z = self._scale["voxel_offset"]
        return (int(x), int(y), int(z))

    @property
    def chunk_size(self) -> tuple[int, int, int]:
        x, y, z = self._scale["chunk_size"]
        return (int(x), int(y), int(z))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        x, y, z = self._scale["size"]
        return (int(x), int(y), int(z), self.num_channels)

    @property
    def bounds(self) -> Box:
        return Box.from_shape(self.voxel_offset, self.shape[:3])

    @property
    def grid(self) -> ChunkGrid:
        return ChunkGrid(self.voxel_offset, self.shape[:3], self.chunk_size)  # type: ignore[arg-type]

    def at_mip(self, mip: int) -> RemoteArray:
        return RemoteArray(self.client, self.name, mip)

    def __repr__(self) -> str:
        return (f"RemoteArray({self.client.url!r}, {self.name!r}, mip={self.mip}, shape={self.shape}, "
                f"dtype={self.dtype.name})")

    # -- reading ---------------------------------------------------------------------
    def _path(self, box: Box, channels: tuple[int, int]) -> str:
        return f"/v1/{quote(self.name, safe='')}/cutout/{self.mip}/{box.to_colon()},{channels[0]}:{channels[1]}"

    def __getitem__(self, key: Any) -> np.ndarray:
        sel = parse_selection(key, self.bounds, self.num_channels)
        return sel.drop_axes(self.read(sel.box, sel.channels))

    def read(self, box: Box | str, channels: tuple[int, int] | None = None) -> np.ndarray:
        """The 4-D ``(x, y, z, c)`` voxels of ``box``, fetched in concurrent chunk-aligned pieces."""
        if isinstance(box, str):
            box = Box.parse(box)
        channels = channels or (0, self.num_channels)
        x, y, z = box.shape
        out = np.zeros((x, y, z, max(0, channels[1] - channels[0])), dtype=self.dtype, order="F")
        if out.size == 0:
            return out
        pieces = list(self._pieces(box, channels))
        futures = [self.client._pool.submit(self._fetch_into, out, box, p, channels) for p in pieces]
        errors = [f.exception() for f in futures]
        for exc in errors:
            if exc is not None:
                raise exc
        return out

    def _pieces(self, box: Box, channels: tuple[int, int]) -> Iterator[Box]:
        """Tiles of ``box`` cut on the chunk grid, each of at most ``piece_bytes`` (or one chunk)."""
        grid = self.grid
        bpv = self.dtype.itemsize * (channels[1] - channels[0])
        # Grow the tile one axis at a time (x first: its bytes are contiguous), in whole chunks.
        tile = [1, 1, 1]
        for axis in range(3):
            cells = -(-box.shape[axis] // grid.chunk_size[axis]) + 1
            while tile[axis] < cells:
                trial = list(tile)
                trial[axis] += 1
                voxels = int(np.prod([t * c for t, c in zip(trial, grid.chunk_size, strict=True)]))
                if bpv * voxels > self.client.piece_bytes:
                    break
                tile = trial
        step = [t * c for t, c in zip(tile, grid.chunk_size, strict=False)]
        # Cut lines: the grid lines every `step` voxels, anchored at voxel_offset.
        cuts = []
        for axis in range(3):
            a, b, o, s = box.start[axis], box.stop[axis], grid.voxel_offset[axis], step[axis]
            first = o + ((a - o) // s + 1) * s
            cuts.append([a, *range(first, b, s), b])
        for z0, z1 in zip(cuts[2], cuts[2][1:], strict=False):
            for y0, y1 in zip(cuts[1], cuts[1][1:], strict=False):
                for x0, x1 in zip(cuts[0], cuts[0][1:], strict=False):
                    yield Box((x0, y0, z0), (x1, y1, z1))

    def _fetch_into(self, out: np.ndarray, outer: Box, piece: Box, channels: tuple[int, int]) -> None:
        response = None
        try:
            response = self.client.request("GET", self._path(piece, channels), params={"format": "raw"})
        except SelectionError as exc:
            split = getattr(exc, "detail", {}).get("split") if getattr(exc, "status", None) == 413 else None
            if not split or split == [f"{piece.to_colon()},{channels[0]}:{channels[1]}"]:
                raise
            for text in split:
                self._fetch_into(out, outer, _parse_box(text)[0], channels)
            return
        shape = tuple(int(n) for n in response.headers["x-shape"].split(","))
        arr = np.frombuffer(response.content, dtype=self.dtype).reshape(shape, order="F")
        out[piece.slices_in(outer) + (slice(None),)] = arr

    # -- writing ---------------------------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        sel = parse_selection(key, self.bounds, self.num_channels)
        self._write(sel, value)

    def write(self, box: Box | str, data: Any) -> None:
        """Save 4-D (or 3-D for one channel) ``data`` at ``box`` through the server."""
        if isinstance(box, str):
            box = Box.parse(box)
        self._write(Selection(box, (0, self.num_channels), ()), data)

    def _write(self, sel: Selection, value: Any) -> None:
        """Check ``value`` as :meth:`BigArray.__setitem__` does, then PUT the 4-D box."""
        target = sel.shape4
        where = f"{sel.box} channels {sel.channels[0]}:{sel.channels[1]}"
        if np.ndim(value) == 0:
            if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
                try:
                    cast = np.asarray(value, dtype=self.dtype)
                except (OverflowError, ValueError):
                    cast = None
                if cast is None or cast != value:
                    raise WriteDataError(f"value {value!r} does not fit dtype {self.dtype.name} (writing {where})")
            elif not np.can_cast(np.asarray(value).dtype, self.dtype, "safe"):
                raise WriteDataError(f"cannot write {np.asarray(value).dtype.name} into a {self.dtype.name} "
                                     f"volume without loss (writing {where})")
            arr = np.broadcast_to(np.asarray(value, dtype=self.dtype), target)
        else:
            arr = np.asarray(value)
            if arr.dtype != self.dtype and not np.can_cast(arr.dtype, self.dtype, "safe"):
                raise WriteDataError(f"cannot write {arr.dtype.name} data into a {self.dtype.name} volume "
                                     f"without loss (writing {where}); cast it first")
            if arr.shape == sel.shape:
                arr = arr.reshape(target, order="A")
            elif 3 not in sel.dropped and target[3] == 1 and arr.shape == sel.shape[:-1]:
                arr = arr[..., np.newaxis]
            else:
                raise WriteDataError(f"data of shape {arr.shape} does not fit {where}, which has shape {sel.shape}")
            arr = arr.astype(self.dtype, copy=False)
        body = np.asarray(arr, order="F").tobytes(order="F")
        headers = {"Content-Type": "application/octet-stream"}
        if self.client.token:
            headers["Authorization"] = f"Bearer {self.client.token}"
        self.client.request("PUT", self._path(sel.box, sel.channels), content=body, headers=headers)
