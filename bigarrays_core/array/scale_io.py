"""Everything chunk I/O needs about one scale, bundled once per BigArray."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bigarrays_core.codecs import ChunkPipeline, pipeline_for
from bigarrays_core.format import Info, Scale
from bigarrays_core.geometry import Box, ChunkGrid, Vec3
from bigarrays_core.kvstore import KVStore

__all__ = ["ChunkRef", "ScaleIO"]


@dataclass(frozen=True)
class ChunkRef:
    """One chunk of a scale: its store key, grid cell and (clipped) voxel box."""

    key: str
    grid: Vec3
    box: Box

    @property
    def name(self) -> str:
        """The chunk name ``x0-x1_y0-y1_z0-z1`` (the key without the scale prefix)."""
        return self.key.rpartition("/")[2]


@dataclass(frozen=True)
class ScaleIO:
    store: KVStore
    scale: Scale
    grid: ChunkGrid
    pipeline: ChunkPipeline
    dtype: np.dtype[Any]
    num_channels: int

    @classmethod
    def of(cls, store: KVStore, info: Info, mip: int) -> ScaleIO:
        scale = info.scale(mip)
        grid = ChunkGrid(scale.voxel_offset, scale.size, scale.chunk_size)
        return cls(store, scale, grid, pipeline_for(scale, info.dtype, info.num_channels), info.dtype,
                   info.num_channels)

    def key(self, box: Box) -> str:
        return f"{self.scale.key}/{box.to_chunk_name()}"

    def chunks(self, box: Box) -> list[ChunkRef]:
        """The chunks that intersect ``box`` (clipped to the volume), x fastest."""
        prefix = self.scale.key + "/"
        return [ChunkRef(prefix + cb.to_chunk_name(), g, cb) for g, cb in self.grid.chunks_in(box)]

    def chunk_shape(self, ref: ChunkRef) -> tuple[int, int, int, int]:
        x, y, z = ref.box.shape
        return (x, y, z, self.num_channels)
