"""A compressed_segmentation decoder that writes a region of a chunk straight into an array.

The kernel (numba, compiled once and cached on disk: :mod:`bigarrays_core.kernels.jit`)
decodes only the blocks a region touches, writes the labels straight into ``out`` (any
strides, e.g. a view of a bigger cutout) and releases the GIL, so several chunks decode
at once on several threads.

Format: Neuroglancer's compressed_segmentation encoding (see ``docs/format.md``). The chunk
is validated before anything is written, at least as strictly as TensorStore does and never
trusting an offset: the channel offsets must be increasing and inside the chunk, and every
block header of every channel must name valid encoded bits, encoded values inside its
channel's stream and a lookup table starting inside it. A lookup table may end past the stream (valid encoders store
only the entries a block uses, so the last table is often short); a block whose
``2**bits``-entry table does not fit has the indices of its voxels inside the chunk
checked against the entries that do. Anything else raises ``ValueError`` naming the
channel, block and offsets; no read or write ever leaves the buffers.

The decoding loops index the output and the words with unsigned integers (every index
there is non-negative once the chunk is validated): numba wraps a negative signed index
around, a compare and a select per index it cannot prove non-negative, which made decoding
~25 % slower.

This module imports numba, so it is imported lazily (on the first compressed_segmentation
decode), never by ``import bigarrays_core``. Like every kernel it imports nothing from
bigarrays outside :mod:`bigarrays_core.kernels`.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import types

from .jit import Int, kernel

__all__ = ["decode_region"]

# Status codes the kernel returns (first element of its result tuple).
_OK = 0
_TOO_SHORT = 1
_BAD_BITS = 2
_VALUES_PAST_END = 3
_TABLE_PAST_END = 4
_INDEX_PAST_TABLE = 5
_BAD_OFFSETS = 6


@numba.njit(inline="always")
def _label(words: Any, table: Int, idx: Int, ew: int) -> Any:
    """Lookup-table entry ``idx`` of the table at word ``table`` (uint32 or uint64 entries)."""
    if ew == 1:
        return np.uint64(words[table + idx])
    at = table + 2 * idx
    return np.uint64(words[at]) | (np.uint64(words[at + 1]) << np.uint64(32))


@numba.njit(inline="always")
def _max_index(words: Any, values: Int, bits: Int, bx: int, by: int, ex: int, ey: int, ez: int) -> Int:
    """The largest encoded index among the ``ex*ey*ez`` voxels of a block inside the chunk."""
    mask = (1 << bits) - 1
    top: Int = 0
    for z in range(ez):
        for y in range(ey):
            base = bits * bx * (y + by * z)
            for x in range(ex):
                bit = base + bits * x
                idx = (np.int64(words[values + (bit >> 5)]) >> (bit & 31)) & mask
                if idx > top:
                    top = idx
    return top


@numba.njit(inline="always")
def _check_stream(words: Any, s: Int, n: Int, geom: Any, ew: int) -> tuple[int, int, Int, Int]:
    """Validate one channel stream of ``n`` words at word ``s``: (status, block, detail, detail)."""
    sx, sy, sz, bx, by, bz = geom[0], geom[1], geom[2], geom[4], geom[5], geom[6]
    gx = (sx + bx - 1) // bx
    gy = (sy + by - 1) // by
    gz = (sz + bz - 1) // bz
    nblocks = gx * gy * gz
    if n < 2 * nblocks:
        return _TOO_SHORT, nblocks, n, 0
    block_voxels = bx * by * bz
    for b in range(nblocks):
        head = np.int64(words[s + 2 * b])
        table = head & 0xFFFFFF
        bits = head >> 24
        values = np.int64(words[s + 2 * b + 1])
        if bits != 0 and bits != 1 and bits != 2 and bits != 4 and bits != 8 and bits != 16 and bits != 32:
            return _BAD_BITS, b, bits, 0
        if values + (bits * block_voxels + 31) // 32 > n:
            return _VALUES_PAST_END, b, values, (bits * block_voxels + 31) // 32
        if table + ew > n:
            return _TABLE_PAST_END, b, table, 0
        if table + (np.int64(1) << bits) * ew > n:
            entries = (n - table) // ew
            ib = b % gx
            jb = (b // gx) % gy
            kb = b // (gx * gy)
            top = _max_index(words, s + values, bits, bx, by, min(bx, sx - ib * bx), min(by, sy - jb * by),
                             min(bz, sz - kb * bz))
            if top >= entries:
                return _INDEX_PAST_TABLE, b, top, entries
    return _OK, 0, 0, 0


@numba.njit(inline="always")
def _decode_channel(words: Any, s: Int, n: Int, geom: Any, ew: int, lut: Any, out: Any) -> None:
    """Decode the region ``geom[7:13]`` of the validated ``n``-word channel stream at word ``s`` into ``out``.

    ``lut`` is scratch space for the lookup tables of blocks with at most ``len(lut)``
    entries, which are copied out once per block instead of assembled once per voxel.
    """
    sx, sy, bx, by, bz = geom[0], geom[1], geom[4], geom[5], geom[6]
    x0, x1, y0, y1, z0, z1 = geom[7], geom[8], geom[9], geom[10], geom[11], geom[12]
    gx = (sx + bx - 1) // bx
    gy = (sy + by - 1) // by
    for kb in range(z0 // bz, (z1 - 1) // bz + 1):
        za, zb = max(z0, kb * bz), min(z1, kb * bz + bz)
        for jb in range(y0 // by, (y1 - 1) // by + 1):
            ya, yb = max(y0, jb * by), min(y1, jb * by + by)
            for ib in range(x0 // bx, (x1 - 1) // bx + 1):
                xa, xb = max(x0, ib * bx), min(x1, ib * bx + bx)
                h = s + 2 * (ib + gx * (jb + gy * kb))
                head = np.int64(words[h])
                table = head & 0xFFFFFF
                bits = head >> 24
                if bits == 0:
                    label = _label(words, s + table, 0, ew)
                    for z in range(za - z0, zb - z0):
                        uz = np.uint64(z)
                        for y in range(ya - y0, yb - y0):
                            uy = np.uint64(y)
                            for x in range(xa - x0, xb - x0):
                                out[np.uint64(x), uy, uz] = label
                    continue
                values = s + np.int64(words[h + 1])
                mask = (1 << bits) - 1
                small = (np.int64(1) << bits) <= lut.shape[0]
                if small:
                    for i in range(min(np.int64(1) << bits, (n - table) // ew)):
                        lut[i] = _label(words, s + table, i, ew)
                umask = np.uint64(mask)
                ubits = np.uint64(bits)
                run = bits * (xb - xa)
                for z in range(za, zb):
                    uz = np.uint64(z - z0)
                    for y in range(ya, yb):
                        uy = np.uint64(y - y0)
                        bit = bits * (xa - ib * bx + bx * ((y - jb * by) + by * (z - kb * bz)))
                        if small and (bit & 31) + run <= 32:  # the row's indices share one word
                            w = np.uint64(words[np.uint64(values + (bit >> 5))]) >> np.uint64(bit & 31)
                            for x in range(xa - x0, xb - x0):
                                out[np.uint64(x), uy, uz] = lut[w & umask]
                                w >>= ubits
                            continue
                        for x in range(xa - x0, xb - x0):
                            idx = (np.int64(words[np.uint64(values + (bit >> 5))]) >> (bit & 31)) & mask
                            if small:
                                out[np.uint64(x), uy, uz] = lut[idx]
                            else:
                                out[np.uint64(x), uy, uz] = _label(words, s + table, idx, ew)
                            bit += bits


def _kernel(words: Any, geom: Any, out: Any) -> tuple[int, int, int, Int, Int]:
    """Validate the channel offsets and every channel stream, then decode the region into ``out``.

    ``geom`` is ``(sx, sy, sz, channels, bx, by, bz, x0, x1, y0, y1, z0, z1, c0)``: the
    chunk's shape, the block size, the region's spatial bounds and first channel; ``out``
    holds channels ``c0 .. c0 + out.shape[3]``. Returns ``(status, channel, block, detail,
    detail)``; ``out`` is untouched unless the status is ``_OK``.
    """
    ew = out.itemsize // 4
    nwords = words.shape[0]
    nc = geom[3]
    if nwords < nc or words[0] != nc:
        return _BAD_OFFSETS, 0, 0, 0, 0
    for c in range(nc):
        end = np.int64(words[c + 1]) if c + 1 < nc else nwords
        if end <= np.int64(words[c]) or end > nwords:
            return _BAD_OFFSETS, c, 0, 0, 0
    for c in range(nc):
        start = np.int64(words[c])
        end = np.int64(words[c + 1]) if c + 1 < nc else nwords
        status, b, d0, d1 = _check_stream(words, start, end - start, geom, ew)
        if status != _OK:
            return status, c, b, d0, d1
    lut = np.zeros(256, dtype=np.uint64)
    for k in range(out.shape[3]):
        c = geom[13] + k
        start = np.int64(words[c])
        end = np.int64(words[c + 1]) if c + 1 < nc else nwords
        _decode_channel(words, start, end - start, geom, ew, lut, out[:, :, :, k])
    return _OK, 0, 0, 0, 0


_WORDS = types.Array(types.uint32, 1, "C", readonly=True)
_GEOMETRY = types.UniTuple(types.int64, 14)  # type: ignore[no-untyped-call]
_RESULT = types.UniTuple(types.int64, 5)  # type: ignore[no-untyped-call]
_run = kernel([_RESULT(_WORDS, _GEOMETRY, types.Array(dt, 4, "A")) for dt in (types.uint32, types.uint64)])(_kernel)


def decode_region(data: bytes | memoryview, shape: tuple[int, int, int, int], block_size: tuple[int, int, int],
                  region: tuple[int, int, int, int, int, int, int], out: np.ndarray) -> None:
    """Decode a region of the compressed_segmentation chunk in ``data`` into ``out``.

    Parameters
    ----------
    data:
        The chunk's bytes: ``shape[3]`` uint32 channel offsets, then the channel streams.
    shape, block_size:
        The chunk's ``(x, y, z, c)`` shape and the scale's ``(x, y, z)`` block size.
    region:
        ``(x0, x1, y0, y1, z0, z1, c0)``: half-open spatial bounds inside the chunk and the
        first channel; ``out.shape[3]`` channels from ``c0`` on are decoded.
    out:
        uint32 or uint64 (native order), shaped ``(x1 - x0, y1 - y0, z1 - z0, channels)``,
        any strides; written in place, and only once everything has been validated.

    Raises
    ------
    ValueError
        If ``data`` is not a valid chunk of ``shape``: what is wrong, with the channel and
        block.
    """
    nwords = len(data) // 4
    if len(data) % 4 or nwords < shape[3]:
        raise ValueError(f"{len(data)} bytes is not a compressed_segmentation chunk of {shape[3]} channel(s)")
    words = np.frombuffer(data, dtype="<u4", count=nwords)
    if words.dtype != np.dtype("=u4") or not words.flags.aligned:
        words = np.ascontiguousarray(words, dtype="=u4")
    if words.flags.writeable:  # the kernel is compiled for read-only words
        words = words.view()
        words.flags.writeable = False
    status, c, b, d0, d1 = _run(words, (*shape, *block_size, *region), out)
    if status == _BAD_OFFSETS:
        raise ValueError(f"bad channel offsets {words[:shape[3]].tolist()} for {shape[3]} channel(s) "
                         f"in {nwords} words")
    if status != _OK:
        end = int(words[c + 1]) if c + 1 < shape[3] else nwords
        raise ValueError(_describe(status, c, b, d0, d1, shape[:3], block_size, end - int(words[c])))


def _describe(status: int, channel: int, block: int, d0: int, d1: int, spatial: tuple[int, ...],
              block_size: tuple[int, int, int], n: int) -> str:
    """The error message for a kernel status."""
    grid = [-(-s // b) for s, b in zip(spatial, block_size)]
    where = f"channel {channel}, block {(block % grid[0], block // grid[0] % grid[1], block // (grid[0] * grid[1]))}"
    if status == _TOO_SHORT:
        return f"channel {channel}: a stream of {d0} words is too short for {block} block headers"
    if status == _BAD_BITS:
        return f"{where}: invalid encoded bits {d0} (valid: 0, 1, 2, 4, 8, 16, 32)"
    if status == _VALUES_PAST_END:
        return f"{where}: encoded values at words {d0}..{d0 + d1} run past the end of the {n}-word stream"
    if status == _TABLE_PAST_END:
        return f"{where}: lookup table at word {d0} starts past the end of the {n}-word stream"
    return f"{where}: lookup-table index {d0} but only {d1} entries fit before the end of the {n}-word stream"
