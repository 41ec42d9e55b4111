"""Process-wide change counters of shard files, so no reader in this process mixes two
versions of a shard.

A sharded read takes several rounds (shard index, minishard index, data) and caches the
indexes; a writer in the same process may replace the shard between rounds, or after an
index was cached by another open array. Every writer here brackets the replacement of a
shard file with :meth:`Generations.writing`; a reader takes a :meth:`Generations.snapshot`
before its first round (waiting while a write of its shards is in progress) and checks
:meth:`Generations.unchanged` after its last: if a shard changed meanwhile it reads again,
and cached indexes are valid only for the generation they were read at.

Counters are striped by ``(store URL, shard key)``: two shards sharing a stripe only cost
an extra re-read, never a stale one. Writers in other processes are not seen here (see
:meth:`ShardedStore.clear_cache <bigarrays_core.kvstore.sharding.store.ShardedStore.clear_cache>`).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

__all__ = ["GENERATIONS", "Generations"]


class Generations:
    """Striped change counters with in-progress marks (see the module docstring)."""

    def __init__(self, stripes: int = 1 << 16) -> None:
        self._stripes = stripes
        self._gen = [0] * stripes
        self._active = [0] * stripes
        self._cond = threading.Condition()

    def slot(self, url: str, key: str) -> int:
        """The stripe of shard ``key`` of the store at ``url``."""
        return zlib.crc32(f"{url}\x00{key}".encode()) % self._stripes

    def snapshot(self, slots: Iterable[int]) -> dict[int, int]:
        """The current generation of each slot, once no write of them is in progress."""
        slots = set(slots)
        with self._cond:
            while any(self._active[s] for s in slots):
                self._cond.wait()
            return {s: self._gen[s] for s in slots}

    def unchanged(self, snapshot: Mapping[int, int]) -> bool:
        """True when no write of these slots started since ``snapshot`` was taken."""
        with self._cond:
            return all(self._gen[s] == g for s, g in snapshot.items())

    def bump(self, slots: Iterable[int]) -> None:
        """Mark these slots changed (what was cached for them is no longer valid)."""
        with self._cond:
            for s in set(slots):
                self._gen[s] += 1

    @contextmanager
    def writing(self, slots: Iterable[int]) -> Iterator[None]:
        """Bracket the replacement of shard files: readers of these slots wait for it, and
        whatever they had read or cached before is invalid afterwards."""
        slots = set(slots)
        with self._cond:
            for s in slots:
                self._active[s] += 1
                self._gen[s] += 1
        try:
            yield
        finally:
            with self._cond:
                for s in slots:
                    self._active[s] -= 1
                    self._gen[s] += 1
                self._cond.notify_all()


#: The counters every :class:`~bigarrays_core.kvstore.sharding.store.ShardedStore` of the process shares.
GENERATIONS = Generations()
