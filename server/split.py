"""Splitting a box that is too large into chunk-aligned pieces (the ``detail.split`` of a 413).

Owns: :func:`split_box`. Pieces cut the box only on the chunk grid's lines, cover it
exactly, do not overlap and each hold at most ``max_bytes``; they are whole z-ranges of
the box when a chunk-row of it fits, then y-ranges, then x-ranges. Pure: no I/O.
"""

from __future__ import annotations

import bigarrays_core as bc

__all__ = ["split_box"]

_ORDER = (2, 1, 0)  # cut z first, so pieces are as flat and contiguous as possible


def _nbytes(box: bc.Box, bytes_per_voxel: int) -> int:
    return box.size * bytes_per_voxel


def _with(box: bc.Box, axis: int, a: int, b: int) -> bc.Box:
    start, stop = list(box.start), list(box.stop)
    start[axis], stop[axis] = a, b
    return bc.Box(tuple(start), tuple(stop))  # type: ignore[arg-type]


def split_box(box: bc.Box, grid: bc.ChunkGrid, bytes_per_voxel: int, max_bytes: int,
              max_pieces: int = 10_000) -> list[bc.Box] | None:
    """Chunk-aligned pieces of ``box`` of at most ``max_bytes`` each (``[box]`` if it fits).

    Returns None when more than ``max_pieces`` would be needed. A piece that is one chunk
    (clipped to the box) is returned even if larger than ``max_bytes``: nothing finer is
    chunk-aligned.
    """
    if _nbytes(box, bytes_per_voxel) <= max_bytes:
        return [box]
    if _nbytes(box, bytes_per_voxel) > max_bytes * max_pieces:
        return None
    out: list[bc.Box] = []
    if not _split(box, grid, bytes_per_voxel, max_bytes, 0, out, max_pieces):
        return None
    return out


def _split(box: bc.Box, grid: bc.ChunkGrid, bpv: int, max_bytes: int, depth: int, out: list[bc.Box],
           max_pieces: int) -> bool:
    if _nbytes(box, bpv) <= max_bytes or depth == len(_ORDER):
        out.append(box)
        return len(out) <= max_pieces
    axis = _ORDER[depth]
    a, b = box.start[axis], box.stop[axis]
    o, c = grid.voxel_offset[axis], grid.chunk_size[axis]
    layer = _nbytes(box, bpv) // (b - a)  # bytes of one voxel layer across this axis
    most = max_bytes // layer  # layers one piece may hold
    pos = a
    while pos < b:
        line = o + ((pos - o) // c + 1) * c  # the next grid line after pos
        if line >= b:
            end = b
        elif most >= line - pos:
            end = min(b, o + ((pos + most - o) // c) * c) if pos + most < b else b
        else:
            end = line  # one grid cell along this axis is too big: cut it on the next axes
        piece = _with(box, axis, pos, end)
        if _nbytes(piece, bpv) <= max_bytes:
            out.append(piece)
        elif not _split(piece, grid, bpv, max_bytes, depth + 1, out, max_pieces):
            return False
        if len(out) > max_pieces:
            return False
        pos = end
    return True
