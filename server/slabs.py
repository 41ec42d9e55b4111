"""Streaming a cutout: the byte-contiguous pieces of its body, read and sent one at a time.

Owns: :func:`f_order_runs` and :func:`pieces` (pure) and :func:`stream_body` (the async
body iterator).

The body is the Fortran-order bytes of ``(x, y, z, c)``, behind an optional prefix (the
``.npy`` header). A byte range of it (HTTP ``Range``) is a run of voxels in Fortran order,
which :func:`f_order_runs` cuts into at most seven boxes; the core's splitter
(:func:`bigarrays_core.geometry.split_box` with ``aligned=False``) cuts each into contiguous
pieces of at most ``max_bytes``, on the chunk grid's lines where it can (so a chunk is
rarely read for two pieces). The channel is the slowest axis: a run that spans channels is
read one channel at a time. Memory is about two pieces (the one being sent and the next
being read), whatever the cutout's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import anyio.to_thread
from bigarrays_server.bbox import RequestBox
from bigarrays_server.content_coding import StreamEncoder

import bigarrays_core as bc
from bigarrays_core.geometry import split_box

__all__ = ["BodyPlan", "f_order_runs", "pieces", "stream_body"]

Piece = tuple[bc.Box, tuple[int, int]]
Ranges = list[tuple[int, int]]


def f_order_runs(shape: Sequence[int], start: int, stop: int) -> list[Ranges]:
    """Boxes (per-axis half-open ranges, axis 0 fastest) whose elements, in Fortran order,
    are exactly the linear indices ``[start, stop)`` of an array of ``shape``, in order.

    At most ``2 * len(shape) - 1`` boxes: a partial run of the fastest axis, partial planes,
    ..., whole blocks of the slowest axis, and the same again at the end.
    """
    if start >= stop:
        return []
    if len(shape) == 1:
        return [[(start, stop)]]
    inner = 1
    for n in shape[:-1]:
        inner *= n
    first, last = start // inner, (stop - 1) // inner
    lo, hi = start - first * inner, stop - last * inner
    if first == last:
        return [r + [(first, first + 1)] for r in f_order_runs(shape[:-1], lo, hi)]
    out: list[Ranges] = []
    whole_from = first
    if lo:
        out += [r + [(first, first + 1)] for r in f_order_runs(shape[:-1], lo, inner)]
        whole_from = first + 1
    whole_to = last + 1 if hi == inner else last
    if whole_to > whole_from:
        out.append([(0, n) for n in shape[:-1]] + [(whole_from, whole_to)])
    if hi != inner:
        out += [r + [(last, last + 1)] for r in f_order_runs(shape[:-1], 0, hi)]
    return out


def pieces(req: RequestBox, grid: bc.ChunkGrid, max_bytes: int,
           voxels: tuple[int, int] | None = None) -> Iterator[Piece]:
    """The contiguous pieces of the body of ``req`` (or of its voxels ``[v0, v1)`` in body
    order), in body order, each at most ``max_bytes`` where the grid allows."""
    x0, y0, z0 = req.box.start
    n = req.shape[0] * req.shape[1] * req.shape[2] * req.shape[3]
    v0, v1 = voxels if voxels is not None else (0, n)
    c_first = req.channels[0]
    for (ax, bx), (ay, by), (az, bz), (ac, bc_) in f_order_runs(req.shape, v0, v1):
        box = bc.Box((x0 + ax, y0 + ay, z0 + az), (x0 + bx, y0 + by, z0 + bz))
        for c in range(ac, bc_):  # several channels only for whole boxes: one at a time
            parts = split_box(box, grid, req.dtype.itemsize, max_bytes, aligned=False)
            assert parts is not None  # no piece limit
            for part in parts:
                yield part, (c_first + c, c_first + c + 1)


@dataclass(frozen=True)
class BodyPlan:
    """Which bytes of a cutout's body to send: ``[start, stop)`` of the body (prefix + voxels)."""

    req: RequestBox
    prefix: bytes
    start: int
    stop: int

    @property
    def length(self) -> int:
        """The whole body's length."""
        return len(self.prefix) + self.req.nbytes

    def voxels(self) -> tuple[int, int]:
        """The voxels whose bytes the range touches."""
        isz = self.req.dtype.itemsize
        a = max(self.start - len(self.prefix), 0)
        b = max(self.stop - len(self.prefix), 0)
        return a // isz, -(-b // isz)

    def head_trim(self) -> int:
        """Bytes of the first voxel before the range's start."""
        return max(self.start - len(self.prefix), 0) % self.req.dtype.itemsize

    def voxel_bytes(self) -> int:
        """Bytes of voxel data in the range."""
        return max(self.stop - len(self.prefix), 0) - max(self.start - len(self.prefix), 0)

    def pieces(self, grid: bc.ChunkGrid, max_bytes: int) -> Iterator[Piece]:
        v0, v1 = self.voxels()
        if v1 <= v0:
            return iter(())
        return pieces(self.req, grid, max_bytes, (v0, v1))


async def stream_body(plan: BodyPlan, parts: Iterator[Piece], read: Callable[[Piece], Awaitable[memoryview]],
                      first: memoryview | None, coding: str | None = None) -> AsyncIterator[bytes | memoryview]:
    """Yield the bytes ``[plan.start, plan.stop)`` of the body, in ``coding`` when given.

    ``parts`` are the plan's pieces; ``read(piece)`` is an awaitable-returning reader (the
    route's storage call) giving a piece's bytes; ``first`` is the first piece already read
    (the route reads it before answering, so that a failing store gives an error status
    instead of a cut body). The next piece is read while one is sent. An error after the
    headers are sent aborts the connection; ``Content-Length`` lets the client notice.
    """
    encoder = StreamEncoder(coding) if coding is not None else None

    async def out(data: bytes | memoryview) -> bytes | memoryview:
        if encoder is None or not data:
            return data
        return await anyio.to_thread.run_sync(encoder.encode, data)

    prefix = plan.prefix[plan.start:plan.stop]
    if prefix:
        yield await out(prefix)
    left = plan.voxel_bytes()
    skip = plan.head_trim()
    data = first
    if data is None:
        piece = next(parts, None)
        data = None if piece is None else await read(piece)
    while data is not None and left > 0:
        piece = next(parts, None)
        # Read the next piece in a worker thread while this one is being sent.
        pending = asyncio.ensure_future(read(piece)) if piece is not None else None
        try:
            view = memoryview(data)[skip:skip + left]
            skip = 0
            left -= len(view)
            if len(view):
                yield await out(view)
            data = await pending if pending is not None else None
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
    if encoder is not None:
        yield encoder.finish()
