"""Large output arrays whose memory is recycled once the caller has dropped them.

A fresh large allocation is paid for at first touch: a page fault per page and the
kernel zeroing it (here ~2.3 µs per 4 KiB page; with huge pages the zeroing alone took a
third of a cutout's CPU time in the server benchmark). Code that reads cutout after
cutout, dropping each, pays that again for every one. :func:`zeros` and :func:`empty`
keep the memory of outputs nobody refers to any more and hand it to the next output of
about the same size, already faulted in; zeroing it again is a ``memset``, several times
cheaper, and outputs that are written completely skip even that. Writes use it too, for
the raw bytes of the whole chunks of a batch (:func:`bigarrays_core.array.write.write_pieces`).

Contract:

* The arrays are ordinary writable numpy arrays over an anonymous private mapping.
  Their memory goes back to the pool only when the array is deallocated, which is after
  every view of it and every buffer exported from it is gone. A view you keep is never
  handed out again.
* Only outputs of at least :data:`MIN_BYTES` and at most the limit below are pooled;
  others are plain numpy allocations (by :func:`empty` not zeroed: small ones come from
  the allocator's recently freed memory, which zeroing would cost more than the copy
  into it), or for ``huge_pages=False`` a plain-page mapping that is not kept.
* ``temporary=True`` arrays (working arrays a call drops before it returns, such as a
  mip task's levels or a write's packed chunks) are pooled from :data:`TEMPORARY_MIN_BYTES`
  up. The allocator does not keep memory of that size for the next call everywhere: a
  Dask worker starts with ``MALLOC_TRIM_THRESHOLD_`` set, which turns glibc's adaptive
  mapping threshold off, so there every allocation of 128 KiB or more is a fresh mapping
  (measured: 29,000 page faults, ~10 % of the CPU time, per build of the benchmark's
  image pyramid on one worker).
* At most ``BIGARRAYS_RECYCLE_MB`` MiB (default 256; read once, by
  :func:`bigarrays_core.config.config`) of idle memory is kept per process (the oldest is
  released first); ``0`` turns recycling off. :func:`set_recycle_limit` changes it at run
  time and releases what is over the new limit.
"""

from __future__ import annotations

import math
import mmap
import threading
import weakref
from collections import deque

import numpy as np

from bigarrays_core.config import config

__all__ = ["MIN_BYTES", "TEMPORARY_MIN_BYTES", "empty", "idle_bytes", "set_recycle_limit", "zeros"]

#: Outputs smaller than this are ordinary numpy allocations.
MIN_BYTES = 4 << 20
#: Temporary arrays smaller than this are ordinary numpy allocations.
TEMPORARY_MIN_BYTES = 128 << 10
#: Pooled buffers are rounded up to whole huge pages; smaller ones to this grain.
_GRAIN = 2 << 20
_SMALL_GRAIN = 64 << 10
#: A buffer is reused for outputs down to this fraction of its size.
_MIN_FILL = 0.75

_lock = threading.Lock()
_idle: deque[mmap.mmap] = deque()
_idle_total = 0
#: Buffers of arrays that died, appended without the lock, moved to ``_idle`` under it.
_returned: deque[mmap.mmap] = deque()


_limit_set: int | None = None  # what set_recycle_limit set; None: the configured limit


def _limit() -> int:
    limit = _limit_set
    return limit if limit is not None else config().recycle_bytes


def set_recycle_limit(nbytes: int) -> None:
    """Keep at most ``nbytes`` of idle output memory (0: none); releases any excess now."""
    global _limit_set
    if nbytes < 0:
        raise ValueError(f"the recycle limit must be >= 0 bytes, got {nbytes}")
    with _lock:
        _limit_set = nbytes
        _settle()


def idle_bytes() -> int:
    """Bytes of output memory currently kept for reuse."""
    with _lock:
        _settle()
        return _idle_total


def zeros(shape: tuple[int, ...], dtype: np.dtype | type, *, huge_pages: bool = True,
          temporary: bool = False) -> np.ndarray:
    """A zeroed Fortran-ordered array of ``shape`` and ``dtype``, from recycled memory if any.

    ``huge_pages`` asks the kernel for transparent huge pages when fresh memory has to be
    mapped: fewer page faults, but each fault zeroes 2 MiB at once, which stalls a thread
    that is also waiting on network fetches. Recycled memory is already resident.
    ``temporary``: the caller drops the array before it returns (pooled from
    :data:`TEMPORARY_MIN_BYTES`; see the module docstring).
    """
    arr, fresh = _array(shape, np.dtype(dtype), huge_pages, zeroed=True, temporary=temporary)
    if not fresh:
        arr.fill(0)  # fresh mappings are zero already
    return arr


