"""Per-thread scratch buffers: memory a thread fills and is done with before it asks the
same buffer for more.

Reading and decoding a chunk at a time wants somewhere to put each chunk's bytes. A fresh
allocation per chunk costs its page faults wherever the allocator maps large blocks afresh
(a Dask worker's does, for anything of 128 KiB or more), and memory reused chunk after chunk
stays in the CPU's caches. Each :class:`ThreadScratch` keeps one buffer per thread, grown to
the largest request seen in that thread and never shrunk; what a caller got is overwritten by
that thread's next use of the same :class:`ThreadScratch`. Users that may be active at once
in one thread (a store's read buffer holding the compressed bytes an inflater reads) each
have their own.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["MIN_BYTES", "ThreadScratch"]

#: The least a buffer is allocated with (a 64³ uint8 chunk), so small requests do not regrow it.
MIN_BYTES = 1 << 18


class ThreadScratch:
    """One reusable byte buffer per thread."""

    __slots__ = ("_local",)

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, nbytes: int) -> np.ndarray:
        """This thread's buffer, a C-contiguous uint8 array of at least ``nbytes`` bytes
        (contents undefined), valid until this thread's next :meth:`get`."""
        buf: np.ndarray | None = getattr(self._local, "buf", None)
        if buf is None or buf.nbytes < nbytes:
            buf = self._local.buf = np.empty(max(nbytes, MIN_BYTES), dtype=np.uint8)
        return buf
