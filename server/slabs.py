"""Streaming a cutout: the byte-contiguous pieces of its body, read and sent one at a time.

Owns: :func:`pieces` (pure) and :func:`stream_body` (the async body iterator).

The body is the Fortran-order bytes of ``(x, y, z, c)``, so for one channel a run of
whole z-planes is contiguous, and so is a band of whole x-rows inside one z-plane. Pieces
are one chunk-row thick in z (aligned to the grid, so a chunk is decoded once per piece),
thinner when that exceeds ``max_bytes``: a few z-planes, or y-bands of one plane. With
several channels the channel is the outermost loop. Memory is about two pieces (the one
being sent and the next being read), whatever the cutout's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.to_thread
from bigarrays_server.bbox import RequestBox
from bigarrays_server.reader import ChunkReader, body_view

import bigarrays_core as bc

__all__ = ["pieces", "stream_body"]

Piece = tuple[bc.Box, tuple[int, int]]


def pieces(req: RequestBox, grid: bc.ChunkGrid, max_bytes: int) -> Iterator[Piece]:
    """The contiguous pieces of the body of ``req``, in output order."""
    (x0, y0, z0), (x1, y1, z1) = req.box.start, req.box.stop
    c0, c1 = req.channels
    channel_runs = [(c0, c1)] if c1 - c0 == 1 else [(c, c + 1) for c in range(c0, c1)]
    plane = (x1 - x0) * (y1 - y0) * req.dtype.itemsize
    row = (x1 - x0) * req.dtype.itemsize
    oz, cz = grid.voxel_offset[2], grid.chunk_size[2]
    for chans in channel_runs:
        z = z0
        while z < z1:
            row_end = min(z1, oz + ((z - oz) // cz + 1) * cz)
            planes = max(1, max_bytes // plane) if plane else row_end - z
            if planes >= 1 and plane <= max_bytes:
                for a in range(z, row_end, planes):
                    yield bc.Box((x0, y0, a), (x1, y1, min(row_end, a + planes))), chans
            else:
                rows = max(1, max_bytes // row)
                for zz in range(z, row_end):
                    for b in range(y0, y1, rows):
                        yield bc.Box((x0, b, zz), (x1, min(y1, b + rows), zz + 1)), chans
            z = row_end


def read_piece(reader: ChunkReader, ba: bc.BigArray, piece: Piece) -> memoryview:
    """The body bytes of one piece (blocking): a view of the Fortran-ordered slab, not a copy."""
    box, chans = piece
    return body_view(reader.read_box(ba, box, chans))


async def stream_body(reader: ChunkReader, ba: bc.BigArray, req: RequestBox, max_bytes: int,
                      first: tuple[Piece, memoryview] | None = None,
                      prefix: bytes = b"") -> AsyncIterator[bytes | memoryview]:
    """Yield ``prefix`` then every piece's bytes, reading the next piece while one is sent.

    ``first`` is a piece already read (the route reads it before answering, so that a
    failing store gives an error status instead of a truncated body). An error after the
    headers are sent aborts the connection; ``Content-Length`` lets the client notice.
    """
    it = pieces(req, grid=ba.grid, max_bytes=max_bytes)
    if first is not None:
        next(it)
        data = first[1]
    else:
        piece = next(it, None)
        if piece is None:
            if prefix:
                yield prefix
            return
        data = await anyio.to_thread.run_sync(read_piece, reader, ba, piece)
    if prefix:
        yield prefix
    for piece in it:
        # Read the next piece in a worker thread while this one is being sent.
        pending = asyncio.ensure_future(anyio.to_thread.run_sync(read_piece, reader, ba, piece))
        try:
            yield data
            data = await pending
        finally:
            if not pending.done():
                pending.cancel()
    yield data
