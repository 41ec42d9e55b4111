"""Everything chunk I/O needs about one scale, bundled once per BigArray.

:attr:`ScaleIO.store` is the scale's *chunk store*: keys are chunk keys
(``<scale key>/<x0-x1_y0-y1_z0-z1>``) for sharded and unsharded scales alike. For an
unsharded scale it is the dataset's store itself; for a sharded one it is a
:class:`~bigarrays_core.kvstore.sharding.ShardedStore` over it (with its own index cache),
and the pipeline undoes the spec's gzip ``data_encoding`` (the adapter reports it as the
values' content encoding). Readers, writers and chunk sources use only this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from bigarrays_core.codecs import ChunkPipeline, byte_codec, pipeline_for
from bigarrays_core.format import Info, Scale
from bigarrays_core.format.sharding import scale_sharding
from bigarrays_core.geometry import Box, ChunkGrid, Vec3
from bigarrays_core.geometry.grid import axis_cells
from bigarrays_core.kvstore import KVStore
from bigarrays_core.kvstore.sharding import ShardedStore, ShardingSpec

__all__ = ["ChunkRef", "ScaleIO"]


class ChunkRef(NamedTuple):
    """One chunk of a scale: its store key, grid cell and (clipped) voxel box.

    A named tuple (immutable, and cheap to make: a read makes one per chunk it touches).
    """

    key: str
    grid: Vec3
    box: Box

    @property
    def name(self) -> str:
        """The chunk name ``x0-x1_y0-y1_z0-z1`` (the key without the scale prefix)."""
        return self.key.rpartition("/")[2]


@dataclass(frozen=True)
class ScaleIO:
    #: The scale's chunk store (see the module docstring).
    store: KVStore
    scale: Scale
    grid: ChunkGrid
    pipeline: ChunkPipeline
    dtype: np.dtype[Any]
    num_channels: int
    #: The parsed sharding spec, or None for an unsharded scale.
    sharding: ShardingSpec | None = None

    @classmethod
    def of(cls, store: KVStore, info: Info, mip: int) -> ScaleIO:
        """The I/O of scale ``mip`` of the dataset in ``store``.

        Raises :class:`InfoError` naming the field when the scale cannot be read (a bad
        sharding spec, an unknown encoding): only this scale, the info stays readable.
        """
        scale = info.scale(mip)
        grid = ChunkGrid(scale.voxel_offset, scale.size, scale.chunk_size)
        pipeline = pipeline_for(scale, info.dtype, info.num_channels)
        spec = scale_sharding(scale)
        if spec is None:
            return cls(store, scale, grid, pipeline, info.dtype, info.num_channels)
        if spec.data_encoding == "gzip":
            pipeline = ChunkPipeline(pipeline.codec, byte_codec({"id": "gzip", "level": 1}))
        chunks = ShardedStore(store, scale.key, spec, grid)
        return cls(chunks, scale, grid, pipeline, info.dtype, info.num_channels, spec)

    def key(self, box: Box) -> str:
        return f"{self.scale.key}/{box.to_chunk_name()}"

    def chunks(self, box: Box) -> list[ChunkRef]:
        """The chunks that intersect ``box`` (clipped to the volume), x fastest."""
        grid = self.grid
        (ox, oy, oz), (sx, sy, sz), (cx, cy, cz) = grid.voxel_offset, grid.size, grid.chunk_size
        (bx, by, bz), (ex, ey, ez) = box.start, box.stop
        xs, ys = axis_cells(bx, ex, ox, sx, cx), axis_cells(by, ey, oy, sy, cy)
        prefix = self.scale.key + "/"
        new_box = Box._trusted
        return [ChunkRef(f"{prefix}{nx}_{ny}_{nz}", (gx, gy, gz), new_box((x0, y0, z0), (x1, y1, z1)))
                for gz, z0, z1, nz in axis_cells(bz, ez, oz, sz, cz)
                for gy, y0, y1, ny in ys
                for gx, x0, x1, nx in xs]

    def chunk_shape(self, ref: ChunkRef) -> tuple[int, int, int, int]:
        x, y, z = ref.box.shape
        return (x, y, z, self.num_channels)

    # -- write units: the objects a write replaces --------------------------------------------
    def unit_keys(self, refs: list[ChunkRef]) -> list[str]:
        """The key of the stored object each chunk's write replaces: the chunk's own key, or
        for a sharded scale the key of its shard file (writers lock it while writing)."""
        if isinstance(self.store, ShardedStore):
            return self.store.shard_keys_of([r.key for r in refs])
        return [r.key for r in refs]

    @property
    def write_chunk_size(self) -> Vec3:
        """The voxels per axis of one write unit: a chunk; a shard (clipped to the volume)
        when shards are boxes of the grid; the whole volume for other sharded scales."""
        if not isinstance(self.store, ShardedStore):
            return self.scale.chunk_size
        shape = self.store.shard_shape or self.grid.grid_shape
        x, y, z = (min(n * c, s) for n, c, s in zip(shape, self.scale.chunk_size, self.scale.size))
        return (x, y, z)

    def write_boxes(self, box: Box) -> list[Box]:
        """The write units (see :attr:`write_chunk_size`) that ``box`` touches, clipped to the
        volume, x fastest. Writes of different boxes never replace the same object."""
        unit = self.write_chunk_size
        grid = ChunkGrid(self.scale.voxel_offset, self.scale.size, unit)
        return [b for _, b in grid.chunks_in(box)]
