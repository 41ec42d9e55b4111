"""bigarrays_core: cut out and save regions of Neuroglancer precomputed volumes.

>>> import bigarrays_core as bc
>>> ba = bc.create("memory://doc", dtype="uint8", size=(128, 128, 64), chunk_size=(64, 64, 64),
...                voxel_offset=(-64, 0, 0))
>>> ba[-64:0, 0:64, 0:64] = 7
>>> ba[-1:1, 0, 0]
array([[7],
       [0]], dtype=uint8)
"""

from bigarrays_core.api import create, open
from bigarrays_core.array import BigArray, ChunkRef, num_threads, set_num_threads, set_recycle_limit
from bigarrays_core.array.dask_io import from_dask
from bigarrays_core.client import Client
from bigarrays_core.errors import (
    AlignmentError,
    BigArraysError,
    ChunkDecodeError,
    ChunkEncodeError,
    ChunkNotFoundError,
    ConfigError,
    DatasetExistsError,
    DatasetNotFoundError,
    InfoError,
    InvalidKeyError,
    OutOfBoundsError,
    ReadOnlyError,
    SelectionError,
    StorageError,
    StoragePermissionError,
    StorageTimeoutError,
    TooLargeError,
    UnknownCodecError,
    UnknownSchemeError,
    WriteDataError,
)
from bigarrays_core.format import Info, create_info
from bigarrays_core.geometry import Box, ChunkGrid, Region
from bigarrays_core.kvstore import KVStore, WriteOptions, open_store, register_store
from bigarrays_core.kvstore.sharding import ShardingSpec
from bigarrays_core.pyramid import downsample
from bigarrays_core.transfer import transfer

__version__ = "0.1.0"

__all__ = [
    "AlignmentError",
    "BigArray",
    "BigArraysError",
    "Box",
    "ChunkDecodeError",
    "ChunkEncodeError",
    "ChunkGrid",
    "ChunkNotFoundError",
    "ConfigError",
    "ChunkRef",
    "Client",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "Info",
    "InfoError",
    "InvalidKeyError",
    "KVStore",
    "OutOfBoundsError",
    "ReadOnlyError",
    "Region",
    "SelectionError",
    "ShardingSpec",
    "StorageError",
    "StoragePermissionError",
    "StorageTimeoutError",
    "TooLargeError",
    "UnknownCodecError",
    "UnknownSchemeError",
    "WriteDataError",
    "WriteOptions",
    "__version__",
    "create",
    "create_info",
    "downsample",
    "from_dask",
    "num_threads",
    "open",
    "open_store",
    "register_store",
    "set_num_threads",
    "set_recycle_limit",
    "transfer",
]
