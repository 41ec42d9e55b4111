"""A store that counts the requests made of the store it wraps (reads by kind, writes)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

from bigarrays_core.kvstore.base import ByteRange, ByteSpan, KVStore, Value, WriteOptions

__all__ = ["CountingStore"]


class CountingStore(KVStore):
    """Delegates every call to ``inner`` and counts them.

    ``requests`` is what an object store would be asked: one per key read (``get_many``,
    ``iter_values``), per range read (``get_ranges``) and per existence check; ``calls``
    counts the batch calls themselves by method name; ``ranges`` keeps every range read.
    """

    def __init__(self, inner: KVStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.read_only = inner.read_only
        self.threaded_io = inner.threaded_io
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.calls: dict[str, int] = {}
            self.ranges: list[ByteRange] = []
            self.written: list[str] = []

    def _count(self, method: str, n: int) -> None:
        with self._lock:
            self.requests += n
            self.calls[method] = self.calls.get(method, 0) + 1

    def describe(self, key: str) -> str:
        return self.inner.describe(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self._count("get_many", len(keys))
        return self.inner.get_many(keys)

    def iter_values(self, keys: Sequence[str], spans: Sequence[ByteSpan | None] | None = None
                    ) -> Iterator[Value | None]:
        self._count("iter_values", len(keys))
        return self.inner.iter_values(keys, spans)

    def get_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes | memoryview | None]:
        self._count("get_ranges", len(ranges))
        with self._lock:
            self.ranges.extend(ranges)
        return self.inner.get_ranges(ranges)

    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        self._count("exists_many", len(keys))
        return self.inner.exists_many(keys)

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        self._count("set_many", len(items))
        with self._lock:
            self.written.extend(items)
        self.inner.set_many(items, options)

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self._count("delete_many", len(keys))
        self.inner.delete_many(keys)

    def list(self, prefix: str = "") -> Iterator[str]:
        self._count("list", 1)
        return self.inner.list(prefix)
