"""Key-value stores: the only layer that talks to storage."""

from bigarrays_core.kvstore.base import KVStore, WriteOptions, check_key
from bigarrays_core.kvstore.local import LocalStore
from bigarrays_core.kvstore.memory import MemoryStore
from bigarrays_core.kvstore.registry import open_store, register_store, registered_schemes

__all__ = [
    "KVStore",
    "LocalStore",
    "MemoryStore",
    "WriteOptions",
    "check_key",
    "open_store",
    "register_store",
    "registered_schemes",
]
