"""A deadline for storage calls: how long their caller lets storage take.

``with within(seconds): ...`` sets a deadline for every store call made inside the block (a
server sets one per request, so a hanging store cannot hold a request, retries included,
longer than it allows). A nested ``within`` (or :func:`at`) never extends the deadline around
it. Without a deadline stores use their own timeouts and retry budgets only.

The deadline is a context variable, so it follows the work wherever the work goes in the
ordinary ways: asyncio tasks started inside the block copy it (the stores' requests on their
IO event loop see their caller's deadline), and :func:`carry` hands it to a function another
thread runs on the caller's behalf (a pool thread blocked in a request). Plain threads and
thread pools do not inherit it otherwise.

How stores honour it: the one retry policy (:class:`~bigarrays_core.kvstore.retry.RetryPolicy`)
cuts each attempt to the time left, starts no attempt and no backoff sleep past it, and then
raises :class:`~bigarrays_core.errors.StorageTimeoutError` naming the key and the attempts made;
a caller waiting for a request another thread is blocked in stops waiting at the deadline
(:func:`result`).

This module imports nothing from bigarrays but the errors.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from bigarrays_core.errors import StorageTimeoutError

__all__ = ["at", "carry", "check", "current", "remaining", "result", "within"]

P = ParamSpec("P")
T = TypeVar("T")

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("bigarrays_storage_deadline",
                                                                          default=None)


@contextmanager
def at(until: float | None) -> Iterator[float | None]:
    """Store calls inside the block must finish by ``until`` (a ``time.monotonic()`` value);
    an earlier deadline around the block still wins. ``until=None`` adds no deadline (the
    one around the block, if any, stays). Yields the deadline in force inside the block."""
    outer = _deadline.get()
    if until is None:
        yield outer
        return
    if outer is not None:
        until = min(until, outer)
    token = _deadline.set(until)
    try:
        yield until
    finally:
        _deadline.reset(token)


@contextmanager
def within(seconds: float) -> Iterator[float]:
    """Store calls inside the block must finish within ``seconds`` (from now); yields the
    deadline in force (a ``time.monotonic()`` value, never later than an outer one)."""
    with at(time.monotonic() + max(0.0, float(seconds))) as until:
        assert until is not None
        yield until


def current() -> float | None:
    """The deadline in force here (a ``time.monotonic()`` value), or None."""
    return _deadline.get()


def remaining(deadline: float | None = None) -> float | None:
    """Seconds left before ``deadline`` (default: the one in force here), at least 0; None
    when there is no deadline."""
    if deadline is None:
        deadline = current()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def check(what: str, deadline: float | None = None) -> None:
    """Raise :class:`StorageTimeoutError` naming ``what`` when ``deadline`` (default: the one
    in force here) has passed."""
    left = remaining(deadline)
    if left is not None and left <= 0:
        raise StorageTimeoutError(f"cannot {what}: the caller's deadline for storage passed")


def carry(func: Callable[P, T]) -> Callable[P, T]:
    """``func``, to be called in another thread under the deadline in force *now* (here)."""
    until = current()
    if until is None:
        return func

    def carried(*args: P.args, **kwargs: P.kwargs) -> T:
        with at(until):
            return func(*args, **kwargs)

    return carried


def result(future: concurrent.futures.Future[T], what: str, deadline: float | None = None) -> T:
    """The result of ``future`` (work another thread does for this caller), waiting at most
    until ``deadline`` (default: the one in force here).

    Raises :class:`StorageTimeoutError` naming ``what`` when the deadline passes first (the
    work itself goes on in its thread; nothing it returns is used), and whatever the work
    raised otherwise.
    """
    until = current() if deadline is None else deadline
    if until is None:
        return future.result()
    try:
        return future.result(timeout=remaining(until))
    except concurrent.futures.TimeoutError:
        if future.done():  # finished in the same instant
            return future.result()
        raise StorageTimeoutError(
            f"cannot {what}: the caller's deadline for storage passed while its request was still "
            "waiting for an answer"
        ) from None
