"""Planning a read: which chunks a box touches, and which part of each goes where.

Pure (no I/O): :func:`plan_read` turns a box and a channel range into one
:class:`ChunkProjection` per chunk, the model being zarr-python's ``ChunkProjection``.
Chunk sources (:mod:`bigarrays_core.array.source`) carry the plan out.
"""

from __future__ import annotations

from typing import NamedTuple

from bigarrays_core.array.scale_io import ChunkRef, ScaleIO
from bigarrays_core.codecs.base import Region4, Shape4
from bigarrays_core.geometry import Box
from bigarrays_core.geometry.grid import axis_cells

__all__ = ["ChunkProjection", "plan_read"]

Target4 = tuple[slice, slice, slice, slice]

#: One chunk of one axis of a read: its grid index, first and last voxel (absolute), the
#: ``"c0-c1"`` part of its name, the slice of the chunk the box needs, where that goes in
#: the output, and whether that is the whole chunk.
_AxisPiece = tuple[int, int, int, str, slice, slice, bool]


class ChunkProjection(NamedTuple):
    """One chunk of a read: the part of it the box needs, and where that part goes.

    A named tuple: cheap to make, as a read of a few chunks is dominated by per-chunk costs.
    """

    #: The chunk (store key, grid cell, clipped voxel box).
    ref: ChunkRef
    #: The chunk's array shape ``(x, y, z, c)`` (clipped at the volume's upper edge).
    shape: Shape4
    #: The part of the chunk array the read needs (the selected channels included).
    region: Region4
    #: Where that part goes in the read's output (all of the output's channels).
    target: Target4
    #: The read covers the whole chunk, every channel.
    complete: bool


def _axis_pieces(a: int, b: int, origin: int, size: int, chunk: int) -> list[_AxisPiece]:
    """The chunks of one axis that ``[a, b)`` touches inside ``[origin, origin + size)``."""
    out: list[_AxisPiece] = []
    for g, c0, c1, name in axis_cells(a, b, origin, size, chunk):
        p0, p1 = max(a, c0), min(b, c1)
        out.append((g, c0, c1, name, slice(p0 - c0, p1 - c0), slice(p0 - a, p1 - a), p0 == c0 and p1 == c1))
    return out


def plan_read(io: ScaleIO, box: Box, channels: tuple[int, int]) -> list[ChunkProjection]:
    """The projections of every chunk ``box`` touches (inside the volume), x fastest.

    ``channels`` is the half-open channel range read; voxels of ``box`` outside the volume
    are in no projection (the reader leaves them at the background).
    """
    grid = io.grid
    nc = io.num_channels
    csel = slice(channels[0], channels[1])
    every = slice(None)
    all_channels = channels == (0, nc)
    (ox, oy, oz), (sx, sy, sz), (cx, cy, cz) = grid.voxel_offset, grid.size, grid.chunk_size
    (bx, by, bz), (ex, ey, ez) = box.start, box.stop
    # Each axis is cut on the grid once; the chunks are the products of the pieces.
    xs = _axis_pieces(bx, ex, ox, sx, cx)
    ys = _axis_pieces(by, ey, oy, sy, cy)
    zs = _axis_pieces(bz, ez, oz, sz, cz)
    prefix = io.scale.key + "/"
    new_box = Box._trusted
    out: list[ChunkProjection] = []
    append = out.append
    for gz, z0, z1, nz, rz, tz, wz in zs:
        for gy, y0, y1, ny, ry, ty, wy in ys:
            for gx, x0, x1, nx, rx, tx, wx in xs:
                ref = ChunkRef(f"{prefix}{nx}_{ny}_{nz}", (gx, gy, gz), new_box((x0, y0, z0), (x1, y1, z1)))
                append(ChunkProjection(ref, (x1 - x0, y1 - y0, z1 - z0, nc), (rx, ry, rz, csel),
                                       (tx, ty, tz, every), all_channels and wx and wy and wz))
    return out
