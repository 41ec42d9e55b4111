"""Reading plain raw chunk spans from open files straight into a cutout, without the GIL.

A small cutout of plain raw chunks on local disk (a 128³ box touches 27 chunks) spends
more time in Python per chunk (finding the bytes, wrapping them, pasting them) than in
copying them. :func:`reader` gives a kernel that does, for a whole batch of chunks, what
that Python did per chunk: ``pread`` the bytes of each chunk's span (see
:meth:`~bigarrays_core.codecs.raw.RawCodec.region_span`) from an open file into a scratch
buffer and copy the region into the output, all in one call that releases the GIL.

The kernel is tiered in with the copy kernel of :mod:`bigarrays_core.kernels.paste`: it is
compiled (and cached on disk) when that one is, for the same dtypes, so a process that
reads little never imports numba, and :func:`reader` returns None until then. ``pread`` is
libc's, declared to numba by name (resolved when the kernel is linked).

Each batch is a ``(n, JOB_FIELDS)`` int64 array, one row per chunk; the kernel writes how
many bytes it read into the ``GOT`` column, and copies a chunk's region only when that is
the whole span (a chunk it could not read -- an error, a file cut short since it was
opened -- is left to the caller, who reads it the ordinary way and reports its error).
"""

from __future__ import annotations

import threading
from typing import Any, Final

import numpy as np

__all__ = ["GOT", "JOB_FIELDS", "NBYTES", "load", "reader"]

#: The columns of a job row: the file, where its span starts and how long it is (bytes),
#: the region's shape ``(nx, ny, nz, nc)``, the chunk's element strides ``(sy, sz, sc)``
#: (x is 1), where the region goes in the output ``(tx, ty, tz)``, and the bytes read.
FD, OFFSET, NBYTES, NX, NY, NZ, NC, SY, SZ, SC, TX, TY, TZ, GOT = range(14)
JOB_FIELDS: Final = 14

_kernels: dict[np.dtype, Any] = {}
_lock = threading.Lock()
_pread: Any = None  # libc's pread (:data:`.jit.PREAD`), set when the first kernel is compiled


def reader(dtype: np.dtype) -> Any:
    """The compiled kernel for ``dtype`` (``kernel(jobs, scratch, out)``), or None if not
    loaded (yet). ``scratch`` is a C-contiguous 1-D array of ``dtype`` of at least the
    largest span's bytes; ``out`` a writable 4-D array of ``dtype``."""
    return _kernels.get(dtype)


def load(dtype: np.dtype) -> Any:
    """Compile (or load from the disk cache) the kernel for ``dtype``; called by the paste
    kernels' loader. Only for the native integer and float dtypes of
    :data:`bigarrays_core.kernels.paste.DTYPES` (bool volumes are stored as bytes)."""
    compiled = _kernels.get(dtype)
    if compiled is not None:
        return compiled
    with _lock:
        compiled = _kernels.get(dtype)
        if compiled is None:
            import numba
            from numba import types

            from .jit import PREAD, kernel

            global _pread
            _pread = PREAD
            item = numba.from_dtype(dtype)
            signature = types.void(types.Array(types.int64, 2, "C"), types.Array(item, 1, "C"),
                                   types.Array(item, 4, "A"))
            compiled = kernel([signature])(_read_spans)
            _kernels[dtype] = compiled
    return compiled


def _read_spans(jobs: Any, scratch: Any, out: Any) -> None:
    # Indices are unsigned: numba wraps signed indices around (a compare and a select per
    # access), which keeps the innermost copy from being vectorised.
    address = scratch.ctypes.data
    for i in range(jobs.shape[0]):
        fd, offset, n = jobs[i, FD], jobs[i, OFFSET], jobs[i, NBYTES]
        got = 0
        while got < n:
            r = _pread(np.intc(fd), address + got, np.uint64(n - got), offset + got)
            if r <= 0:  # an error, or the end of a file cut short since it was opened
                break
            got += r
        jobs[i, GOT] = got
        if got != n:
            continue
        nx, ny, nz, nc = np.uint64(jobs[i, NX]), np.uint64(jobs[i, NY]), np.uint64(jobs[i, NZ]), np.uint64(jobs[i, NC])
        sy, sz, sc = np.uint64(jobs[i, SY]), np.uint64(jobs[i, SZ]), np.uint64(jobs[i, SC])
        tx, ty, tz = np.uint64(jobs[i, TX]), np.uint64(jobs[i, TY]), np.uint64(jobs[i, TZ])
        for c in range(nc):
            for z in range(nz):
                for y in range(ny):
                    base = y * sy + z * sz + c * sc
                    oy, oz = ty + y, tz + z
                    for x in range(nx):
                        out[tx + x, oy, oz, c] = scratch[base + x]
