"""Cutting a box into pieces along the chunk grid: the one splitter. Pure: no I/O.

:func:`split_box` cuts a box that holds too many bytes into pieces that each hold at most
``max_bytes``. Pieces cover the box exactly, never overlap, and come in the order of the
box's Fortran-ordered (x fastest) bytes: z-ranges of the whole box first (each such piece
is one contiguous run of the box's bytes), then y-ranges, then x-ranges.

* ``aligned=True``: every cut lies on a grid line (``voxel_offset + k * chunk_size``) or the
  box's edge, so each piece is a union of whole (clipped) chunks: what a write may take.
* ``aligned=False``: cuts prefer grid lines, but a grid cell too big for one piece is cut
  into runs of layers that fit, and every piece is one contiguous run of the box's bytes
  (concatenating the pieces' Fortran-ordered bytes gives the box's): what a streamed body
  is read in.
:func:`grid_slabs` cuts a box at every grid line of one axis (one chunk deep).

Used by the server (a 413's chunk-aligned split, the pieces a cutout body streams in), the
REST client (the pieces it fetches in parallel) and ingest (z-slabs one chunk deep).
"""

from __future__ import annotations

from collections.abc import Iterator

from bigarrays_core.geometry.bbox import Box
from bigarrays_core.geometry.grid import ChunkGrid

__all__ = ["grid_slabs", "split_box"]

#: Cut z first, then y, then x, so pieces are as flat and contiguous as possible.
_ORDER = (2, 1, 0)


def _with(box: Box, axis: int, a: int, b: int) -> Box:
    start, stop = list(box.start), list(box.stop)
    start[axis], stop[axis] = a, b
    return Box._trusted((start[0], start[1], start[2]), (stop[0], stop[1], stop[2]))


def _next_line(pos: int, offset: int, step: int) -> int:
    """The first grid line strictly after ``pos``."""
    return offset + ((pos - offset) // step + 1) * step


def grid_slabs(box: Box, grid: ChunkGrid, axis: int = 2) -> Iterator[Box]:
    """``box`` cut at every grid line along ``axis`` (pieces one chunk deep), in order."""
    a, b = box.start[axis], box.stop[axis]
    o, c = grid.voxel_offset[axis], grid.chunk_size[axis]
    while a < b:
        end = min(b, _next_line(a, o, c))
        yield _with(box, axis, a, end)
        a = end


def split_box(box: Box, grid: ChunkGrid, bytes_per_voxel: int, max_bytes: int, *, aligned: bool = True,
              max_pieces: int | None = None) -> list[Box] | None:
    """Pieces of ``box`` of at most ``max_bytes`` each (``[box]`` when it fits), in byte order.

    With ``aligned`` (the default) every cut lies on a grid line, and a piece that is one
    grid cell clipped to the box is returned even if it is larger than ``max_bytes``:
    nothing finer is chunk-aligned. Without it, a grid cell too big for a piece is cut
    into runs of layers that fit (a single voxel row at the finest). Returns None when
    more than ``max_pieces`` pieces would be needed.
    """
    per_voxel = max(1, bytes_per_voxel)
    max_bytes = max(1, max_bytes)
    total = box.size * per_voxel
    if total <= max_bytes:
        return [box]
    if max_pieces is not None and total > max_bytes * max_pieces:
        return None
    out: list[Box] = []
    limit = max_pieces if max_pieces is not None else -1

    def full() -> bool:
        return limit >= 0 and len(out) > limit

    def split(part: Box, depth: int) -> bool:
        if part.size * per_voxel <= max_bytes or depth == len(_ORDER):
            out.append(part)
            return not full()
        axis = _ORDER[depth]
        a, b = part.start[axis], part.stop[axis]
        o, c = grid.voxel_offset[axis], grid.chunk_size[axis]
        layer = part.size * per_voxel // (b - a)  # bytes of one voxel layer across this axis
        most = max_bytes // layer  # layers one piece may hold
        pos = a
        while pos < b:
            line = _next_line(pos, o, c)
            if line >= b:
                end = b
            elif most >= line - pos:
                end = b if pos + most >= b else o + ((pos + most - o) // c) * c
            else:
                end = line  # one grid cell along this axis is too big for a piece
            piece = _with(part, axis, pos, end)
            if piece.size * per_voxel <= max_bytes:
                out.append(piece)
            elif aligned:
                if not split(piece, depth + 1):
                    return False
            elif most >= 1:
                out.extend(_with(part, axis, q, min(end, q + most)) for q in range(pos, end, most))
            else:  # one layer is too big: cut each layer on the next axis, in order
                for q in range(pos, end):
                    if not split(_with(part, axis, q, q + 1), depth + 1):
                        return False
            if full():
                return False
            pos = end
        return True

    return out if split(box, 0) else None
