"""The boxes long jobs cut their tasks on: a scale's write units. Pure: no I/O.

A *write unit* is the box of voxels one stored object holds: a chunk of an unsharded
scale, a shard of a sharded one (:attr:`ScaleIO.write_chunk_size`). Writes of different
write units never replace the same object, so tasks that each write whole units run in
parallel, in any process, without locks. Units are boxes of the scale's grid anchored at
its ``voxel_offset`` and clipped at its upper edge, like chunks.
"""

from __future__ import annotations

from bigarrays_core.array.bigarray import BigArray
from bigarrays_core.geometry import ChunkGrid, Vec3

__all__ = ["unit_grid", "unit_size"]


def unit_size(ba: BigArray) -> Vec3:
    """The voxels per axis of one write unit of ``ba``'s scale."""
    return ba.write_chunk_size


def unit_grid(ba: BigArray) -> ChunkGrid:
    """The grid of ``ba``'s write units (over the scale's bounds)."""
    return ChunkGrid(ba.voxel_offset, ba.scale.size, unit_size(ba))
