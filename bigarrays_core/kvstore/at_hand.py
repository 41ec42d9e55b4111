"""Reads that never wait for a device: what an event loop may make itself.

Inside ``with at_hand_only():`` a store whose :attr:`~bigarrays_core.kvstore.KVStore.reads_at_hand`
is True serves a read from :meth:`~bigarrays_core.kvstore.KVStore.iter_values` only with what is
already in memory, and raises :class:`NotAtHand` for anything it would have to wait for:

- :class:`~bigarrays_core.kvstore.LocalStore` reads a plain file (no compression suffix) with
  ``preadv2(..., RWF_NOWAIT)``, which copies from the page cache and fails instead of starting
  disk I/O (Linux 4.14 and later); a file not wholly in the page cache, a compressed variant,
  or a kernel or file system without the flag raise :class:`NotAtHand`. Opening and stat-ing
  the file still look up its directory entries (metadata, as the server's revalidation stat
  already does on its event loop); no directory is listed.
- :class:`~bigarrays_core.kvstore.MemoryStore` always has its values at hand.

Stores without the flag are never asked: callers check ``reads_at_hand`` first. The server's
fast path uses this to answer a cache miss of a raw chunk file on its event loop, as nginx
reads a page-cached file, instead of handing the read to a worker thread; :class:`NotAtHand`
sends it the usual way. The setting is a context variable: it holds in the thread (or asyncio
task) that entered the block, never in worker threads that thread starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["NotAtHand", "at_hand_only", "only_at_hand"]

_ONLY: ContextVar[bool] = ContextVar("bigarrays_at_hand_only", default=False)


class NotAtHand(Exception):
    """A read inside :func:`at_hand_only` needs data that is not in memory: make it where
    blocking is allowed. A signal between a store and its caller, never an error for users."""


@contextmanager
def at_hand_only() -> Iterator[None]:
    """Within the block, reads of stores that read at hand never wait for a device."""
    token = _ONLY.set(True)
    try:
        yield
    finally:
        _ONLY.reset(token)


def only_at_hand() -> bool:
    """True inside :func:`at_hand_only`."""
    return _ONLY.get()
