"""The thread pool chunk work runs on, shared by every BigArray in the process.

Its size is ``BIGARRAYS_NUM_THREADS`` or the number of CPUs. Tasks submitted here never
wait on other tasks of the pool, so it cannot deadlock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
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
    """Run ``work`` over contiguous batches of ``items`` on the pool and wait for all.

    Up to ``per_thread`` batches per thread are made so faster threads take more. With
    fewer than ``inline_below`` items, or one thread, ``work`` runs in the caller's thread.
    The first exception is re-raised after the rest of the batches have finished.
    """
    n = len(items)
    if n == 0:
        return
    threads = _size
    if n < inline_below or threads == 1:
        work(items)
        return
    nb = min(n, threads * per_thread)
    bounds = [round(i * n / nb) for i in range(nb + 1)]
    pool = _get_pool()
    futures: list[Future[None]] = [pool.submit(work, items[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a]
    done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    failed = [f for f in futures if f.done() and f.exception() is not None]
    if failed:
        wait(futures)  # let the rest finish before the caller's buffers go away
        exc = failed[0].exception()
        assert exc is not None
        raise exc
