"""Averaging plain raw chunks by (2, 2, 1) straight from their open files, without the GIL.

The first level of a pyramid task reads every source chunk and reduces it into the task's
result. Done chunk by chunk from Python, each chunk takes five calls that release the GIL
(open, stat, read, close, the reduction) with Python in between; on two threads, each of
those hand-overs of the GIL may wait for the other thread to be woken (tens of
microseconds on a virtual machine), and the two threads end up taking turns. Here one call
does a whole batch: ``pread`` each chunk's bytes into a scratch buffer and average its
blocks (:func:`~bigarrays_core.kernels.downsample.average_221_pairs`: the same code, so the
same bytes) into its place in the result, releasing the GIL once.

Each batch is a ``(n, JOB_FIELDS)`` int64 array, one row per chunk: the open file, its size
(the chunk's raw bytes), the chunk's shape with x counted in pairs of voxels, where its
blocks go in the result, and the bytes read (written by the kernel). A chunk whose bytes
could not all be read (an error, a file cut short since it was opened) is not reduced: the
caller reads it the ordinary way, which reports its error.

Only for unsigned 1- and 2-byte voxels, little-endian, chunks of an even size along x and y
lying wholly inside the region reduced; like every kernel it imports nothing from bigarrays
outside :mod:`bigarrays_core.kernels`.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from .downsample import average_221_pairs
from .jit import PREAD, kernel

__all__ = ["GOT", "JOB_FIELDS", "NBYTES", "average_221_files"]

#: The columns of a job row: the file and its size in bytes; the chunk's shape ``(x pairs,
#: y, z, channels)``; where its blocks start in the result ``(tx, ty, tz)``; the bytes read.
FD, NBYTES, NX2, NY, NZ, NC, TX, TY, TZ, GOT = range(10)
JOB_FIELDS: Final = 10

_pread: Any = PREAD


@kernel()
def average_221_files(jobs: Any, scratch: Any, out: Any, mask: Any, bits: Any) -> None:  # pragma: no cover
    """For each row of ``jobs``, read the chunk's bytes from its file into ``scratch`` (a
    C-contiguous 1-D array of the type twice the voxels' width, of at least the largest
    chunk's bytes) and average its (2, 2, 1) blocks into ``out`` (the result, the voxels'
    type) from ``(tx, ty, tz)`` on. ``mask`` and ``bits`` as for ``average_221_pairs``."""
    address = scratch.ctypes.data
    for i in range(jobs.shape[0]):
        fd, n = jobs[i, FD], jobs[i, NBYTES]
        got = 0
        while got < n:
            r = _pread(np.intc(fd), address + got, np.uint64(n - got), np.int64(got))
            if r <= 0:  # an error, or the end of a file cut short since it was opened
                break
            got += r
        jobs[i, GOT] = got
        if got != n:
            continue
        nx2, ny, nz, nc = jobs[i, NX2], jobs[i, NY], jobs[i, NZ], jobs[i, NC]
        # The chunk in x-fastest order, each x pair one wide integer: (x pairs, y, z, c).
        wide = scratch[:nx2 * ny * nz * nc].reshape((nc, nz, ny, nx2)).T
        tx, ty, tz = jobs[i, TX], jobs[i, TY], jobs[i, TZ]
        average_221_pairs(wide, mask, bits, out[tx:tx + nx2, ty:ty + ny // 2, tz:tz + nz, :])
