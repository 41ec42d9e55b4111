"""A compressed_segmentation encoder in numba: GIL released, so chunks encode on several threads.

Encodes one channel of a chunk into Neuroglancer's compressed_segmentation stream (the words
after the channel offset table): a header of two words per block (blocks x fastest), then for
each block its packed indices followed, unless an identical table was written before, by its
lookup table. The table holds the block's distinct values in increasing order; indices take
0, 1, 2, 4, 8, 16 or 32 bits; positions of a partial block outside the chunk are index 0.
These are the choices of Neuroglancer's reference encoder (and of the ``compressed_segmentation``
package), so the streams decode the same everywhere.

Runs of equal neighbours, the common case in segmentations, take one comparison per voxel. This
module imports numba: it is imported lazily, on the first compressed_segmentation encode. Like
every kernel it imports nothing from bigarrays outside :mod:`bigarrays_core.kernels`.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from .jit import kernel

__all__ = ["encode_channel"]

_BITS = (0, 1, 2, 4, 8, 16, 32)


@numba.njit(inline="always")
def _find(table: Any, n: int, v: Any) -> int:
    """The position of ``v`` in the sorted ``table[:n]``, or where it would go."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if table[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel()
def _encode(data: Any, bx: int, by: int, bz: int, wide: bool, out: Any) -> int:  # pragma: no cover - compiled
    """Encode ``data`` (x, y, z) into ``out`` (large enough for the worst case); returns the words used."""
    nx, ny, nz = data.shape
    gx, gy, gz = -(-nx // bx), -(-ny // by), -(-nz // bz)
    nb = gx * gy * gz
    per = bx * by * bz
    ew = 2 if wide else 1
    table = np.empty(per, data.dtype)
    seen: dict[int, int] = {}  # hash of a table -> word offset of the first table written with it
    pos = 2 * nb
    block = 0
    for kz in range(gz):
        z0, z1 = kz * bz, min(kz * bz + bz, nz)
        for ky in range(gy):
            y0, y1 = ky * by, min(ky * by + by, ny)
            for kx in range(gx):
                x0, x1 = kx * bx, min(kx * bx + bx, nx)
                # the block's distinct values, sorted
                n = 0
                last = data[x0, y0, z0]
                table[0] = last
                n = 1
                for z in range(z0, z1):
                    for y in range(y0, y1):
                        for x in range(x0, x1):
                            v = data[x, y, z]
                            if v == last:
                                continue
                            last = v
                            i = _find(table, n, v)
                            if i < n and table[i] == v:
                                continue
                            for j in range(n, i, -1):
                                table[j] = table[j - 1]
                            table[i] = v
                            n += 1
                bits = 0
                while (1 << _bit_at(bits)) < n:
                    bits += 1
                nbits = _bit_at(bits)
                out[2 * block + 1] = pos
                if nbits:
                    words = (per * nbits + 31) // 32
                    for w in range(words):
                        out[pos + w] = 0
                    last = data[x0, y0, z0]
                    idx = _find(table, n, last)
                    for z in range(z0, z1):
                        for y in range(y0, y1):
                            base = ((z - z0) * by + (y - y0)) * bx - x0
                            for x in range(x0, x1):
                                v = data[x, y, z]
                                if v != last:
                                    last = v
                                    idx = _find(table, n, v)
                                at = (base + x) * nbits
                                out[pos + (at >> 5)] |= np.uint32(idx) << np.uint32(at & 31)
                    pos += words
                # the table, unless the same one is already in the stream
                h = np.uint64(n)
                for i in range(n):
                    h = (h ^ np.uint64(table[i])) * np.uint64(1099511628211)
                key = np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))
                offset = -1
                if key in seen:
                    at = seen[key]
                    same = True
                    for i in range(n):
                        if ew == 2:
                            v64 = np.uint64(out[at + 2 * i]) | (np.uint64(out[at + 2 * i + 1]) << np.uint64(32))
                        else:
                            v64 = np.uint64(out[at + i])
                        if v64 != np.uint64(table[i]):
                            same = False
                            break
                    if same:
                        offset = at
                if offset < 0:
                    offset = pos
                    for i in range(n):
                        v64 = np.uint64(table[i])
                        if ew == 2:
                            out[pos] = np.uint32(v64 & np.uint64(0xFFFFFFFF))
                            out[pos + 1] = np.uint32(v64 >> np.uint64(32))
                            pos += 2
                        else:
                            out[pos] = np.uint32(v64)
                            pos += 1
                    if key not in seen:
                        seen[key] = offset
                out[2 * block] = np.uint32(offset) | (np.uint32(nbits) << np.uint32(24))
                block += 1
    return pos


@numba.njit(inline="always")
def _bit_at(i: int) -> int:
    if i == 0:
        return 0
    return 1 << (i - 1)


def encode_channel(data: np.ndarray, block_size: tuple[int, int, int]) -> np.ndarray:
    """The stream (uint32 words) of one channel: ``data`` is ``(x, y, z)`` uint32 or uint64.

    Raises :class:`ValueError` for another dtype, or a chunk whose stream would not fit the
    format's 24-bit table offsets.
    """
    if data.dtype not in (np.dtype(np.uint32), np.dtype(np.uint64)) or data.ndim != 3:
        raise ValueError(f"compressed_segmentation encodes 3-D uint32 or uint64 channels, not {data.shape} "
                         f"{data.dtype}")
    bx, by, bz = (int(b) for b in block_size)
    nx, ny, nz = data.shape
    nb = -(-nx // bx) * -(-ny // by) * -(-nz // bz)
    per = bx * by * bz
    wide = data.dtype == np.dtype(np.uint64)
    worst = 2 * nb + nb * (per + per * (2 if wide else 1))  # 32-bit indices and a table per block
    out = np.empty(worst, np.uint32)
    used = _encode(data, bx, by, bz, wide, out)
    if used >= 1 << 24:
        raise ValueError(f"a {nx}x{ny}x{nz} chunk encodes to {used} words: more than compressed_segmentation's "
                         "24-bit table offsets can address; use smaller chunks")
    return out[:used]
