"""Smooth value noise and wiggly Voronoi labels, vectorised numpy, generated slab by slab.

Everything is seeded and deterministic: the same ``seed`` and shape give the same
voxels, whichever slabs are asked for. Slabs are along z (the slowest axis of an
Fortran-ordered ``(x, y, z)`` volume) so each one can be written straight into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ValueNoise", "VoronoiLabels", "image_lattices", "image_slab"]

Vec3 = tuple[int, int, int]


def _smoothstep(period: int) -> np.ndarray:
    """Smoothstep weights for the ``period`` positions between two lattice points."""
    t = np.arange(period, dtype=np.float32) / period
    w: np.ndarray = t * t * (3 - 2 * t)
    return w


def _expand(arr: np.ndarray, axis: int, period: int, lo: int, hi: int) -> np.ndarray:
    """Interpolate lattice axis ``axis`` of ``arr`` to voxels ``lo <= v < hi`` (broadcasts, no gathers)."""
    i0, i1 = lo // period, (hi - 1) // period + 1
    take = [slice(None)] * arr.ndim
    take[axis] = slice(i0, i1)
    a = np.expand_dims(arr[tuple(take)], axis + 1)
    take[axis] = slice(i0 + 1, i1 + 1)
    b = np.expand_dims(arr[tuple(take)], axis + 1)
    wshape = [1] * (arr.ndim + 1)
    wshape[axis + 1] = period
    w = _smoothstep(period).reshape(wshape)
    out = a + (b - a) * w
    shape = list(arr.shape)
    shape[axis] = (i1 - i0) * period
    out = out.reshape(shape)
    take[axis] = slice(lo - i0 * period, hi - i0 * period)
    region: np.ndarray = out[tuple(take)]
    return region


@dataclass(frozen=True)
class ValueNoise:
    """One octave of value noise: random lattice values every ``period`` voxels, smoothstep-interpolated.

    Values lie in [-1, 1]. The lattice covers ``shape`` plus one extra point per axis.
    """

    shape: Vec3
    period: int
    seed: int

    def lattice(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        dims = tuple(-(-s // self.period) + 2 for s in self.shape)
        lattice: np.ndarray = rng.uniform(-1.0, 1.0, size=dims).astype(np.float32)
        return lattice

    def slab(self, z0: int, z1: int, lattice: np.ndarray | None = None) -> np.ndarray:
        """The noise for ``z0 <= z < z1`` as a float32 ``(X, Y, z1 - z0)`` Fortran-ordered array."""
        lat = self.lattice() if lattice is None else lattice  # indexed (x, y, z)
        x, y, _ = self.shape
        # Work in C order (z, y, x) so the largest expansion runs along the contiguous axis;
        # the transpose at the end is then Fortran-ordered (x, y, z) for free.
        out = np.ascontiguousarray(lat.transpose(2, 1, 0))
        out = _expand(out, 0, self.period, z0, z1)
        out = _expand(out, 1, self.period, 0, y)
        out = _expand(out, 2, self.period, 0, x)
        xyz: np.ndarray = out.T  # a C-ordered (z, y, x) array seen as Fortran-ordered (x, y, z)
        return xyz


def image_slab(shape: Vec3, z0: int, z1: int, seed: int, lattices: list[np.ndarray] | None = None) -> np.ndarray:
    """EM-like uint8 voxels for ``z0 <= z < z1``: octaves at 32, 8 and 4 voxels plus +-8 white noise.

    The amplitudes are chosen so the raw chunks gzip to about 0.83 of their size, as EM
    data does.
    """
    octaves = [(32, 64.0), (8, 28.0), (4, 24.0)]
    acc = np.full((shape[0], shape[1], z1 - z0), 128.0, dtype=np.float32, order="F")  # same layout as the noise
    for i, (period, amp) in enumerate(octaves):
        noise = ValueNoise(shape, period, seed + i)
        lat = lattices[i] if lattices is not None else None
        acc += amp * noise.slab(z0, z1, lat)
    # White noise per voxel, seeded per slab so any slab is reproducible on its own.
    rng = np.random.default_rng((seed, z0))
    acc += rng.integers(-8, 9, size=acc.shape[::-1], dtype=np.int8).T
    np.clip(acc, 0, 255, out=acc)
    return acc.astype(np.uint8, order="F")


def image_lattices(shape: Vec3, seed: int) -> list[np.ndarray]:
    """The lattices :func:`image_slab` uses, built once for a whole volume."""
    return [ValueNoise(shape, p, seed + i).lattice() for i, p in enumerate((32, 8, 4))]


@dataclass(frozen=True)
class VoronoiLabels:
    """Wiggly Voronoi-like uint64 segments: about ``cells**3`` of them, a ``background`` fraction zero.

    Seeds are jittered points, one per lattice cell of a coarse grid (a quarter of the
    resolution); each coarse voxel takes its nearest seed's label. A full-resolution
    voxel looks up the coarse label at its position displaced by smooth noise of a few
    voxels, so boundaries wiggle instead of being planes.
    """

    shape: Vec3
    cells: int
    seed: int
    background: float = 0.03
    coarse: int = 4
    wiggle: float = 5.0

    def coarse_labels(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        n = self.cells
        cshape = tuple(-(-s // self.coarse) for s in self.shape)
        cell = np.array(cshape, dtype=np.float32) / n  # coarse voxels per cell, per axis
        grid = np.stack(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"), axis=-1)
        seeds = (grid + rng.uniform(0.15, 0.85, size=grid.shape)).astype(np.float32) * cell
        # Distinct ids well above 2**32, so the volume really needs uint64.
        order = rng.permutation(n**3).astype(np.uint64).reshape(n, n, n)
        ids = (np.uint64(1) << np.uint64(33)) + order * np.uint64(977)
        ids[rng.random((n, n, n)) < self.background] = 0
        # Nearest seed among the 27 cells around each coarse voxel's own cell.
        cx, cy, cz = (np.arange(c, dtype=np.float32) + 0.5 for c in cshape)
        px, py, pz = np.meshgrid(cx, cy, cz, indexing="ij")
        own = [np.minimum((p / cell[a]).astype(np.intp), n - 1) for a, p in enumerate((px, py, pz))]
        best = np.full(px.shape, np.inf, dtype=np.float32)
        label = np.zeros(px.shape, dtype=np.uint64)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for dz in (-1, 0, 1):
                    gx = np.clip(own[0] + dx, 0, n - 1)
                    gy = np.clip(own[1] + dy, 0, n - 1)
                    gz = np.clip(own[2] + dz, 0, n - 1)
                    s = seeds[gx, gy, gz]
                    d = (s[..., 0] - px) ** 2 + (s[..., 1] - py) ** 2 + (s[..., 2] - pz) ** 2
                    closer = d < best
                    best[closer] = d[closer]
                    label[closer] = ids[gx, gy, gz][closer]
        return label

    def slab(self, z0: int, z1: int, coarse: np.ndarray | None = None,
             wiggles: list[np.ndarray] | None = None) -> np.ndarray:
        """Labels for ``z0 <= z < z1`` as a uint64 Fortran-ordered ``(X, Y, z1 - z0)`` array."""
        lab = self.coarse_labels() if coarse is None else coarse
        x, y, _ = self.shape
        lats = wiggles if wiggles is not None else self.wiggle_lattices()
        disp = [self.wiggle * ValueNoise(self.shape, 16, self.seed + 10 + a).slab(z0, z1, lats[a])
                for a in range(3)]
        coords = (np.arange(x, dtype=np.float32)[:, None, None], np.arange(y, dtype=np.float32)[None, :, None],
                  np.arange(z0, z1, dtype=np.float32)[None, None, :])
        idx = [np.clip(((c + d) / self.coarse).astype(np.intp), 0, lab.shape[a] - 1)
               for a, (c, d) in enumerate(zip(coords, disp))]
        return np.asfortranarray(lab[idx[0], idx[1], idx[2]])

    def wiggle_lattices(self) -> list[np.ndarray]:
        return [ValueNoise(self.shape, 16, self.seed + 10 + a).lattice() for a in range(3)]
