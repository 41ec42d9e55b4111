"""Key-value stores: the only layer that talks to storage."""

from bigarrays_core.kvstore.at_hand import NotAtHand, at_hand_only
from bigarrays_core.kvstore.base import ByteRange, KVStore, Stamp, Value, Version, WriteOptions, check_key
from bigarrays_core.kvstore.local import LocalStore
from bigarrays_core.kvstore.memory import MemoryStore
from bigarrays_core.kvstore.registry import open_store, register_store, registered_schemes

__all__ = [
    "ByteRange",
    "FsspecStore",
    "KVStore",
    "LocalStore",
    "MemoryStore",
    "NotAtHand",
    "Stamp",
    "Value",
    "Version",
    "WriteOptions",
    "at_hand_only",
    "check_key",
    "open_store",
    "register_store",
    "registered_schemes",
]


def __getattr__(name: str) -> object:
    # FsspecStore imports fsspec: only on first use.
    if name == "FsspecStore":
        from bigarrays_core.kvstore.fsspec_store import FsspecStore

        return FsspecStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