def empty(shape: tuple[int, ...], dtype: np.dtype | type, *, huge_pages: bool = True,
          temporary: bool = False) -> np.ndarray:
    """A Fortran-ordered array of ``shape`` and ``dtype`` whose contents are undefined.

    For outputs the caller writes completely (saving the ``memset`` :func:`zeros` does on
    recycled memory). With ``BIGARRAYS_POISON_BUFFERS=1`` (the test suite sets it) every
    such array is filled with 0xA5 bytes, so a voxel a read forgets to write shows up.
    ``huge_pages`` and ``temporary`` as for :func:`zeros`.
    """
    arr, fresh = _array(shape, np.dtype(dtype), huge_pages, temporary=temporary)
    if config().poison_buffers:
        arr.ravel(order="K").view(np.uint8).fill(0xA5)  # a view: the array is contiguous
    return arr


def _array(shape: tuple[int, ...], dtype: np.dtype, huge_pages: bool, zeroed: bool = False,
           temporary: bool = False) -> tuple[np.ndarray, bool]:
    """A Fortran-ordered array and whether its memory is fresh (zeroed): uninitialised
    unless fresh; small and too-big ones are fresh exactly when ``zeroed`` asks for it."""
    nbytes = math.prod(shape) * dtype.itemsize
    limit = _limit()
    if nbytes < (TEMPORARY_MIN_BYTES if temporary else MIN_BYTES):
        # Too small to pool: numpy's allocation. A read of small cutouts one after another
        # gets the allocator's recently freed memory back, already faulted in.
        if zeroed:
            return np.zeros(shape, dtype=dtype, order="F"), True
        return np.empty(shape, dtype=dtype, order="F"), False
    if huge_pages and nbytes > limit:
        # Too big to keep: numpy's allocation (huge pages when large), which also measured
        # faster than a fresh mapping for a 300 MB uint64 output, whose 2 MiB-aligned start
        # made the segmentation decoder ~15 % slower.
        return np.zeros(shape, dtype=dtype, order="F"), True
    buf = _take(nbytes) if nbytes <= limit else None
    fresh = buf is None
    if buf is None:
        grain = _GRAIN if nbytes >= _GRAIN else _SMALL_GRAIN
        buf = mmap.mmap(-1, -(-nbytes // grain) * grain, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        buf.madvise(mmap.MADV_HUGEPAGE if huge_pages and grain == _GRAIN else mmap.MADV_NOHUGEPAGE)
    arr = np.ndarray(shape, dtype=dtype, buffer=buf, order="F")
    # Every view of ``arr`` and every buffer exported from it refers to ``arr`` itself
    # (numpy collapses a view's base only down to the first array that is not a plain
    # view of another ndarray), so ``arr`` dies last.
    weakref.finalize(arr, _give_back, buf).atexit = False
    return arr, fresh


def _take(nbytes: int) -> mmap.mmap | None:
    """The smallest idle buffer that holds ``nbytes`` without wasting much, removed from the
    pool; of several such, the one returned last (likeliest still in the CPU's caches)."""
    global _idle_total
    with _lock:
        _settle()
        best = None
        for buf in reversed(_idle):
            size = len(buf)
            if nbytes <= size and nbytes >= size * _MIN_FILL and (best is None or size < len(best)):
                best = buf
        if best is not None:
            _idle.remove(best)
            _idle_total -= len(best)
        return best


def _give_back(buf: mmap.mmap) -> None:
    """Called when a loaned array is deallocated: queue its buffer, and settle the queue
    unless another section holds the lock.

    This can run anywhere, even inside a section that holds the lock (a garbage collection
    started by an allocation there), so it never waits for the lock.
    """
    _returned.append(buf)
    if _lock.acquire(blocking=False):
        try:
            _settle()
        finally:
            _lock.release()


def _settle() -> None:
    """Move returned buffers into the pool, then fit it to the limit (lock held).

    A buffer dropped here is unmapped when its last export is released (the array being
    deallocated may still hold one).
    """
    global _idle_total
    limit = _limit()
    while _returned:
        buf = _returned.popleft()
        if len(buf) <= limit:
            _idle.append(buf)
            _idle_total += len(buf)
    while _idle and _idle_total > limit:
        _idle_total -= len(_idle.popleft())
