"""Compressed Morton codes: the chunk ids of the sharded precomputed format.

A chunk grid of shape ``(gx, gy, gz)`` gives axis ``d`` ``bits_d = bit_length(g_d - 1)``
bits (0 for an axis one chunk long). The code of grid cell ``(x, y, z)`` takes those bits
lowest first, round-robin x, y, z, skipping an axis whose bits are used up, so a
non-cubic grid wastes no bits:

>>> MortonCode((3, 3, 3)).encode([(1, 0, 0), (2, 0, 0), (2, 2, 1)]).tolist()
[1, 8, 28]
>>> MortonCode((2, 3, 1)).encode([(1, 2, 0)]).tolist()   # 0b101: x0, y0, y1
[5]
>>> MortonCode((2, 3, 1)).decode([5]).tolist()
[[1, 2, 0]]

Pure and vectorised: both directions are a few table look-ups per byte, whatever the
number of cells. The sum of the bits must fit 64 (:class:`MortonCode` refuses more).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from bigarrays_core.geometry.bbox import Vec3

__all__ = ["MortonCode", "axis_bits"]


def axis_bits(grid_shape: Sequence[int]) -> Vec3:
    """Bits of each axis in the code of a grid of ``grid_shape`` cells: ``bit_length(g - 1)``."""
    x, y, z = ((max(int(g), 1) - 1).bit_length() for g in grid_shape)
    return (x, y, z)


@lru_cache(maxsize=64)
def _code_axes(bits: Vec3) -> tuple[tuple[int, int], ...]:
    """For each code bit, lowest first: ``(axis, bit of that axis)``."""
    out = []
    for i in range(max(bits)):
        for d in range(3):
            if i < bits[d]:
                out.append((d, i))
    return tuple(out)


@lru_cache(maxsize=64)
def _tables(bits: Vec3) -> tuple[list[np.ndarray], np.ndarray]:
    """Look-up tables: per axis and coordinate byte, the code bits that byte spreads to;
    per code byte, the ``(x, y, z)`` contributions it gathers."""
    axes = _code_axes(bits)
    values = np.arange(256, dtype=np.uint64)
    spread: list[np.ndarray] = []  # spread[3 * k + d]: byte k of axis d -> code bits
    for d in range(3):
        nbytes = -(-bits[d] // 8)
        for k in range(nbytes):
            table = np.zeros(256, dtype=np.uint64)
            for j, (axis, i) in enumerate(axes):
                if axis == d and 8 * k <= i < 8 * k + 8:
                    table |= ((values >> np.uint64(i - 8 * k)) & np.uint64(1)) << np.uint64(j)
            spread.append(table)
    code_bytes = -(-len(axes) // 8)
    gather = np.zeros((max(code_bytes, 1), 256, 3), dtype=np.int64)
    ints = np.arange(256, dtype=np.int64)
    for j, (axis, i) in enumerate(axes):
        gather[j // 8, :, axis] |= ((ints >> (j % 8)) & 1) << i
    return spread, gather


class MortonCode:
    """The compressed Morton code of one chunk grid (see the module docstring)."""

    def __init__(self, grid_shape: Sequence[int]) -> None:
        self.grid_shape: Vec3 = tuple(int(g) for g in grid_shape)  # type: ignore[assignment]
        self.bits: Vec3 = axis_bits(self.grid_shape)
        self.total_bits = sum(self.bits)
        self._scalar_tables: list[list[int]] | None = None
        if self.total_bits > 64:
            raise ValueError(
                f"a chunk grid of {list(self.grid_shape)} cells needs {self.total_bits} bits of compressed "
                "Morton code; the sharded format allows at most 64"
            )

    def encode(self, cells: npt.ArrayLike) -> npt.NDArray[np.uint64]:
        """The codes (uint64) of ``cells``, an ``(n, 3)`` array of grid coordinates.

        Coordinates must lie inside the grid (bits beyond an axis's are ignored).
        """
        c = np.asarray(cells, dtype=np.int64).reshape(-1, 3)
        spread, _ = _tables(self.bits)
        out = np.zeros(len(c), dtype=np.uint64)
        t = 0
        for d in range(3):
            col = c[:, d]
            for k in range(-(-self.bits[d] // 8)):
                out |= spread[t][(col >> (8 * k)) & 0xFF]
                t += 1
        return out

    def encode_one(self, cell: Sequence[int]) -> int:
        """The code of one grid cell, in plain Python (no array overhead for a single cell)."""
        tables = self._scalar_tables
        if tables is None:
            spread, _ = _tables(self.bits)
            tables = self._scalar_tables = [t.tolist() for t in spread]
        out = 0
        t = 0
        for d in range(3):
            c = int(cell[d])
            for k in range(-(-self.bits[d] // 8)):
                out |= tables[t][(c >> (8 * k)) & 0xFF]
                t += 1
        return out

    def decode(self, codes: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """The ``(n, 3)`` grid coordinates (int64) of ``codes`` (bits past the code's are ignored)."""
        k = np.asarray(codes, dtype=np.uint64).reshape(-1)
        _, gather = _tables(self.bits)
        out = np.zeros((len(k), 3), dtype=np.int64)
        for b in range(-(-self.total_bits // 8)):
            out += gather[b][((k >> np.uint64(8 * b)) & np.uint64(0xFF)).astype(np.intp)]
        return out

    def low_bits(self, n: int) -> Vec3:
        """How many of each axis's bits are among the code's lowest ``n`` bits.

        The cells whose codes agree above bit ``n`` form a block of ``2**low_bits(n)[d]``
        cells per axis (clipped by the grid), aligned to multiples of that size.
        """
        counts = [0, 0, 0]
        for axis, _ in _code_axes(self.bits)[:max(n, 0)]:
            counts[axis] += 1
        return (counts[0], counts[1], counts[2])
