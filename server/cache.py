"""The per-worker cache of decoded chunks: byte-bounded LRU, single flight, revalidation.

Owns: :class:`ChunkCache` and its :class:`Entry`. An entry is a read-only decoded chunk
array (or :data:`MISSING` for a chunk that is not stored, so a sparse volume does not ask
the store again for every slab of a large cutout) together with the store's
:class:`~bigarrays_core.kvstore.Stamp` of what was read and the time that stamp was taken.
The budget counts ``ndarray.nbytes``; ``cachetools`` caches are not thread-safe, so one lock
guards the LRU and the in-flight table.

Freshness. Every entry is vouched for by a stat of the store taken *before* its value was
read, so a value is never older than its stamp. An entry is served as it is while its stamp
is younger than ``revalidate`` seconds; after that the next request that needs it stats the
store again (one batched ``stat_many`` per request, no read) and either renews the entry
(same stamp) or drops and reloads it (another stamp: something wrote the chunk, through
this worker, another worker, another server or any other tool). ``revalidate=0`` stats on
every request. What one worker serves therefore reflects every write that finished more
than ``revalidate`` seconds before the request, whoever wrote it.

A stamp whose modification time is within :data:`RACY_NS` of the moment it was taken is
"racy" (as git says of its index): a file system clock is coarse, and a second write in the
same tick could leave size, times and even a reused inode number equal. A racy entry is
reloaded instead of renewed at its next revalidation, until its stamp is old enough to be
trusted.

Single flight: when several threads miss the same key at once, the first one loads it and
the others wait for that result (or its exception) instead of fetching it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from cachetools import LRUCache

from bigarrays_core.kvstore import Stamp

__all__ = ["MISSING", "RACY_NS", "CacheStats", "ChunkCache", "Entry", "Known"]

#: A stamp whose mtime is this close to the moment it was taken is not trusted to tell two
#: writes apart (coarse file-system clocks; clocks of network file systems).
RACY_NS: Final = 2_000_000_000


class _Missing:
    """The cached value of a chunk that is not stored."""

    nbytes: Final = 64

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

Value = Any  # np.ndarray | _Missing
#: ``load(keys)``: one value per key, in order (an array, or :data:`MISSING`).
Loader = Callable[[Sequence[Hashable]], Sequence[Value]]
#: ``stat(keys)``: one stamp per key, in order (None for a key that is not stored).
Stater = Callable[[Sequence[Hashable]], Sequence["Stamp | None"]]


@dataclass
class Entry:
    """A cached value, the stamp of what was read, and when that stamp was taken."""

    value: Value
    stamp: Stamp | None
    #: The cache clock (``time.monotonic()``) when ``stamp`` was taken (before the value was read).
    checked: float
    #: The stamp may not tell a later write apart (see :data:`RACY_NS`).
    racy: bool = False
    _view: memoryview | None = None

    @property
    def nbytes(self) -> int:
        return int(self.value.nbytes)

    @property
    def view(self) -> memoryview:
        """The value's little-endian, x-fastest bytes (a view of the array, made once)."""
        if self._view is None:
            from bigarrays_server.reader import body_view

            self._view = body_view(self.value)
        return self._view


@dataclass(frozen=True)
class Known:
    """Stamps a request has just taken (``at``: when, on the cache clock), which a load
    of those keys uses instead of stating them again."""

    stamps: Mapping[Hashable, Stamp | None]
    at: float


def _racy(stamp: Stamp | None, wall_ns: int) -> bool:
    return stamp is not None and stamp.mtime_ns is not None and stamp.mtime_ns >= wall_ns - RACY_NS


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    coalesced: int = 0
    invalidations: int = 0
    #: Entries whose stamp was checked against the store again.
    revalidations: int = 0
    #: ... and found changed (or racy), so reloaded.
    changed: int = 0


