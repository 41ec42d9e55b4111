"""The per-worker cache of decoded chunks: byte-bounded LRU, single flight, invalidation.

Owns: :class:`ChunkCache`. Values are read-only decoded chunk arrays, or :data:`MISSING`
for a chunk that is not stored (so a sparse volume does not ask the store again for every
slab of a large cutout). The budget counts ``ndarray.nbytes``; ``cachetools`` caches are
not thread-safe, so one lock guards the LRU and the in-flight table.

Single flight: when several threads miss the same key at once, the first one loads it and
the others wait for that result (or its exception) instead of fetching it again.

With N uvicorn workers there are N caches; a write through one worker invalidates its
chunks there, and the other workers :meth:`ChunkCache.clear` theirs when they see the
shared write counter move (``generation.py``; docs/server.md, "Caching").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from cachetools import LRUCache

__all__ = ["MISSING", "CacheStats", "ChunkCache"]


class _Missing:
    """The cached value of a chunk that is not stored."""

    nbytes: Final = 64

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

Value = Any  # np.ndarray | _Missing
Loader = Callable[[Sequence[Hashable]], Sequence[Value]]


def _sizeof(value: Value) -> int:
    return int(value.nbytes)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    coalesced: int = 0
    invalidations: int = 0


class _LRU(LRUCache):  # type: ignore[type-arg]
    def __init__(self, maxsize: int, stats: CacheStats) -> None:
        super().__init__(maxsize=maxsize, getsizeof=_sizeof)
        self._stats = stats

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()
        self._stats.evictions += 1
        return item


class ChunkCache:
    """Decoded chunks keyed by any hashable (the server uses the chunk's full URL).

    Parameters
    ----------
    max_bytes:
        The budget. 0 disables caching (single flight still applies); a value larger
        than the budget is returned but not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.stats = CacheStats()
        self._lru = _LRU(max(1, self.max_bytes), self.stats)
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, Future[Value]] = {}
        self._generation: dict[Hashable, int] = {}
        #: Bumped by :meth:`clear`: loads that started before it are not kept.
        self._epoch = 0

    @property
    def current_bytes(self) -> int:
        with self._lock:
            return int(self._lru.currsize) if self.max_bytes else 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru) if self.max_bytes else 0

    def peek(self, key: Hashable) -> Value | None:
        """The cached value of ``key`` (counted as a hit, made most recent), or None when not cached.

        Never loads: a miss is left to :meth:`get_many` (which counts it). The server's fast
        path answers cache hits with this, without leaving the event loop.
        """
        if not self.max_bytes:
            return None
        with self._lock:
            value = self._lru.get(key)
            if value is not None:
                self.stats.hits += 1
            return value

    def get_many(self, keys: Sequence[Hashable], loader: Loader) -> list[Value]:
        """The value of each key, loading the misses with ``loader(missing_keys)``.

        ``loader`` returns one value per key, in order (an array, or :data:`MISSING`). Its
        exceptions propagate to every caller waiting on those keys; nothing is cached then.
        """
        out: list[Value] = [None] * len(keys)
        mine: list[int] = []
        theirs: list[tuple[int, Future[Value]]] = []
        with self._lock:
            for i, key in enumerate(keys):
                if self.max_bytes:
                    value = self._lru.get(key)
                    if value is not None:
                        out[i] = value
                        self.stats.hits += 1
                        continue
                fut = self._inflight.get(key)
                if fut is not None:
                    theirs.append((i, fut))
                    self.stats.coalesced += 1
                    continue
                self.stats.misses += 1
                self._inflight[key] = Future()
                mine.append(i)
            gens = {keys[i]: self._generation.get(keys[i], 0) for i in mine}
            epoch = self._epoch
        if mine:
            self._load(keys, mine, gens, epoch, loader, out)
        for i, fut in theirs:
            out[i] = fut.result()
        return out

    def _load(self, keys: Sequence[Hashable], mine: list[int], gens: dict[Hashable, int], epoch: int,
              loader: Loader, out: list[Value]) -> None:
        wanted = [keys[i] for i in mine]
        try:
            values = list(loader(wanted))
            if len(values) != len(wanted):
                raise RuntimeError(f"cache loader returned {len(values)} values for {len(wanted)} keys")
        except BaseException as exc:
            with self._lock:
                futs = [self._inflight.pop(k) for k in wanted]
            for f in futs:
                f.set_exception(exc)
            raise
        with self._lock:
            futs = []
            for key, value in zip(wanted, values, strict=False):
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False
                # A write that invalidated the key (or cleared the cache) while we loaded makes
                # our value stale.
                fresh = self._generation.get(key, 0) == gens[key] and self._epoch == epoch
                if self.max_bytes and fresh and _sizeof(value) <= self.max_bytes:
                    self._lru[key] = value
                futs.append(self._inflight.pop(key))
        for i, value, f in zip(mine, values, futs, strict=False):
            out[i] = value
            f.set_result(value)

    def invalidate(self, keys: Sequence[Hashable]) -> None:
        """Forget ``keys`` (after a write), including loads still in flight."""
        with self._lock:
            for key in keys:
                self._lru.pop(key, None)
                self._generation[key] = self._generation.get(key, 0) + 1
                self.stats.invalidations += 1
            if len(self._generation) > 1_000_000:  # generations only matter while a load is in flight
                self._generation = {k: g for k, g in self._generation.items() if k in self._inflight}

    def clear(self) -> None:
        """Forget everything, including loads still in flight (another worker wrote)."""
        with self._lock:
            self.stats.invalidations += len(self._lru)
            self._lru = _LRU(max(1, self.max_bytes), self.stats)  # not popitem(): not evictions
            self._epoch += 1
