"""Blocking storage work of a request, run off the event loop within the request's deadline.

Owns: :func:`run_storage` and :func:`handed_failure`. Every route that reads storage (chunk loads, stats, cutout
pieces, files) calls it instead of ``anyio.to_thread.run_sync``: the work runs in a worker
thread under a core deadline (:mod:`bigarrays_core.kvstore.deadline`, which stores that
retry honour: no attempt past it), and the request waits at most ``storage_timeout``
seconds. If the work has not finished by then the request gets a 504
(``upstream_timeout``) at once; the thread is left to finish on its own (its store gives
up at the deadline) and nothing it returns is used.

The fast path (:mod:`bigarrays_server.fastpath`) loads the chunks of the requests it serves
through the same call. When that load fails it leaves the exception in the request's scope
under :data:`FAILED_LOAD` and falls through; the route then raises it from
:func:`handed_failure` before its own storage call, so a failing or hanging store is asked
once per request (one deadline, one set of retries), and the error is answered by the one
error table.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread
from bigarrays_server.errors import ApiError

import bigarrays_core as bc
from bigarrays_core.kvstore import deadline

__all__ = ["FAILED_LOAD", "handed_failure", "run_storage"]

T = TypeVar("T")

#: The ASGI scope key under which the fast path hands a failed load to the route.
FAILED_LOAD: Final = "bigarrays.failed_load"


async def run_storage(timeout: float, what: str, func: Callable[..., T], *args: object) -> T:
    """``func(*args)`` in a worker thread, bounded by ``timeout`` seconds.

    Raises a 504 :class:`ApiError` naming ``what`` when it does not finish in time; its own
    exceptions propagate.
    """

    def bounded() -> T:
        with deadline.within(timeout):
            return func(*args)

    try:
        with anyio.fail_after(timeout):
            return await anyio.to_thread.run_sync(bounded, abandon_on_cancel=True)
    except TimeoutError as exc:
        if isinstance(exc, bc.BigArraysError):  # the store's own StorageTimeoutError
            raise
        raise ApiError.of(bc.StorageTimeoutError,
                          f"storage did not answer within {timeout:g} s while {what} "
                          f"(the server's storage timeout)", {"timeout": timeout}) from None


def handed_failure(scope: MutableMapping[str, Any]) -> None:
    """Raise the exception the fast path's load for this request ended with, if it tried one
    (see the module docstring); otherwise return."""
    exc = scope.pop(FAILED_LOAD, None)
    if exc is not None:
        raise exc
