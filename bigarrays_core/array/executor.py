"""The thread pool chunk work runs on, shared by every BigArray in the process.

Its size is ``BIGARRAYS_NUM_THREADS`` or the number of CPUs. Tasks submitted here never
wait on other tasks of the pool, so it cannot deadlock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

__all__ = ["num_threads", "run_batches", "set_num_threads"]

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_size = int(os.environ.get("BIGARRAYS_NUM_THREADS", "0")) or (os.cpu_count() or 2)


def num_threads() -> int:
    return _size


def set_num_threads(n: int) -> None:
    """Resize the pool (takes effect for work submitted afterwards)."""
    global _pool, _size
    if n < 1:
        raise ValueError(f"the thread count must be >= 1, got {n}")
    with _lock:
        old, _pool, _size = _pool, None, n
    if old is not None:
        old.shutdown(wait=False)


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=_size, thread_name_prefix="bigarrays")
            pool = _pool
    return pool


def run_batches(work: Callable[[Sequence[T]], None], items: Sequence[T], *, per_thread: int = 4,
                inline_below: int = 2) -> None:
    """Run ``work`` over contiguous batches of ``items`` and wait for all of them.

    Large jobs get up to ``per_thread`` batches per thread so faster threads take more;
    small ones get one batch per thread. One batch always runs in the caller's thread
    (no hand-off for it), the others on the pool. With fewer than ``inline_below`` items,
    or one thread, everything runs in the caller's thread. The first exception is raised
    after every batch has finished, so no batch outlives the caller's buffers.
    """
    n = len(items)
    if n == 0:
        return
    threads = _size
    if n < inline_below or threads == 1:
        work(items)
        return
    nb = min(n, threads * per_thread) if n >= 4 * threads * per_thread else min(n, threads)
    bounds = [round(i * n / nb) for i in range(nb + 1)]
    pool = _get_pool()
    futures: list[Future[None]] = [
        pool.submit(work, items[a:b]) for a, b in zip(bounds[1:-1], bounds[2:]) if b > a
    ]
    error: BaseException | None = None
    try:
        work(items[bounds[0]:bounds[1]])
    except BaseException as exc:  # re-raised below, after the pool's batches are done
        error = exc
    wait(futures)
    if error is None:
        error = next((f.exception() for f in futures if f.exception() is not None), None)
    if error is not None:
        raise error
