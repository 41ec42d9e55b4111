"""Pure voxel geometry: half-open boxes and the precomputed chunk grid. No I/O."""

from bigarrays_core.geometry.bbox import Box, Vec3
from bigarrays_core.geometry.grid import ChunkGrid, format_chunk_name, parse_chunk_name
from bigarrays_core.geometry.region import Region
from bigarrays_core.geometry.split import grid_slabs, split_box

__all__ = ["Box", "ChunkGrid", "Region", "Vec3", "format_chunk_name", "grid_slabs", "parse_chunk_name", "split_box"]
