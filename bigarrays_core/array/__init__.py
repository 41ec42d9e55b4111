"""The array frontend: selections, read and write planning and execution, BigArray."""

from bigarrays_core.array.bigarray import BigArray
from bigarrays_core.array.buffers import set_recycle_limit
from bigarrays_core.array.executor import num_threads, set_num_threads
from bigarrays_core.array.scale_io import ChunkRef

__all__ = ["BigArray", "ChunkRef", "num_threads", "set_num_threads", "set_recycle_limit"]
