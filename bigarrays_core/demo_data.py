"""Synthetic EM-like demo data: a membrane image and the matching segmentation.

The volume is a warped Voronoi tessellation: every voxel belongs to the cell of its nearest
seed (seeds jittered on a coarse grid, so each voxel only looks at the 27 neighbouring grid
cells). Membranes are where the nearest and second-nearest seeds are almost equally far;
the image is dark there and bright, slightly textured cytoplasm elsewhere, and the
segmentation labels each cell with a large uint64 id (0 on the membranes). Only numpy is
used, the output depends only on the seed, and 256x256x128 takes about a second or two.

This module does no I/O; :mod:`bigarrays_cli.demo` writes what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DemoVolume", "make_demo_volume"]


@dataclass(frozen=True)
class DemoVolume:
    """Arrays of one synthetic volume, both in (x, y, z) order, Fortran-contiguous.

    ``image`` is uint8 (dark membranes on bright cytoplasm); ``segmentation`` is uint64
    with one id per cell and 0 on membrane voxels.
    """

    image: np.ndarray
    segmentation: np.ndarray


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int, int], terms: int,
                  wavelength: float) -> np.ndarray:
    """A smooth random field in about [-1, 1]: a sum of ``terms`` random plane waves."""
    x, y, z = (np.arange(n, dtype=np.float32) for n in shape)
    out = np.zeros(shape, dtype=np.float32)
    for _ in range(terms):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        k = (2 * np.pi / wavelength) * direction * rng.uniform(0.7, 1.3)
        phase = rng.uniform(0, 2 * np.pi)
        out += np.cos(k[0] * x[:, None, None] + k[1] * y[None, :, None] + k[2] * z[None, None, :] + phase,
                      dtype=np.float32)
    return out / np.float32(np.sqrt(terms / 2))


def _upsample2(a: np.ndarray, axis: int, n: int) -> np.ndarray:
    """Linear interpolation doubling ``axis`` (sample centres aligned), cropped to ``n``."""
    a = np.moveaxis(a, axis, 0)
    prev = np.concatenate([a[:1], a[:-1]])
    nxt = np.concatenate([a[1:], a[-1:]])
    out = np.empty((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
    out[0::2] = 0.75 * a + 0.25 * prev
    out[1::2] = 0.75 * a + 0.25 * nxt
    return np.moveaxis(out[:n], 0, axis)


def _voronoi(rng: np.random.Generator, shape: tuple[int, int, int],
             cell_size: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """``(gap, label)`` of a warped, jittered-grid Voronoi tessellation of ``shape`` voxels.

    ``gap`` is (distance to the second-nearest seed) - (distance to the nearest), in voxels
    scaled by the x cell size (about twice the distance to the nearest wall); ``label`` the
    nearest seed's uint64 id.
    """
    cs = np.asarray(cell_size, dtype=np.float32)
    grid = tuple(int(np.ceil(n / c)) + 2 for n, c in zip(shape, cs))  # one spare cell on each side
    # The seed of grid cell (i, j, k) is at (index - 1 + jitter) * cell_size.
    jitter = rng.uniform(0.15, 0.85, size=grid + (3,)).astype(np.float32)
    idx = np.stack(np.meshgrid(*(np.arange(g) for g in grid), indexing="ij"), axis=-1).astype(np.float32)
    seeds = (idx - 1 + jitter) * cs
    # Distinct, large ids (above 2**40, so uint64 matters), shuffled so neighbours are unrelated.
    n_cells = int(np.prod(grid))
    ids = np.uint64(2**40) + (rng.permutation(n_cells).astype(np.uint64) + np.uint64(1)) * np.uint64(1_000_003)
    ids = ids.reshape(grid)
    # Warp the coordinates so cell walls curve like membranes instead of being flat planes.
    coords = [np.arange(n, dtype=np.float32).reshape([-1 if a == ax else 1 for a in range(3)])
              + _smooth_noise(rng, shape, 4, float(cs[0]) * 2.0) * np.float32(c * 0.22)
              for ax, (n, c) in enumerate(zip(shape, cs))]
    home = [np.clip(np.floor(c / s).astype(np.int32) + 1, 1, g - 2) for c, s, g in zip(coords, cs, grid)]
    zscale = np.float32(cs[0] / cs[2])  # anisotropic metric: cells are flatter in z, like EM sections
    best = np.full(shape, np.inf, dtype=np.float32)
    second = np.full(shape, np.inf, dtype=np.float32)
    label = np.zeros(shape, dtype=np.uint64)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            for dk in (-1, 0, 1):
                flat = np.ravel_multi_index((home[0] + di, home[1] + dj, home[2] + dk), grid)
                s = seeds.reshape(-1, 3)[flat]
                d = ((coords[0] - s[..., 0]) ** 2 + (coords[1] - s[..., 1]) ** 2
                     + ((coords[2] - s[..., 2]) * zscale) ** 2)
                closer = d < best
                np.minimum(second, d, out=second)
                second[closer] = best[closer]
                label[closer] = ids.reshape(-1)[flat[closer]]
                best[closer] = d[closer]
    return np.sqrt(second) - np.sqrt(best), label


def make_demo_volume(shape: tuple[int, int, int] = (256, 256, 128), *, cell_size: tuple[int, int, int] = (48, 48, 16),
                     seed: int = 0) -> DemoVolume:
    """Build the demo volume of ``shape`` (x, y, z) voxels with cells about ``cell_size`` voxels wide.

    Deterministic for a given ``seed``. The tessellation is computed at half resolution and
    interpolated, which keeps a 256x256x128 volume to a second or two.
    Raises :class:`ValueError` if a size is not positive.
    """
    if len(shape) != 3 or any(int(n) <= 0 for n in shape) or any(int(c) <= 0 for c in cell_size):
        raise ValueError(f"shape {shape} and cell_size {cell_size} must be 3 positive sizes")
    rng = np.random.default_rng(seed)
    low = tuple(-(-int(n) // 2) for n in shape)
    gap_low, label_low = _voronoi(rng, low, tuple(c / 2 for c in cell_size))  # type: ignore[arg-type]
    gap = gap_low * np.float32(2.0)
    label = label_low
    for axis, n in enumerate(shape):
        gap = _upsample2(gap, axis, n)
        label = np.repeat(label, 2, axis=axis)[tuple(slice(0, n) if a == axis else slice(None) for a in range(3))]
    membrane = np.exp(-(gap / np.float32(2.2)) ** 2)
    texture = _smooth_noise(rng, shape, 6, 14.0)
    noise = rng.standard_normal(size=shape, dtype=np.float32)
    image = np.float32(185.0) + np.float32(18.0) * texture - np.float32(150.0) * membrane + np.float32(9.0) * noise
    image_u8 = np.asfortranarray(np.clip(image, 0, 255).astype(np.uint8))
    seg = np.where(gap < 2.5, np.uint64(0), label)
    return DemoVolume(image=image_u8, segmentation=np.asfortranarray(seg))
