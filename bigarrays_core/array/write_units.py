"""The boxes long jobs cut their tasks on: a scale's write units, and rows of them. Pure: no I/O.

A *write unit* is the box of voxels one stored object holds: a chunk of an unsharded
scale. Writes of different write units never replace the same object, so tasks that
each write whole units run in parallel, in any process, without locks. Units are boxes of
the scale's grid anchored at its ``voxel_offset`` and clipped at its upper edge, like
chunks.
"""

from __future__ import annotations

from bigarrays_core.array.bigarray import BigArray
from bigarrays_core.geometry import Box, ChunkGrid, Vec3

__all__ = ["unit_grid", "unit_rows", "unit_size"]


def unit_size(ba: BigArray) -> Vec3:
    """The voxels per axis of one write unit of ``ba``'s scale."""
    return ba.chunk_size


def unit_grid(ba: BigArray) -> ChunkGrid:
    """The grid of ``ba``'s write units (over the scale's bounds)."""
    return ChunkGrid(ba.voxel_offset, ba.scale.size, unit_size(ba))


def unit_rows(ba: BigArray, box: Box, *, min_units: int = 16) -> list[Box]:
    """The write units that ``box`` touches, in groups of whole rows (x) of at least
    ``min_units`` units (fewer only where a z-slab ends), z-slab by z-slab, then y.

    Each group is one box: the units' union, clipped to the volume (not to ``box``).
    """
    grid = unit_grid(ba)
    rx, ry, rz = grid.grid_range(box)
    if not len(rx) or not len(ry):
        return []
    rows = max(1, min(len(ry), -(-min_units // len(rx))))
    out = []
    for gz in rz:
        for iy in range(0, len(ry), rows):
            first = grid.chunk_box((rx[0], ry[iy], gz))
            last = grid.chunk_box((rx[-1], ry[min(len(ry), iy + rows) - 1], gz))
            out.append(Box(first.start, last.stop))
    return out
