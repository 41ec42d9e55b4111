"""The chunk cache: byte budget, LRU order, single flight with real threads, invalidation."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence

import numpy as np
import pytest
from bigarrays_server.cache import MISSING, ChunkCache


def arr(n: int, fill: int = 0) -> np.ndarray:
    return np.full(n, fill, dtype=np.uint8)


def test_budget_is_bytes_and_least_recently_used_goes_first() -> None:
    cache = ChunkCache(300)
    loads: list[Hashable] = []

    def load(keys: Sequence[Hashable]) -> list[np.ndarray]:
        loads.extend(keys)
        return [arr(100, i) for i, _ in enumerate(keys)]

    cache.get_many(["a", "b", "c"], load)
    assert cache.current_bytes == 300
    cache.get_many(["a"], load)  # a is now the most recent
    cache.get_many(["d"], load)  # evicts b
    assert cache.current_bytes == 300 and cache.stats.evictions == 1
    loads.clear()
    cache.get_many(["a", "c", "d"], load)
    assert loads == []
    cache.get_many(["b"], load)
    assert loads == ["b"]


def test_values_are_read_only_and_missing_is_cached() -> None:
    cache = ChunkCache(1000)
    calls = []

    def load(keys: Sequence[Hashable]) -> list[object]:
        calls.append(list(keys))
        return [MISSING if k == "gone" else arr(10) for k in keys]

    value, gone = cache.get_many(["x", "gone"], load)
    assert gone is MISSING
    with pytest.raises(ValueError):
        value[0] = 1
    cache.get_many(["x", "gone"], load)
    assert calls == [["x", "gone"]] and cache.stats.hits == 2


def test_concurrent_misses_of_one_key_load_it_once() -> None:
    cache = ChunkCache(10_000)
    started = threading.Event()
    release = threading.Event()
    count = 0

    def slow_load(keys: Sequence[Hashable]) -> list[np.ndarray]:
        nonlocal count
        count += 1
        started.set()
        assert release.wait(10)
        return [arr(10, 5) for _ in keys]

    results: list[np.ndarray] = []
    first = threading.Thread(target=lambda: results.extend(cache.get_many(["k"], slow_load)))
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=lambda: results.extend(cache.get_many(["k"], slow_load))) for _ in range(5)]
    for t in others:
        t.start()
    while cache.stats.coalesced < 5:  # the five wait on the first one's load
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert count == 1 and len(results) == 6 and all(r is results[0] for r in results)


def test_a_failed_load_reaches_every_waiter_and_caches_nothing() -> None:
    cache = ChunkCache(10_000)

    def boom(keys: Sequence[Hashable]) -> list[np.ndarray]:
        raise OSError("store down")

    with pytest.raises(OSError, match="store down"):
        cache.get_many(["k"], boom)
    assert cache.get_many(["k"], lambda keys: [arr(3)])[0].shape == (3,)


def test_invalidate_drops_entries_and_loads_in_flight() -> None:
    cache = ChunkCache(10_000)
    cache.get_many(["k"], lambda keys: [arr(10, 1)])
    cache.invalidate(["k"])
    assert len(cache) == 0

    def load_racing_a_write(keys: Sequence[Hashable]) -> list[np.ndarray]:
        cache.invalidate(keys)  # a write lands while this (old) value is being read
        return [arr(10, 2)]

    (stale,) = cache.get_many(["k"], load_racing_a_write)
    assert stale[0] == 2 and len(cache) == 0  # returned to its caller, but not kept
    assert cache.get_many(["k"], lambda keys: [arr(10, 3)])[0][0] == 3


def test_zero_budget_keeps_nothing() -> None:
    cache = ChunkCache(0)
    n = 0

    def load(keys: Sequence[Hashable]) -> list[np.ndarray]:
        nonlocal n
        n += 1
        return [arr(1)]

    cache.get_many(["a"], load)
    cache.get_many(["a"], load)
    assert n == 2 and cache.current_bytes == 0


def test_clear_drops_entries_and_loads_in_flight() -> None:
    cache = ChunkCache(10_000)
    cache.get_many(["a", "b"], lambda keys: [arr(10, 1) for _ in keys])
    cache.clear()
    assert len(cache) == 0 and cache.stats.evictions == 0 and cache.stats.invalidations == 2

    def load_racing_another_workers_write(keys: Sequence[Hashable]) -> list[np.ndarray]:
        cache.clear()  # another worker's write is noticed while this (old) value is being read
        return [arr(10, 2)]

    (stale,) = cache.get_many(["a"], load_racing_another_workers_write)
    assert stale[0] == 2 and len(cache) == 0  # returned to its caller, but not kept
    assert cache.get_many(["a"], lambda keys: [arr(10, 3)])[0][0] == 3
