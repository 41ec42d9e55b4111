"""Streaming a cutout: the byte-contiguous pieces of its body, read and sent one at a time.

Owns: :func:`pieces` (pure) and :func:`stream_body` (the async body iterator).

The body is the Fortran-order bytes of ``(x, y, z, c)``: the core's splitter
(:func:`bigarrays_core.geometry.split_box` with ``aligned=False``) cuts each channel's box
into contiguous pieces of at most ``max_bytes``, on the chunk grid's lines where it can (so
a chunk is rarely read for two pieces). With several channels the channel is the
outermost loop. Memory is about two pieces (the one being sent and the next being read),
whatever the cutout's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.to_thread
from bigarrays_server.bbox import RequestBox
from bigarrays_server.reader import ChunkReader, body_view

import bigarrays_core as bc
from bigarrays_core.geometry import split_box

__all__ = ["pieces", "stream_body"]

Piece = tuple[bc.Box, tuple[int, int]]


def pieces(req: RequestBox, grid: bc.ChunkGrid, max_bytes: int) -> Iterator[Piece]:
    """The contiguous pieces of the body of ``req``, in output order (one channel at a time
    when there are several: the channel is the slowest axis of the body)."""
    c0, c1 = req.channels
    channel_runs = [(c0, c1)] if c1 - c0 == 1 else [(c, c + 1) for c in range(c0, c1)]
    for chans in channel_runs:
        parts = split_box(req.box, grid, req.dtype.itemsize, max_bytes, aligned=False)
        assert parts is not None  # no piece limit
        for part in parts:
            yield part, chans


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
