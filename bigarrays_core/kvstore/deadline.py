"""A deadline for the storage calls of one thread: how long its caller lets storage take.

``with within(seconds): ...`` sets a deadline for every store call the current thread makes
inside the block (a server sets one per request, so a hanging store cannot hold a request,
retries included, longer than it allows). Stores that wait on the network read
:func:`remaining` in the calling thread (and hand it to the threads or event loop that run
their requests): each attempt is cut to the time left, and once it has passed no further
attempt is made and :class:`~bigarrays_core.errors.StorageTimeoutError` is raised. A nested
``within`` never extends the deadline around it. Without a deadline stores use their own
timeouts and retry budgets only.

This module imports nothing from bigarrays but the errors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bigarrays_core.errors import StorageTimeoutError

__all__ = ["check", "current", "remaining", "within"]

_local = threading.local()


@contextmanager
def within(seconds: float) -> Iterator[float]:
    """Store calls of this thread inside the block must finish within ``seconds`` (from now);
    yields the deadline (a ``time.monotonic()`` value)."""
    outer: float | None = getattr(_local, "deadline", None)
    deadline = time.monotonic() + max(0.0, float(seconds))
    if outer is not None:
        deadline = min(deadline, outer)
    _local.deadline = deadline
    try:
        yield deadline
    finally:
        _local.deadline = outer


def current() -> float | None:
    """This thread's deadline (a ``time.monotonic()`` value), or None."""
    deadline: float | None = getattr(_local, "deadline", None)
    return deadline


def remaining(deadline: float | None = None) -> float | None:
    """Seconds left before ``deadline`` (default: this thread's), at least 0; None when
    there is no deadline."""
    if deadline is None:
        deadline = current()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def check(what: str, deadline: float | None = None) -> None:
    """Raise :class:`StorageTimeoutError` naming ``what`` when ``deadline`` (default: this
    thread's) has passed."""
    left = remaining(deadline)
    if left is not None and left <= 0:
        raise StorageTimeoutError(f"cannot {what}: the caller's deadline for storage passed")
