"""The one retry policy of every remote call bigarrays makes: object stores, obstore, the REST client.

A :class:`RetryPolicy` owns the loop: how many attempts, how long each may take, how long to
wait between them, and which failures are worth another attempt. What a failure *means* is
the caller's: it passes ``classify``, which turns an exception into a
:class:`~bigarrays_core.kvstore.failures.Failure` (the stores use
:func:`~bigarrays_core.kvstore.failures.classify`), and ``give_up``, called once there is
to be no further attempt, which returns a value (a missing object is a value) or raises the
caller's error (:func:`storage_error` makes the stores' ones).

The rules:

* Only :data:`~bigarrays_core.kvstore.failures.TRANSIENT` failures are retried, at most
  ``retries`` times; every other kind goes to ``give_up`` at once.
* Retry ``n`` (from 1) first sleeps ``uniform(0, min(max_backoff, backoff * 2**(n-1)))``
  seconds ("full jitter", so clients that failed together do not retry together), or the
  ``Retry-After`` a server sent, capped at ``max_retry_after``.
* :meth:`RetryPolicy.acall` bounds each attempt by ``timeout`` seconds itself; an attempt it
  cuts short is a transient failure that ``timed_out``. (:meth:`RetryPolicy.call` runs
  blocking calls, which bound themselves: obstore's and httpx's client timeouts.)
* The caller's deadline (:mod:`~bigarrays_core.kvstore.deadline`, in force where the call is
  made: the calling thread, or the asyncio task that awaits :meth:`RetryPolicy.acall`) bounds
  everything further. :meth:`RetryPolicy.acall` cuts each attempt (and its wait for the
  ``gate``) to the time left; neither method starts an attempt or a backoff sleep that the
  deadline would interrupt. Once no attempt may start, ``give_up`` is called with a
  :data:`~bigarrays_core.kvstore.failures.DEADLINE` failure whose ``detail`` is the last
  attempt's error (``timed_out`` is set), and :func:`storage_error` makes that a
  :class:`~bigarrays_core.errors.StorageTimeoutError` naming the key and the attempts made. A
  blocking attempt in :meth:`RetryPolicy.call` cannot be cut from outside: it may read
  :func:`~bigarrays_core.kvstore.deadline.remaining` itself, or its caller stops waiting for
  it (:func:`~bigarrays_core.kvstore.deadline.result`).

The SDKs' own retry loops are switched off wherever this policy runs, so ``retries`` means
what it says: one request per attempt. This module imports nothing from bigarrays but the
errors, :mod:`bigarrays_core.kvstore.failures` and :mod:`bigarrays_core.kvstore.deadline`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bigarrays_core.errors import StorageError, StoragePermissionError, StorageTimeoutError
from bigarrays_core.kvstore import deadline
from bigarrays_core.kvstore.failures import DEADLINE, PERMISSION, TIMEOUTS, TRANSIENT, Failure

__all__ = ["GiveUp", "RetryPolicy", "storage_error"]

T = TypeVar("T")

#: ``give_up(exc, failure, attempts)``: the value to return, or raise, once there is to be no
#: further attempt (``failure`` classifies ``exc``, the last of ``attempts`` attempts).
GiveUp = Callable[[Exception, Failure, int], T]


class _Inner(Exception):
    """Carries an exception raised inside an attempt past :meth:`RetryPolicy.acall`'s own
    timeout, so an SDK's TimeoutError is never mistaken for the policy's."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(exc)
        self.exc = exc


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Parameters
    ----------
    retries:
        Most retries after a transient failure (so at most ``retries + 1`` attempts).
    backoff, max_backoff:
        Retry ``n`` (from 1) first sleeps ``uniform(0, min(max_backoff, backoff * 2**(n-1)))`` s.
    max_retry_after:
        The longest ``Retry-After`` a server may make a retry wait.
    """

    retries: int = 5
    backoff: float = 0.2
    max_backoff: float = 10.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        for name, value, ok in (
            ("retries", self.retries, isinstance(self.retries, int) and self.retries >= 0),
            ("backoff", self.backoff, self.backoff >= 0),
            ("max_backoff", self.max_backoff, self.max_backoff >= 0),
            ("max_retry_after", self.max_retry_after, self.max_retry_after >= 0),
        ):
            if not ok:
                raise ValueError(f"RetryPolicy: {name}={value!r} is out of range")

    def pause(self, failure: Failure, attempts: int) -> float | None:
        """Seconds to sleep before attempt ``attempts + 1`` after ``failure`` ended attempt
        ``attempts``; None when there is to be none (not transient, or retries used up)."""
        if failure.kind != TRANSIENT or attempts > self.retries:
            return None
        if failure.retry_after is not None:
            return min(max(failure.retry_after, 0.0), self.max_retry_after)
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempts - 1)))

    def call(self, attempt: Callable[[], T], classify: Callable[[Exception], Failure], give_up: GiveUp[T]) -> T:
        """``attempt()`` until it returns, retrying transient failures (sleeping in this thread),
        within the deadline in force in this thread."""
        until = deadline.current()
        attempts = 0
        exc: Exception | None = None
        failure: Failure | None = None
        while True:
            if _passed(until):
                return give_up(*_late(exc, failure, attempts))
            attempts += 1
            try:
                return attempt()
            except Exception as e:  # foreign errors are classified by the caller
                exc, failure = e, classify(e)
            pause = self.pause(failure, attempts)
            if pause is None:
                return give_up(exc, failure, attempts)
            if _too_late_for(pause, until):
                return give_up(*_late(exc, failure, attempts))
            time.sleep(pause)

    async def acall(self, attempt: Callable[[], Awaitable[T]], classify: Callable[[Exception], Failure],
                    give_up: GiveUp[T], *, timeout: float | None = None,
                    gate: asyncio.Semaphore | None = None) -> T:
        """``await attempt()`` until it returns, each attempt bounded by ``timeout`` seconds and
        by the deadline in force in the awaiting task, and run while holding ``gate`` (a
        concurrency limit; not held while sleeping, waited for no longer than the deadline)."""
        until = deadline.current()
        attempts = 0
        exc: Exception | None = None
        failure: Failure | None = None
        while True:
            left = deadline.remaining(until)
            if left is not None and left <= 0:
                return give_up(*_late(exc, failure, attempts))
            if gate is not None:
                try:
                    await asyncio.wait_for(gate.acquire(), left)
                except TIMEOUTS:  # every slot taken until the deadline
                    return give_up(*_late(exc, failure, attempts))
            attempts += 1
            limit = _least(timeout, deadline.remaining(until))
            try:
                return await asyncio.wait_for(_marked(attempt), limit)
            except asyncio.CancelledError:
                raise
            except _Inner as inner:
                exc = inner.exc
                failure = classify(exc)
            except TIMEOUTS as timed_out:  # only wait_for's own: the attempt's are _Inner
                exc = timed_out
                failure = Failure(TRANSIENT, f"no answer within {limit:.3g} s", timed_out=True)
            finally:
                if gate is not None:
                    gate.release()
            pause = self.pause(failure, attempts)
            if pause is None:
                return give_up(exc, failure, attempts)
            if _too_late_for(pause, until):
                return give_up(*_late(exc, failure, attempts))
            await asyncio.sleep(pause)


def _least(timeout: float | None, left: float | None) -> float | None:
    return left if timeout is None else timeout if left is None else min(timeout, left)


def _passed(until: float | None) -> bool:
    left = deadline.remaining(until)
    return left is not None and left <= 0


def _too_late_for(pause: float, until: float | None) -> bool:
    """True when a sleep of ``pause`` seconds would reach the deadline ``until``."""
    left = deadline.remaining(until)
    return left is not None and pause >= left


def _late(exc: Exception | None, failure: Failure | None, attempts: int) -> tuple[Exception, Failure, int]:
    """``give_up``'s arguments when the deadline ends the retries after ``attempts`` attempts
    (the last of which raised ``exc``, meaning ``failure``)."""
    detail = failure.detail if failure is not None else ""
    if exc is None:
        exc = StorageTimeoutError("the caller's deadline for storage passed before any attempt")
    return exc, Failure(DEADLINE, detail, timed_out=True), attempts


async def _marked(attempt: Callable[[], Awaitable[T]]) -> T:
    try:
        return await attempt()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise _Inner(exc) from exc


def storage_error(action: str, where: str, failure: Failure, attempts: int) -> StorageError:
    """The error a store raises when a request to ``where`` fails for good.

    :class:`StoragePermissionError` for refused credentials; after retries ran out,
    :class:`StorageTimeoutError` (the last attempt timed out) or :class:`StorageError`
    naming the number of attempts and the last error; :class:`StorageTimeoutError` naming
    them when the caller's deadline ended the retries; :class:`StorageError` otherwise.
    """
    plural = "s" if attempts != 1 else ""
    if failure.kind == DEADLINE:
        if not attempts:
            return StorageTimeoutError(f"cannot {action} {where}: the caller's deadline for storage passed "
                                       "before any attempt")
        last = f"; last error: {failure.detail}" if failure.detail else ""
        return StorageTimeoutError(f"cannot {action} {where}: the caller's deadline for storage passed after "
                                   f"{attempts} attempt{plural}{last}")
    if failure.kind == PERMISSION:
        return StoragePermissionError(f"cannot {action} {where}: permission or credentials refused ({failure.detail})")
    if failure.kind == TRANSIENT:
        cls = StorageTimeoutError if failure.timed_out else StorageError
        return cls(f"cannot {action} {where}: gave up after {attempts} attempt{plural}; "
                   f"last error: {failure.detail}")
    return StorageError(f"cannot {action} {where}: {failure.detail}")