class _LRU(LRUCache):  # type: ignore[type-arg]
    def __init__(self, maxsize: int, stats: CacheStats) -> None:
        super().__init__(maxsize=maxsize, getsizeof=lambda entry: entry.nbytes)
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
    revalidate:
        Seconds an entry is served without asking the store again (0: every request).
    clock, wall_ns:
        The monotonic clock (seconds) and the wall clock (ns since the epoch, to compare with
        stamps' modification times); tests pass their own.
    """

    def __init__(self, max_bytes: int, revalidate: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.revalidate = max(0.0, float(revalidate))
        self._clock = clock
        self._wall_ns = wall_ns
        self.stats = CacheStats()
        self._lru = _LRU(max(1, self.max_bytes), self.stats)
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, Future[Entry]] = {}
        self._generation: dict[Hashable, int] = {}

    @property
    def current_bytes(self) -> int:
        with self._lock:
            return int(self._lru.currsize) if self.max_bytes else 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru) if self.max_bytes else 0

    def _fresh(self, entry: Entry | None, now: float) -> bool:
        return entry is not None and now - entry.checked < self.revalidate

    def fresh(self, key: Hashable) -> Entry | None:
        """The entry of ``key`` when it is cached and within its revalidation interval
        (counted as a hit, made most recent); None otherwise.

        Never loads nor stats: anything else is left to :meth:`get_many`. The server's fast
        path answers with this, without leaving the event loop.
        """
        if not self.max_bytes or not self.revalidate:
            return None
        now = self._clock()
        with self._lock:
            entry: Entry | None = self._lru.get(key)
            if entry is None or not self._fresh(entry, now):
                return None
            self.stats.hits += 1
            return entry

    def fresh_many(self, keys: Sequence[Hashable]) -> list[Entry] | None:
        """The entries of ``keys`` when every one is cached and fresh (counted as hits);
        None otherwise (nothing counted). Never loads nor stats."""
        if not self.max_bytes or not self.revalidate:
            return None
        now = self._clock()
        out: list[Entry] = []
        with self._lock:
            for key in keys:
                entry: Entry | None = self._lru.get(key)
                if entry is None or not self._fresh(entry, now):
                    return None
                out.append(entry)
            self.stats.hits += len(out)
        return out

    def renew_many(self, keys: Sequence[Hashable], stat: Stater) -> list[Entry] | None:
        """:meth:`fresh_many`, after checking the stamps of the stale entries now (``stat``
        runs in this thread: for stores whose stat is a cheap local call); None when one of
        ``keys`` is not cached or changed (then dropped, for :meth:`get_many` to reload)."""
        if not self.max_bytes:
            return None
        now = self._clock()
        stale: list[Hashable] = []
        with self._lock:
            for key in keys:
                entry: Entry | None = self._lru.get(key)
                if entry is None:
                    return None
                if not self._fresh(entry, now):
                    stale.append(key)
        at = now
        if stale:
            at = self._check(stale, stat).at
        out: list[Entry] = []
        with self._lock:
            for key in keys:
                entry = self._lru.get(key)
                if entry is None or (key in stale and entry.checked < at):
                    return None
                out.append(entry)
            self.stats.hits += len(out)
        return out

    def renew(self, key: Hashable, stat: Stater) -> Entry | None:
        """The entry of ``key`` after checking its stamp now (``stat`` runs in this thread:
        for stores whose stat is a cheap local call); None when it is not cached, or changed
        (then dropped, for :meth:`get_many` to reload). Counted as a hit when renewed."""
        if not self.max_bytes:
            return None
        with self._lock:
            if self._lru.get(key) is None:
                return None
        known = self._check([key], stat)
        with self._lock:
            entry: Entry | None = self._lru.get(key)
            if entry is None or entry.checked < known.at:  # changed (dropped), or not vouched for by this stat
                return None
            self.stats.hits += 1
            return entry

    # -- stamps ----------------------------------------------------------------------------
    def _check(self, keys: Sequence[Hashable], stat: Stater) -> Known:
        """Stat ``keys`` now; renew the cached entries whose stamp is unchanged (and not
        racy), drop the others. Returns the stamps taken."""
        at = self._clock()
        wall = self._wall_ns()
        stamps = list(stat(keys))
        if len(stamps) != len(keys):
            raise RuntimeError(f"stat returned {len(stamps)} stamps for {len(keys)} keys")
        with self._lock:
            for key, stamp in zip(keys, stamps, strict=True):
                entry: Entry | None = self._lru.get(key) if self.max_bytes else None
                if entry is None:
                    continue
                self.stats.revalidations += 1
                if entry.stamp == stamp and not entry.racy:
                    entry.checked = max(entry.checked, at)
                    entry.racy = _racy(stamp, wall)
                else:
                    self.stats.changed += 1
                    self._lru.pop(key, None)
        return Known(dict(zip(keys, stamps, strict=True)), at)

    def stamps(self, keys: Sequence[Hashable], stat: Stater) -> tuple[list[Stamp | None], Known]:
        """The stamp of what is stored under each key, as of at most ``revalidate`` seconds
        ago: a fresh entry's own stamp, else a stat taken now (renewing or dropping the
        entry). Also returns the stamps taken now, for :meth:`get_many`'s ``known``."""
        now = self._clock()
        out: list[Stamp | None] = [None] * len(keys)
        stale: list[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                entry: Entry | None = self._lru.get(key) if self.max_bytes else None
                if self._fresh(entry, now):
                    assert entry is not None
                    out[i] = entry.stamp
                else:
                    stale.append(i)
        known = self._check([keys[i] for i in stale], stat) if stale else Known({}, now)
        for i in stale:
            out[i] = known.stamps[keys[i]]
        return out, known

    # -- values ----------------------------------------------------------------------------
    def get_many(self, keys: Sequence[Hashable], load: Loader, stat: Stater,
                 known: Known | None = None) -> list[Entry]:
        """The entry of each key: cached and fresh, or revalidated, or loaded.

        Entries past their interval are checked with one ``stat`` of them all; misses are
        loaded with one ``load(missing_keys)``, stamped first (by ``known``, stamps this
        request took a moment ago, else by a ``stat`` of the misses). ``load``'s exceptions
        propagate to every caller waiting on those keys; nothing is cached then.
        """
        now = self._clock()
        out: list[Entry | None] = [None] * len(keys)
        stale: list[Hashable] = []
        with self._lock:
            for i, key in enumerate(keys):
                entry: Entry | None = self._lru.get(key) if self.max_bytes else None
                if entry is not None and self._fresh(entry, now):
                    out[i] = entry
                    self.stats.hits += 1
                elif entry is not None and (known is None or key not in known.stamps):
                    stale.append(key)
        if stale:
            checked = self._check(stale, stat)
            known = checked if known is None else Known({**known.stamps, **checked.stamps}, min(known.at, checked.at))
        return self._values(keys, out, load, stat, known)

    def _values(self, keys: Sequence[Hashable], out: list[Entry | None], load: Loader, stat: Stater,
                known: Known | None) -> list[Entry]:
        mine: list[int] = []
        theirs: list[tuple[int, Future[Entry]]] = []
        now = self._clock()
        with self._lock:
            for i, key in enumerate(keys):
                if out[i] is not None:
                    continue
                entry: Entry | None = self._lru.get(key) if self.max_bytes else None
                if entry is not None and (self._fresh(entry, now) or (known is not None and key in known.stamps
                                                                      and entry.checked >= known.at)):
                    out[i] = entry  # renewed by the check above (or loaded by another request since)
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
        if mine:
            self._load(keys, mine, gens, load, stat, known, out)
        late: list[int] = []
        for i, fut in theirs:
            entry = fut.result()
            # Another request's load vouched for by a stat older than this request allows:
            # read it again (rare: a load slower than the revalidation interval).
            if entry.checked < now - self.revalidate:
                late.append(i)
            else:
                out[i] = entry
        if late:
            fresh = self._values([keys[i] for i in late], [None] * len(late), load, stat, None)
            for i, entry in zip(late, fresh, strict=True):
                out[i] = entry
        done = [e for e in out if e is not None]
        assert len(done) == len(keys)
        return done

    def _load(self, keys: Sequence[Hashable], mine: list[int], gens: dict[Hashable, int], load: Loader,
              stat: Stater, known: Known | None, out: list[Entry | None]) -> None:
        wanted = [keys[i] for i in mine]
        try:
            unknown = [k for k in wanted if known is None or k not in known.stamps]
            stamps: dict[Hashable, Stamp | None] = {}
            at = self._clock()
            wall = self._wall_ns()
            if unknown:
                got = list(stat(unknown))
                if len(got) != len(unknown):
                    raise RuntimeError(f"stat returned {len(got)} stamps for {len(unknown)} keys")
                stamps.update(zip(unknown, got, strict=True))
            if known is not None:
                stamps.update({k: known.stamps[k] for k in wanted if k in known.stamps})
                at = min(at, known.at) if len(unknown) < len(wanted) else at
            values = list(load(wanted))  # read after the stat: a value is never older than its stamp
            if len(values) != len(wanted):
                raise RuntimeError(f"cache loader returned {len(values)} values for {len(wanted)} keys")
        except BaseException as exc:
            with self._lock:
                futs = [self._inflight.pop(k) for k in wanted]
            for f in futs:
                f.set_exception(exc)
            raise
        entries = []
        with self._lock:
            futs = []
            for key, value in zip(wanted, values, strict=True):
                entries.append(self._keep(key, value, stamps[key], at, wall, gens[key]))
                futs.append(self._inflight.pop(key))
        for i, entry, f in zip(mine, entries, futs, strict=True):
            out[i] = entry
            f.set_result(entry)

    def _keep(self, key: Hashable, value: object, stamp: Stamp | None, at: float, wall: int, gen: int) -> Entry:
        """The entry of a value just loaded (stamped at ``at`` before it was read), cached when
        within the budget and no write through this worker invalidated the key meanwhile
        (its generation is still ``gen``). The caller holds the lock."""
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        entry = Entry(value, stamp, at, _racy(stamp, wall))
        if self.max_bytes and self._generation.get(key, 0) == gen and entry.nbytes <= self.max_bytes:
            self._lru[key] = entry
        return entry

    def load_now(self, key: Hashable, load: Loader, stat: Stater) -> Entry | None:
        """Load ``key`` in this thread, stamped first, and cache it as :meth:`get_many` does;
        None (nothing done) while another thread is loading it, so this never waits for one.
        For loads that cannot block (the server's event loop reading what is at hand):
        nothing is registered in flight, so a concurrent :meth:`get_many` of the key may load
        it too. ``load``'s and ``stat``'s exceptions propagate; nothing is cached then."""
        with self._lock:
            if key in self._inflight:
                return None
            gen = self._generation.get(key, 0)
        at = self._clock()
        wall = self._wall_ns()
        (stamp,) = stat([key])
        (value,) = load([key])  # read after the stat: a value is never older than its stamp
        with self._lock:
            self.stats.misses += 1
            return self._keep(key, value, stamp, at, wall, gen)

    def invalidate(self, keys: Sequence[Hashable]) -> None:
        """Forget ``keys`` (after a write through this worker), including loads in flight."""
        with self._lock:
            for key in keys:
                self._lru.pop(key, None)
                self._generation[key] = self._generation.get(key, 0) + 1
                self.stats.invalidations += 1
            if len(self._generation) > 1_000_000:  # generations only matter while a load is in flight
                self._generation = {k: g for k, g in self._generation.items() if k in self._inflight}

    def clear(self) -> None:
        """Forget every entry (loads in flight still finish and are kept)."""
        with self._lock:
            self.stats.invalidations += len(self._lru)
            self._lru = _LRU(max(1, self.max_bytes), self.stats)  # not popitem(): not evictions
