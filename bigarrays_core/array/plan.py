"""Planning a read: which chunks a box touches, and which part of each goes where.

Pure (no I/O): :func:`plan_read` turns a box and a channel range into one
:class:`ChunkProjection` per chunk, the model being zarr-python's ``ChunkProjection``.
Chunk sources (:mod:`bigarrays_core.array.source`) carry the plan out.
"""

from __future__ import annotations

from dataclasses import dataclass

from bigarrays_core.array.scale_io import ChunkRef, ScaleIO
from bigarrays_core.codecs.base import Region4, Shape4
from bigarrays_core.geometry import Box

__all__ = ["ChunkProjection", "plan_read"]

Target4 = tuple[slice, slice, slice, slice]


@dataclass(frozen=True)
class ChunkProjection:
    """One chunk of a read: the part of it the box needs, and where that part goes."""

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


def plan_read(io: ScaleIO, box: Box, channels: tuple[int, int]) -> list[ChunkProjection]:
    """The projections of every chunk ``box`` touches (inside the volume), x fastest.

    ``channels`` is the half-open channel range read; voxels of ``box`` outside the volume
    are in no projection (the reader leaves them at the background).
    """
    csel = slice(channels[0], channels[1])
    all_channels = channels == (0, io.num_channels)
    out: list[ChunkProjection] = []
    for ref in io.chunks(box):
        inter = ref.box.intersect(box)
        shape = io.chunk_shape(ref)
        region = inter.slices_in(ref.box) + (csel,)
        target = inter.slices_in(box) + (slice(None),)
        out.append(ChunkProjection(ref, shape, region, target, all_channels and inter == ref.box))
    return out
