"""The numba kernels that reduce blocks of voxels: average, mode, min and max.

Every kernel takes a Fortran-ordered ``(x, y, z, c)`` array ``data``, the position ``lo``
of its first voxel inside its block on each axis (``start % f`` in absolute coordinates),
the factors ``f`` and an output array shaped like the blocks, and fills the output. A
block at an edge of ``data`` holds fewer voxels; every kernel reduces the voxels it has.

They work one output row (one ``y``, ``z``, ``c``) at a time, reading the block's data rows
x fastest (the arrays' memory order): averages first add the block's rows into one row of
sums (a loop the compiler vectorises), then add ``f[0]`` neighbours of it per block (for
factor (2, 2, 1), the common one, of unsigned 1- and 2-byte voxels, each x pair is read as
one integer of twice the width and split in two: :func:`average_221_pairs`); the
mode of a block of four (factor 2, 2, 1 and its like) is settled by comparisons, larger
blocks are sorted. Every kernel releases the GIL, so threads reduce blocks in parallel.

:func:`average_221_files` does, for a batch of plain raw chunks of an image, what the
pyramid's first level did per chunk from Python: ``pread`` each chunk's bytes from its open
file into a scratch buffer and average it into its place in the result (with
:func:`average_221_pairs`, so the same bytes), in one call that releases the GIL once. Done
chunk by chunk, each chunk took five calls that release the GIL (open, stat, read, close,
the reduction) with Python in between; on two threads each of those hand-overs may wait for
the other thread to be woken (tens of microseconds on a virtual machine), and the threads
ended up taking turns. It lives here, beside the kernel it calls, so that numba's disk cache
of it is renewed whenever that kernel's source changes.

This module imports numba: it is imported lazily, by
:func:`bigarrays_core.downsampling.downsample_block`, never by ``import bigarrays_core``.
Kernels are compiled per dtype on first use and cached on disk
(:mod:`bigarrays_core.kernels.jit`). Like every kernel it imports nothing from bigarrays
outside :mod:`bigarrays_core.kernels`.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from .jit import PREAD, Int, kernel

__all__ = ["GOT", "JOB_FIELDS", "NBYTES", "average_221_files", "average_221_pairs",
           "average_22_float", "average_22_narrow", "average_22_wide", "average_float",
           "average_int", "average_int64",
           "extreme", "mode", "mode_221"]

_HIGH_BIT = np.uint64(1 << 63)
_LOW_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


@kernel()
def _span(o: int, lo: int, f: int, n: int) -> tuple[int, int]:  # pragma: no cover - compiled
    """The data indices ``[a, b)`` of output voxel ``o`` along an axis."""
    a = o * f - lo
    return max(a, 0), min(a + f, n)


@kernel()
def _round_div(s: int, n: int) -> int:  # pragma: no cover - compiled
    """``s / n`` rounded to the nearest integer, halves to even (``n > 0``; floor division,
    so negative sums round the same way)."""
    q = s // n
    r = s - q * n
    if 2 * r > n or (2 * r == n and (q & 1) == 1):
        q += 1
    return q


@kernel()
def _sum_rows(data: Any, y0: int, y1: int, z0: int, z1: int, c: int, row: Any) -> None:  # pragma: no cover
    """``row[x]`` = the sum of ``data[x, y, z, c]`` over the block's rows (vectorised adds)."""
    nx = data.shape[0]
    first = True
    for z in range(z0, z1):
        for y in range(y0, y1):
            if first:
                for x in range(nx):
                    row[x] = data[x, y, z, c]
                first = False
            else:
                for x in range(nx):
                    row[x] += data[x, y, z, c]


