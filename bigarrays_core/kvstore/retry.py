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

The SDKs' own retry loops are switched off wherever this policy runs, so ``retries`` means
what it says: one request per attempt. This module imports nothing from bigarrays but the
errors and :mod:`bigarrays_core.kvstore.failures`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bigarrays_core.errors import StorageError, StoragePermissionError, StorageTimeoutError
from bigarrays_core.kvstore.failures import PERMISSION, TIMEOUTS, TRANSIENT, Failure

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
        """``attempt()`` until it returns, retrying transient failures (sleeping in this thread)."""
        attempts = 0
        while True:
            attempts += 1
            try:
                return attempt()
            except Exception as exc:  # foreign errors are classified by the caller
                failure = classify(exc)
                pause = self.pause(failure, attempts)
                if pause is None:
                    return give_up(exc, failure, attempts)
            time.sleep(pause)

    async def acall(self, attempt: Callable[[], Awaitable[T]], classify: Callable[[Exception], Failure],
                    give_up: GiveUp[T], *, timeout: float | None = None,
                    gate: asyncio.Semaphore | None = None) -> T:
        """``await attempt()`` until it returns, each attempt bounded by ``timeout`` seconds
        and run while holding ``gate`` (a concurrency limit; not held while sleeping)."""
        attempts = 0
        while True:
            attempts += 1
            try:
                if gate is None:
                    return await asyncio.wait_for(_marked(attempt), timeout)
                async with gate:
                    return await asyncio.wait_for(_marked(attempt), timeout)
            except asyncio.CancelledError:
                raise
            except _Inner as inner:
                exc: Exception = inner.exc
                failure = classify(exc)
            except TIMEOUTS as timed_out:  # only wait_for's own: the attempt's are _Inner
                exc = timed_out
                failure = Failure(TRANSIENT, f"no answer within {timeout:g} s", timed_out=True)
            pause = self.pause(failure, attempts)
            if pause is None:
                return give_up(exc, failure, attempts)
            await asyncio.sleep(pause)


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
    naming the number of attempts and the last error; :class:`StorageError` otherwise.
    """
    if failure.kind == PERMISSION:
        return StoragePermissionError(f"cannot {action} {where}: permission or credentials refused ({failure.detail})")
    if failure.kind == TRANSIENT:
        cls = StorageTimeoutError if failure.timed_out else StorageError
        return cls(f"cannot {action} {where}: gave up after {attempts} attempt{'s' if attempts != 1 else ''}; "
                   f"last error: {failure.detail}")
    return StorageError(f"cannot {action} {where}: {failure.detail}")
