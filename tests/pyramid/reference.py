"""The numpy reference the pyramid tests compare with, and segmentation-like test data.

The reference follows the rules literally, one block at a time: coarse voxel ``i`` of an
axis with factor ``f`` holds the fine voxels whose absolute coordinate ``x`` has
``x // f == i``; ``average`` is their exact mean (Python integers and fractions, rounded
half to even), ``mode`` the most frequent value (ties to the smallest; zeros skipped with
``ignore_zero`` unless the block has nothing else), ``min``/``max`` numpy's, ``stride``
the block's first voxel.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import numpy as np

from bigarrays_core.geometry import Box


def reference(data: np.ndarray, box: Box, factor: tuple[int, int, int], method: str,
              ignore_zero: bool = False) -> np.ndarray:
    idx = [(a + np.arange(n)) // f for a, n, f in zip(box.start, box.shape, factor)]
    idx = [i - i[0] for i in idx]
    shape = tuple(int(i[-1]) + 1 for i in idx) + (data.shape[3],)
    out = np.empty(shape, dtype=data.dtype)
    for cx in range(shape[0]):
        for cy in range(shape[1]):
            for cz in range(shape[2]):
                block = data[np.ix_(idx[0] == cx, idx[1] == cy, idx[2] == cz)]
                for c in range(shape[3]):
                    values = block[..., c].ravel(order="F")
                    out[cx, cy, cz, c] = _reduce(values, block[0, 0, 0, c], method, ignore_zero, data.dtype)
    return out


def _reduce(values: np.ndarray, first: object, method: str, ignore_zero: bool, dtype: np.dtype) -> object:
    if method == "stride":
        return first
    if method == "min":
        return values.min()
    if method == "max":
        return values.max()
    if method == "mode":
        counts = Counter(v for v in values.tolist() if not (ignore_zero and v == 0))
        if not counts:
            return 0
        best = max(counts.values())
        return min(v for v, n in counts.items() if n == best)
    if dtype.kind == "f":
        return float(sum(Fraction(float(v)) for v in values) / len(values))
    return round(Fraction(sum(int(v) for v in values), len(values)))


def pyramid_reference(mip0: np.ndarray, box: Box, factors: list[tuple[int, int, int]], method: str
                      ) -> list[np.ndarray]:
    """Each level made from the one below it (what a pyramid build stores)."""
    out, cur, cur_box = [], mip0, box
    for f in factors:
        cur = reference(cur, cur_box, f, method)
        cur_box = Box(tuple(a // k for a, k in zip(cur_box.start, f)),  # type: ignore[arg-type]
                      tuple(-(-b // k) for b, k in zip(cur_box.stop, f)))  # type: ignore[arg-type]
        out.append(cur)
    return out


def segmentation(rng: np.random.Generator, shape: tuple[int, int, int], cells: int = 12,
                 dtype: str = "uint64", background: float = 0.1) -> np.ndarray:
    """Labels like a segmentation's: the nearest of ``cells`` random seeds (large ids, so
    64 bits matter), with thin zero boundaries where two seeds are almost equally near."""
    seeds = rng.uniform(0, 1, size=(cells, 3)) * np.array(shape)
    ids = (rng.permutation(cells) + 1).astype(np.uint64) * np.uint64(2**40 + 7) if dtype == "uint64" else (
        rng.permutation(cells) + 1)
    grid = np.stack(np.meshgrid(*(np.arange(n) + 0.5 for n in shape), indexing="ij"), axis=-1)
    d = np.linalg.norm(grid[..., None, :] - seeds, axis=-1)
    order = np.sort(d, axis=-1)
    labels = np.asarray(ids)[np.argmin(d, axis=-1)].astype(dtype)
    labels[(order[..., 1] - order[..., 0]) < background * 2] = 0
    return np.asfortranarray(labels)
