"""The chunk cache: byte budget, LRU order, single flight with real threads, invalidation, and
revalidation against the store's stamps (on a clock the tests move)."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence

import numpy as np
import pytest
from bigarrays_server.cache import MISSING, RACY_NS, ChunkCache

from bigarrays_core.kvstore import Stamp


def arr(n: int, fill: int = 0) -> np.ndarray:
    return np.full(n, fill, dtype=np.uint8)


class Store:
    """Values with versions, counting loads and stats; ``mtime_ns`` for every stamp."""

    def __init__(self) -> None:
        self.values: dict[Hashable, np.ndarray | None] = {}
        self.versions: dict[Hashable, int] = {}
        self.loads: list[Hashable] = []
        self.stats: list[Hashable] = []
        self.mtime_ns = 0

    def put(self, key: Hashable, value: np.ndarray | None) -> None:
        self.values[key] = value
        self.versions[key] = self.versions.get(key, 0) + 1

    def load(self, keys: Sequence[Hashable]) -> list[object]:
        self.loads.extend(keys)
        return [MISSING if self.values.get(k) is None else self.values[k] for k in keys]

    def stat(self, keys: Sequence[Hashable]) -> list[Stamp | None]:
        self.stats.extend(keys)
        return [None if self.values.get(k) is None else Stamp(size=1, mtime_ns=self.mtime_ns,
                                                              version=str(self.versions[k])) for k in keys]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(max_bytes: int = 10_000, revalidate: float = 1.0) -> tuple[ChunkCache, Store, Clock]:
    clock = Clock()
    cache = ChunkCache(max_bytes, revalidate, clock=clock, wall_ns=lambda: 10**18)
    return cache, Store(), clock


def values(cache: ChunkCache, store: Store, keys: Sequence[Hashable]) -> list[object]:
    return [e.value for e in cache.get_many(keys, store.load, store.stat)]


def test_budget_is_bytes_and_least_recently_used_goes_first() -> None:
    cache, store, _ = make(300)
    for i, k in enumerate("abcd"):
        store.put(k, arr(100, i))
    values(cache, store, ["a", "b", "c"])
    assert cache.current_bytes == 300
    values(cache, store, ["a"])  # a is now the most recent
    values(cache, store, ["d"])  # evicts b
    assert cache.current_bytes == 300 and cache.stats.evictions == 1
    store.loads.clear()
    values(cache, store, ["a", "c", "d"])
    assert store.loads == []
    values(cache, store, ["b"])
    assert store.loads == ["b"]


def test_values_are_read_only_and_missing_is_cached() -> None:
    cache, store, _ = make(1000)
    store.put("x", arr(10))
    value, gone = values(cache, store, ["x", "gone"])
    assert gone is MISSING
    with pytest.raises(ValueError):
        value[0] = 1  # type: ignore[index]
    values(cache, store, ["x", "gone"])
    assert store.loads == ["x", "gone"] and cache.stats.hits == 2


def test_within_the_interval_nothing_is_asked_of_the_store() -> None:
    cache, store, clock = make(revalidate=1.0)
    store.put("k", arr(10, 1))
    values(cache, store, ["k"])
    assert store.stats == ["k"] and store.loads == ["k"]  # stamped, then read
    clock.now += 0.5
    store.put("k", arr(10, 2))  # written by someone else: not seen within the interval
    assert values(cache, store, ["k"])[0][0] == 1  # type: ignore[index]
    assert cache.fresh("k") is not None
    assert store.stats == ["k"] and store.loads == ["k"]


def test_after_the_interval_a_changed_chunk_is_reloaded_and_an_unchanged_one_is_not() -> None:
    cache, store, clock = make(revalidate=1.0)
    store.put("same", arr(10, 1))
    store.put("changed", arr(10, 1))
    values(cache, store, ["same", "changed", "gone"])
    store.put("changed", arr(10, 2))
    store.put("gone", arr(10, 3))  # a chunk that was missing is now stored
    clock.now += 1.0
    assert cache.fresh("same") is None  # past its interval: the fast path leaves it to get_many
    store.stats.clear()
    store.loads.clear()
    got = values(cache, store, ["same", "changed", "gone"])
    assert [g[0] for g in got] == [1, 2, 3]  # type: ignore[index]
    assert sorted(store.stats) == ["changed", "gone", "same"]  # one batch of stats ...
    assert sorted(store.loads) == ["changed", "gone"]  # ... and only the changed ones read again
    assert cache.stats.changed == 2
    store.stats.clear()
    values(cache, store, ["same", "changed", "gone"])
    assert store.stats == []  # renewed: fresh again for another interval


def test_an_interval_of_zero_stats_every_request() -> None:
    cache, store, _ = make(revalidate=0)
    store.put("k", arr(10, 1))
    for _ in range(3):
        values(cache, store, ["k"])
    assert store.stats == ["k"] * 3 and store.loads == ["k"]
    assert cache.fresh("k") is None
    store.put("k", arr(10, 5))
    assert values(cache, store, ["k"])[0][0] == 5  # type: ignore[index]


def test_the_stamp_is_taken_before_the_read_so_a_racing_write_is_reloaded() -> None:
    """A write between the stat and the read leaves the new value with the old stamp: the
    next revalidation sees another stamp and reads it again, never keeping old data under a
    new stamp."""
    cache, store, clock = make(revalidate=1.0)
    store.put("k", arr(10, 1))
    loads = store.load

    def racing_load(keys: Sequence[Hashable]) -> list[object]:
        store.put("k", arr(10, 2))  # lands after the stat
        return loads(keys)

    (entry,) = cache.get_many(["k"], racing_load, store.stat)
    assert entry.value[0] == 2 and entry.stamp.version == "1"  # type: ignore[union-attr]
    clock.now += 1.0
    store.loads.clear()
    (entry,) = cache.get_many(["k"], store.load, store.stat)
    assert store.loads == ["k"] and entry.stamp.version == "2"  # type: ignore[union-attr]


def test_a_racy_stamp_is_not_trusted_until_it_is_old_enough() -> None:
    """A stamp whose mtime is within RACY_NS of when it was taken could equal the stamp of a
    second write in the same clock tick: such an entry is read again, not renewed."""
    clock = Clock()
    wall = [10**18]
    cache = ChunkCache(10_000, 1.0, clock=clock, wall_ns=lambda: wall[0])
    store = Store()
    store.mtime_ns = wall[0] - 1000  # just written
    store.put("k", arr(10, 1))
    values(cache, store, ["k"])
    clock.now += 1.0
    store.values["k"] = arr(10, 2)  # rewritten in the same tick: same stamp (version not bumped)
    assert values(cache, store, ["k"])[0][0] == 2  # type: ignore[index]
    assert store.loads == ["k", "k"]
    wall[0] += RACY_NS + 1  # the stamp is old enough now
    clock.now += 1.0
    values(cache, store, ["k"])
    clock.now += 1.0
    values(cache, store, ["k"])
    assert store.loads == ["k", "k", "k"]  # reloaded once more while racy, then renewed


def test_stamps_come_from_fresh_entries_or_one_stat_and_a_read_uses_them() -> None:
    cache, store, clock = make(revalidate=1.0)
    store.put("a", arr(10, 1))
    store.put("b", arr(10, 1))
    values(cache, store, ["a"])
    store.stats.clear()
    stamps, known = cache.stamps(["a", "b", "c"], store.stat)
    assert [None if s is None else s.version for s in stamps] == ["1", "1", None]
    assert store.stats == ["b", "c"]  # a is fresh: its own stamp
    store.put("b", arr(10, 2))  # after the stamps were taken
    (a, b, c) = cache.get_many(["a", "b", "c"], store.load, store.stat, known)
    assert store.stats == ["b", "c"]  # not stated again
    assert b.stamp.version == "1" and b.value[0] == 2 and c.value is MISSING  # type: ignore[union-attr, index]
    clock.now += 1.0
    assert values(cache, store, ["b"])[0][0] == 2  # type: ignore[index]
    assert store.loads.count("b") == 2  # its stamp was older than its value: read again


def test_concurrent_misses_of_one_key_load_it_once() -> None:
    cache, store, _ = make(10_000)
    store.put("k", arr(10, 5))
    started = threading.Event()
    release = threading.Event()
    count = 0

    def slow_load(keys: Sequence[Hashable]) -> list[object]:
        nonlocal count
        count += 1
        started.set()
        assert release.wait(10)
        return store.load(keys)

    results: list[object] = []

    def get() -> None:
        results.extend(e.value for e in cache.get_many(["k"], slow_load, store.stat))

    first = threading.Thread(target=get)
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=get) for _ in range(5)]
    for t in others:
        t.start()
    while cache.stats.coalesced < 5:  # the five wait on the first one's load
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert count == 1 and len(results) == 6 and all(r is results[0] for r in results)


def test_a_failed_load_reaches_every_waiter_and_caches_nothing() -> None:
    cache, store, _ = make(10_000)
    store.put("k", arr(3))

    def boom(keys: Sequence[Hashable]) -> list[object]:
        raise OSError("store down")

    with pytest.raises(OSError, match="store down"):
        cache.get_many(["k"], boom, store.stat)
    assert values(cache, store, ["k"])[0].shape == (3,)  # type: ignore[union-attr]


def test_invalidate_drops_entries_and_loads_in_flight() -> None:
    cache, store, _ = make(10_000)
    store.put("k", arr(10, 1))
    values(cache, store, ["k"])
    cache.invalidate(["k"])
    assert len(cache) == 0

    def load_racing_a_write(keys: Sequence[Hashable]) -> list[object]:
        cache.invalidate(keys)  # a write through this worker lands while this (old) value is read
        return [arr(10, 2)]

    (stale,) = cache.get_many(["k"], load_racing_a_write, store.stat)
    assert stale.value[0] == 2 and len(cache) == 0  # returned to its caller, but not kept
    store.put("k", arr(10, 3))
    assert values(cache, store, ["k"])[0][0] == 3  # type: ignore[index]


def test_zero_budget_keeps_nothing_but_stamps_every_load() -> None:
    cache, store, _ = make(0)
    store.put("a", arr(1))
    values(cache, store, ["a"])
    values(cache, store, ["a"])
    assert store.loads == ["a", "a"] and store.stats == ["a", "a"] and cache.current_bytes == 0


def test_clear_drops_entries() -> None:
    cache, store, _ = make(10_000)
    store.put("a", arr(10, 1))
    store.put("b", arr(10, 1))
    values(cache, store, ["a", "b"])
    cache.clear()
    assert len(cache) == 0 and cache.stats.evictions == 0 and cache.stats.invalidations == 2


def test_a_worker_loads_its_kernels_then_freezes_what_it_holds_when_it_starts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A fresh process stands for a worker: building its state (what the lifespan does) starts
    # loading the paste kernel of every served dtype, before any cutout, so the ~0.25 s load
    # does not land between two answers after the worker's first gigabyte of cutouts; then
    # the objects alive (numba's among them) are frozen out of the garbage collector's reach,
    # so a full collection does not stall the worker for ~90 ms every few seconds.
    import subprocess
    import sys

    import bigarrays_core as bc

    for name, dtype in (("a", "int16"), ("b", "float32")):
        bc.create(str(tmp_path / name), dtype=dtype, size=(64, 64, 64))
    code = ("import sys, numpy as np\n"
            "from bigarrays_core.kernels import paste\n"
            "from bigarrays_server import Settings\n"
            "from bigarrays_server.metrics import Metrics\n"
            "from bigarrays_server.state import ServerState\n"
            f"ServerState.start(Settings(datasets={{'a': {str(tmp_path / 'a')!r}, 'b': {str(tmp_path / 'b')!r}}}),"
            " Metrics())\n"
            "paste.wait_for_kernels(120)\n"
            "got = sorted(str(d) for d in paste._kernels)\n"
            "assert got == ['float32', 'int16'], got\n"
            "import gc, time\n"
            "deadline = time.monotonic() + 120\n"
            "while gc.get_freeze_count() == 0 and time.monotonic() < deadline:\n"
            "    time.sleep(0.05)\n"
            "assert gc.get_freeze_count() > 10000, gc.get_freeze_count()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