@kernel()
def average_int(data: Any, lo: Any, f: Any, row: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Block means of integers of at most 32 bits, exact, rounded to the nearest integer
    with halves to even. ``row`` (at least ``data.shape[0]`` long) holds sums of a block's
    rows: its type must hold the sum of a whole block exactly."""
    nx, ny, nz, nc = data.shape
    mx, my, mz = out.shape[0], out.shape[1], out.shape[2]
    fx = f[0]
    head = min((fx - lo[0]) % fx, nx)  # voxels of a partial first block along x
    o_full = 1 if head > 0 else 0
    nfull = (nx - head) // fx
    tail = head + nfull * fx
    for c in range(nc):
        for oz in range(mz):
            z0, z1 = _span(oz, lo[2], f[2], nz)
            for oy in range(my):
                y0, y1 = _span(oy, lo[1], f[1], ny)
                _sum_rows(data, y0, y1, z0, z1, c, row)
                area = (z1 - z0) * (y1 - y0)
                if head > 0:
                    s: Int = 0
                    for x in range(head):
                        s += row[x]
                    out[0, oy, oz, c] = _round_div(s, area * head)
                n = area * fx
                shift = 0
                while (1 << shift) < n:
                    shift += 1
                if fx == 2 and (1 << shift) == n:  # the common case: sums of pairs, a shift
                    half = n >> 1
                    for i in range(nfull):
                        s = np.int64(row[head + 2 * i]) + np.int64(row[head + 2 * i + 1])
                        q = s >> shift
                        r = s - (q << shift)
                        q += (r > half) | ((r == half) & ((q & 1) == 1))  # no branch: vectorises
                        out[o_full + i, oy, oz, c] = q
                else:
                    for i in range(nfull):
                        s = 0
                        for k in range(fx):
                            s += row[head + fx * i + k]
                        out[o_full + i, oy, oz, c] = _round_div(s, n)
                if tail < nx:
                    s = 0
                    for x in range(tail, nx):
                        s += row[x]
                    out[mx - 1, oy, oz, c] = _round_div(s, area * (nx - tail))


@kernel()
def average_int64(data: Any, signed: bool, lo: Any, f: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Block means of 64-bit integers, exactly: values in offset binary (order-preserving,
    unsigned) summed as 32-bit halves in two uint64 accumulators, then divided as one
    96-bit number; rounded to the nearest, halves to even."""
    nx, ny, nz, nc = data.shape
    mx, my, mz = out.shape[0], out.shape[1], out.shape[2]
    hi = np.zeros(mx, np.uint64)
    lw = np.zeros(mx, np.uint64)
    flip = _HIGH_BIT if signed else _ZERO
    for c in range(nc):
        for oz in range(mz):
            z0, z1 = _span(oz, lo[2], f[2], nz)
            for oy in range(my):
                y0, y1 = _span(oy, lo[1], f[1], ny)
                hi[:] = 0
                lw[:] = 0
                for z in range(z0, z1):
                    for y in range(y0, y1):
                        for x in range(nx):
                            o = (x + lo[0]) // f[0]
                            u = np.uint64(data[x, y, z, c]) ^ flip
                            hi[o] += u >> _SHIFT
                            lw[o] += u & _LOW_MASK
                area = (z1 - z0) * (y1 - y0)
                for ox in range(mx):
                    x0, x1 = _span(ox, lo[0], f[0], nx)
                    n = np.uint64(area * (x1 - x0))
                    q_hi = hi[ox] // n
                    r_hi = hi[ox] - q_hi * n
                    t = (r_hi << _SHIFT) + lw[ox]
                    q_lo = t // n
                    r = t - q_lo * n
                    q = (q_hi << _SHIFT) + q_lo
                    if r + r > n or (r + r == n and (q & _ONE) == _ONE):
                        q += _ONE
                    out[ox, oy, oz, c] = q ^ flip


@kernel()
def average_float(data: Any, lo: Any, f: Any, row: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Block means of floats: float64 sums (``row`` is float64) divided by the count."""
    nx, ny, nz, nc = data.shape
    mx, my, mz = out.shape[0], out.shape[1], out.shape[2]
    for c in range(nc):
        for oz in range(mz):
            z0, z1 = _span(oz, lo[2], f[2], nz)
            for oy in range(my):
                y0, y1 = _span(oy, lo[1], f[1], ny)
                _sum_rows(data, y0, y1, z0, z1, c, row)
                area = (z1 - z0) * (y1 - y0)
                for ox in range(mx):
                    x0, x1 = _span(ox, lo[0], f[0], nx)
                    s = 0.0
                    for x in range(x0, x1):
                        s += row[x]
                    out[ox, oy, oz, c] = s / (area * (x1 - x0))


@kernel()
def _mode4(a: Any, b: Any, c: Any, d: Any) -> Any:  # pragma: no cover - compiled
    """The mode of four values, ties to the smallest."""
    if a == b or a == c or a == d:  # a at least twice
        if (a == b and (a == c or a == d)) or (a == c and a == d):
            return a
        if a == b:
            o1, o2 = c, d
        elif a == c:
            o1, o2 = b, d
        else:
            o1, o2 = b, c
        return o1 if o1 == o2 and o1 < a else a  # two pairs: the smaller
    if b == c or b == d:  # a once, b at least twice: b
        return b
    if c == d:
        return c
    m = a  # all different: the smallest
    if b < m:
        m = b
    if c < m:
        m = c
    if d < m:
        m = d
    return m


@kernel()
def _mode_sorted(buf: Any, m: int) -> Any:  # pragma: no cover - compiled
    """The mode of ``buf[:m]`` (``m >= 1``), ties to the smallest; sorts ``buf[:m]``."""
    for i in range(1, m):  # insertion sort: blocks are small
        v = buf[i]
        j = i - 1
        while j >= 0 and v < buf[j]:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v
    best = buf[0]
    best_n = 1
    run = 1
    for i in range(1, m):
        run = run + 1 if buf[i] == buf[i - 1] else 1
        if run > best_n:  # strictly more: the smallest value keeps a tie
            best_n = run
            best = buf[i]
    return best


@kernel()
def mode(data: Any, lo: Any, f: Any, ignore_zero: bool, out: Any) -> None:  # pragma: no cover - compiled
    """The most frequent value of each block; ties go to the smallest value. With
    ``ignore_zero`` zeros are not counted (a block of zeros only gives 0)."""
    nx, ny, nz, nc = data.shape
    mx, my, mz = out.shape[0], out.shape[1], out.shape[2]
    buf = np.empty(f[0] * f[1] * f[2], data.dtype)
    ys = np.empty(f[1] * f[2], np.int64)
    zs = np.empty(f[1] * f[2], np.int64)
    for c in range(nc):
        for oz in range(mz):
            z0, z1 = _span(oz, lo[2], f[2], nz)
            for oy in range(my):
                y0, y1 = _span(oy, lo[1], f[1], ny)
                rows = 0
                for z in range(z0, z1):
                    for y in range(y0, y1):
                        ys[rows] = y
                        zs[rows] = z
                        rows += 1
                for ox in range(mx):
                    x0, x1 = _span(ox, lo[0], f[0], nx)
                    w = x1 - x0
                    if w == 2 and rows == 2 and not ignore_zero:  # factor (2, 2, 1) and its like
                        ya, za, yb, zb = ys[0], zs[0], ys[1], zs[1]
                        out[ox, oy, oz, c] = _mode4(data[x0, ya, za, c], data[x0 + 1, ya, za, c],
                                                    data[x0, yb, zb, c], data[x0 + 1, yb, zb, c])
                        continue
                    m = 0
                    for r in range(rows):
                        y = ys[r]
                        z = zs[r]
                        for x in range(x0, x1):
                            v = data[x, y, z, c]
                            if ignore_zero and v == 0:
                                continue
                            buf[m] = v
                            m += 1
                    if m == 0:
                        out[ox, oy, oz, c] = 0
                    elif m == 4:
                        out[ox, oy, oz, c] = _mode4(buf[0], buf[1], buf[2], buf[3])
                    else:
                        out[ox, oy, oz, c] = _mode_sorted(buf, m)


@kernel()
def _pick(best: Any, v: Any, want_max: bool) -> Any:  # pragma: no cover - compiled
    """The larger (``want_max``) or smaller of ``best`` and ``v``; NaN wins, as in numpy."""
    if best != best:
        return best
    if v != v or (v > best if want_max else v < best):
        return v
    return best


@kernel()
def extreme(data: Any, lo: Any, f: Any, want_max: bool, row: Any, out: Any) -> None:  # pragma: no cover
    """The minimum (or with ``want_max`` the maximum) of each block; a NaN in a float block
    makes its result NaN, as numpy's ``min``/``max``. ``row`` has ``data``'s dtype."""
    nx, ny, nz, nc = data.shape
    mx, my, mz = out.shape[0], out.shape[1], out.shape[2]
    for c in range(nc):
        for oz in range(mz):
            z0, z1 = _span(oz, lo[2], f[2], nz)
            for oy in range(my):
                y0, y1 = _span(oy, lo[1], f[1], ny)
                for x in range(nx):
                    row[x] = data[x, y0, z0, c]
                for z in range(z0, z1):
                    for y in range(y0, y1):
                        for x in range(nx):
                            row[x] = _pick(row[x], data[x, y, z, c], want_max)
                for ox in range(mx):
                    x0, x1 = _span(ox, lo[0], f[0], nx)
                    best = row[x0]
                    for x in range(x0 + 1, x1):
                        best = _pick(best, row[x], want_max)
                    out[ox, oy, oz, c] = best


# -- factor (2, 2, fz), whole blocks: the common case, without per-row bookkeeping ---------------------------
# These run when every block is whole (``data``'s first voxel starts a block and its sizes are
# multiples of the factor): a decoded chunk of a pyramid's source, typically. They read the
# four voxels of each block's rows directly, which the compiler vectorises across x.


@kernel()
def _rounded(s: Any, n: Any, shift: int) -> Any:  # pragma: no cover - compiled
    """``s / n`` rounded to the nearest, halves to even; ``shift`` is log2(n) when n is a power
    of two (a shift instead of a division), else -1."""
    if shift >= 0:
        q = s >> shift
        r = s - (q << shift)
    else:
        q = s // n
        r = s - q * n
    half = n >> 1
    return q + ((r > half) | ((r == half) & ((n & 1) == 0) & ((q & 1) == 1)))


@kernel()
def _average_22(data: Any, fz: int, shift: int, zero: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Means for factor ``(2, 2, fz)`` over whole blocks, summed in the type of ``zero``."""
    nc = data.shape[3]
    mx, my, mz = out.shape[0], out.shape[1], out.shape[2]
    n = zero + 4 * fz
    t = type(zero)
    for c in range(nc):
        for oz in range(mz):
            z0 = oz * fz
            for oy in range(my):
                y = 2 * oy
                if fz == 1 and shift == 2:  # (2, 2, 1): no z loop, a shift; vectorised across x
                    for ox in range(mx):
                        x = 2 * ox
                        s = (t(data[x, y, z0, c]) + t(data[x + 1, y, z0, c])
                             + t(data[x, y + 1, z0, c]) + t(data[x + 1, y + 1, z0, c]))
                        q = s >> 2
                        r = s - (q << 2)
                        q += (r > 2) | ((r == 2) & ((q & 1) == 1))
                        out[ox, oy, oz, c] = q
                    continue
                for ox in range(mx):
                    x = 2 * ox
                    s = (t(data[x, y, z0, c]) + t(data[x + 1, y, z0, c])
                         + t(data[x, y + 1, z0, c]) + t(data[x + 1, y + 1, z0, c]))
                    for z in range(z0 + 1, z0 + fz):
                        s += (t(data[x, y, z, c]) + t(data[x + 1, y, z, c])
                              + t(data[x, y + 1, z, c]) + t(data[x + 1, y + 1, z, c]))
                    out[ox, oy, oz, c] = _rounded(s, n, shift)


@kernel()
def average_221_pairs(wide: Any, mask: Any, bits: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Means for factor ``(2, 2, 1)``, whole blocks, of unsigned 1- or 2-byte voxels read two
    at a time: ``wide`` views each x pair of the data as one unsigned integer of twice the
    width (x halved: ``wide[i]`` holds voxels ``2i`` and ``2i + 1``), whose low and high
    halves (``& mask``, ``>> bits``) are the pair's voxels; a block's sum (at most 4 x 65535)
    is added in the wide type. One load per pair instead of picking every other voxel: 1.6x
    the speed of :func:`average_22_narrow` (10.7 against 6.6 GB/s on 64^3 uint8 chunks, 21.9
    against 14.5 on uint16). Only for ``(2, 2, 1)``: with a z loop it vectorises no better."""
    nc = wide.shape[3]
    mx, my, mz = out.shape[0], out.shape[1], out.shape[2]
    t = type(mask)
    one, two, three = t(1), t(2), t(3)
    for c in range(nc):
        for z in range(mz):
            for oy in range(my):
                y = 2 * oy
                for ox in range(mx):
                    a = wide[ox, y, z, c]
                    b = wide[ox, y + 1, z, c]
                    s = t((a & mask) + (a >> bits) + (b & mask) + (b >> bits))
                    q = t(s >> two)
                    r = t(s & three)
                    out[ox, oy, z, c] = q + ((r > two) | ((r == two) & ((q & one) == one)))


def average_22_narrow(data: Any, fz: int, shift: int, out: Any) -> None:
    """Means for factor ``(2, 2, fz)``, whole blocks, integers whose block sums fit int32."""
    _average_22(data, fz, shift, np.int32(0), out)


def average_22_wide(data: Any, fz: int, shift: int, out: Any) -> None:
    """Means for factor ``(2, 2, fz)``, whole blocks, 32-bit integers (int64 sums)."""
    _average_22(data, fz, shift, np.int64(0), out)


@kernel()
def average_22_float(data: Any, fz: int, out: Any) -> None:  # pragma: no cover - compiled
    """Means for factor ``(2, 2, fz)``, whole blocks, floats (float64 sums)."""
    nc = data.shape[3]
    mx, my, mz = out.shape[0], out.shape[1], out.shape[2]
    n = 4.0 * fz
    for c in range(nc):
        for oz in range(mz):
            for oy in range(my):
                y = 2 * oy
                for ox in range(mx):
                    x = 2 * ox
                    s = 0.0
                    for z in range(oz * fz, oz * fz + fz):
                        s += (np.float64(data[x, y, z, c]) + np.float64(data[x + 1, y, z, c])
                              + np.float64(data[x, y + 1, z, c]) + np.float64(data[x + 1, y + 1, z, c]))
                    out[ox, oy, oz, c] = s / n


@kernel()
def mode_221(data: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Modes for factor ``(2, 2, 1)``, whole blocks (ties to the smallest)."""
    nc = data.shape[3]
    mx, my, mz = out.shape[0], out.shape[1], out.shape[2]
    for c in range(nc):
        for z in range(mz):
            for oy in range(my):
                y = 2 * oy
                for ox in range(mx):
                    x = 2 * ox
                    out[ox, oy, z, c] = _mode4(data[x, y, z, c], data[x + 1, y, z, c],
                                               data[x, y + 1, z, c], data[x + 1, y + 1, z, c])


#: The columns of a job row of :func:`average_221_files`: the file and its size in bytes; the
#: chunk's shape ``(x pairs, y, z, channels)``; where its blocks start in the result ``(tx,
#: ty, tz)``; the bytes read.
FD, NBYTES, NX2, NY, NZ, NC, TX, TY, TZ, GOT = range(10)
JOB_FIELDS: Final = 10

_pread: Any = PREAD


@kernel()
def average_221_files(jobs: Any, scratch: Any, out: Any, mask: Any, bits: Any) -> None:  # pragma: no cover
    """For each row of ``jobs``, read the chunk's bytes from its file into ``scratch`` (a
    C-contiguous 1-D array of the type twice the voxels' width, of at least the largest
    chunk's bytes) and average its (2, 2, 1) blocks into ``out`` (the result, the voxels'
    type) from ``(tx, ty, tz)`` on. ``mask`` and ``bits`` as for ``average_221_pairs``:
    unsigned 1- or 2-byte voxels, little-endian, chunks of an even size along x and y. A
    chunk whose bytes could not all be read (an error, a file cut short since it was opened)
    is not averaged; its ``GOT`` column tells the caller, who reads it the ordinary way."""
    # The read loop is the span kernel's (spans.py), not shared: a kernel inlines what it
    # calls, and numba renews a kernel's disk cache only when the kernel's own file changes.
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
