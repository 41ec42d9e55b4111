"""The chunk thread pool: every item exactly once, the caller working too, errors surfaced."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from bigarrays_core.array import executor
from bigarrays_core.array.executor import num_threads, run_batches, set_num_threads


@pytest.fixture
def parallelism() -> Iterator[None]:
    before = num_threads()
    yield
    set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [1, 2, 7, 64, 257])
def test_every_item_once_in_contiguous_batches(parallelism: None, threads: int, n: int) -> None:
    set_num_threads(threads)
    seen: list[list[int]] = []
    lock = threading.Lock()

    def work(batch: Sequence[int]) -> None:
        with lock:
            seen.append(list(batch))

    run_batches(work, list(range(n)))
    assert sorted(i for b in seen for i in b) == list(range(n))
    assert all(b == list(range(b[0], b[0] + len(b))) for b in seen)
    if threads == 1:
        assert len(seen) == 1


def test_the_caller_works_and_the_pool_has_one_thread_fewer(parallelism: None) -> None:
    set_num_threads(3)
    names: set[str] = set()
    lock = threading.Lock()
    started = threading.Barrier(3, timeout=10)

    def work(batch: Sequence[int]) -> None:
        with lock:
            names.add(threading.current_thread().name)
        if batch[0] < 3:
            started.wait()  # the first three batches run at once: caller + 2 pool threads

    run_batches(work, list(range(3)))
    assert threading.current_thread().name in names
    assert len(names) == 3
    assert executor._get_pool()._max_workers == 2


def test_a_failure_stops_new_batches_and_is_raised(parallelism: None) -> None:
    set_num_threads(2)
    done: list[int] = []
    lock = threading.Lock()
    failed = threading.Event()

    def work(batch: Sequence[int]) -> None:
        if batch[0] == 0:
            failed.set()
            raise KeyError("chunk 0-64_0-64_0-64")
        failed.wait(10)  # no batch finishes before the failure
        with lock:
            done.append(batch[0])

    with pytest.raises(KeyError, match="0-64_0-64_0-64"):
        run_batches(work, list(range(64)), per_thread=4)  # 8 batches of 8
    # At most the batch running when batch 0 failed (and one taken in the same instant).
    assert len(done) <= 2


def test_inline_below_runs_in_the_caller(parallelism: None) -> None:
    set_num_threads(4)
    names: list[str] = []
    run_batches(lambda b: names.append(threading.current_thread().name), list(range(10)), inline_below=11)
    assert names == [threading.current_thread().name]


def test_parallelism_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        set_num_threads(0)
