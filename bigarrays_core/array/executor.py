"""The thread pool chunk work runs on, shared by every BigArray in the process.

The parallelism is ``BIGARRAYS_NUM_THREADS`` or the number of CPUs (read once, by
:func:`bigarrays_core.config.config`, on first use), or what :func:`set_num_threads` set:
the calling thread works too, with that many minus one pool threads. Tasks submitted here never wait on
other tasks of the pool, so it cannot deadlock.

Where something else already runs many tasks in parallel, chunk work must not fan out
again on top of it: inside :func:`serial` (the threads of a bigarrays job, every function
bigarrays hands to Dask), and in the task threads of a Dask ``distributed`` worker (found
through ``distributed.get_worker()``; the worker's thread count is then the parallelism),
:func:`run_batches` runs everything in the calling thread.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TypeVar

from bigarrays_core.config import config

__all__ = ["in_parallel_task", "num_threads", "run_batches", "serial", "set_num_threads"]

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_size: int | None = None  # None: the configured parallelism (read on first use)


def num_threads() -> int:
    """How many threads chunk work runs on (>= 1): the caller plus ``num_threads() - 1`` pool threads."""
    size = _size
    return size if size is not None else config().num_threads


def set_num_threads(n: int) -> None:
    """Resize the pool (takes effect for work submitted afterwards)."""
    global _pool, _size
    if n < 1:
        raise ValueError(f"the thread count must be >= 1, got {n}")
    with _lock:
        old, _pool, _size = _pool, None, n
    if old is not None:
        old.shutdown(wait=False)


_local = threading.local()


@contextmanager
def serial() -> Iterator[None]:
    """Within the block, chunk work started by this thread runs in this thread only (see
    the module docstring). Nests."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


def in_parallel_task() -> bool:
    """True inside :func:`serial` or a task of a Dask ``distributed`` worker."""
    if getattr(_local, "depth", 0):
        return True
    distributed = sys.modules.get("distributed")  # never imported here: only if in use
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=max(1, num_threads() - 1), thread_name_prefix="bigarrays")
            pool = _pool
    return pool


def run_batches(work: Callable[[Sequence[T]], None], items: Sequence[T], *, per_thread: int = 4,
                inline_below: int = 2) -> None:
    """Run ``work`` over contiguous batches of ``items`` and wait for all of them.

    Large jobs are cut into ``per_thread`` batches per thread, small ones into one batch
    per thread. The caller's thread and the pool's threads (one fewer than the
    parallelism, so no core is oversubscribed) take batches from one shared queue until
    it is empty, so faster threads take more. With fewer than ``inline_below`` items, a
    parallelism of one, or :func:`in_parallel_task`, everything runs in the caller's thread. After a failure no
    new batch starts; the first exception is raised once every running batch has
    finished, so no batch outlives the caller's buffers.
    """
    n = len(items)
    if n == 0:
        return
    threads = num_threads()
    if n < inline_below or threads == 1 or in_parallel_task():
        work(items)
        return
    nb = min(n, threads * per_thread) if n >= 4 * threads * per_thread else min(n, threads)
    bounds = [round(i * n / nb) for i in range(nb + 1)]
    batches = iter([items[a:b] for a, b in zip(bounds, bounds[1:]) if b > a])
    take = threading.Lock()
    errors: list[BaseException] = []

    def drain() -> None:
        while True:
            with take:
                batch = None if errors else next(batches, None)
            if batch is None:
                return
            try:
                work(batch)
            except BaseException as exc:  # re-raised by the caller below
                with take:
                    errors.append(exc)
                return

    pool = _get_pool()
    helpers: list[Future[None]] = [pool.submit(drain) for _ in range(min(threads - 1, nb - 1))]
    drain()
    # Helpers that never started have nothing left to do: drop them instead of waiting.
    wait([f for f in helpers if not f.cancel()])
    if errors:
        raise errors[0]
