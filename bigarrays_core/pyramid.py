"""Building the coarser scales of a pyramid, each from the next finer one.

:func:`build_mips` recomputes every chunk of the scales above ``ba.mip`` that a region
touches, whole, from the finer scale (so an edit anywhere in the region reaches every mip),
in the job order of :func:`bigarrays_core.resume.chunk_groups`.

The blocks (:func:`downsample_block`): with factor ``f`` along an axis, coarse voxel ``i``
covers fine voxels ``f*i`` to ``f*i + f - 1`` in absolute coordinates, whatever the voxel
offsets, so a block at the edge of the volume may hold fewer voxels (at the low edge too,
when the fine voxel offset is not a multiple of ``f``). Methods:

- ``"average"`` (images; ``"mean"`` is the same): the mean of the voxels the block has.
  Integers are rounded to the nearest, halves to even, computed exactly in integer
  arithmetic (64-bit types included); floats are summed in float64 (float32 means come out
  right to their precision; float64 means carry the rounding errors of a float64 sum).
- ``"stride"`` (segmentations: labels stay labels): the block's first voxel it has (the
  voxel at ``f*i``, or the first voxel of the volume in a partial low-edge block).
- ``"auto"``: ``"stride"`` for a ``segmentation`` layer, ``"average"`` otherwise.

Missing finer chunks read as zeros. **Sparse stays sparse**: a coarse chunk whose values
are all zero is not stored (and deleted if it was), unless ``write_empty``; even then a
coarse chunk whose finer chunks are all missing stays missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bigarrays_core.array import BigArray, ChunkRef
from bigarrays_core.errors import InfoError
from bigarrays_core.format.scales import coarsen_box, downsample_factor, refine_box
from bigarrays_core.geometry import Box
from bigarrays_core.ingest import Progress
from bigarrays_core.resume import ProgressRecord, chunk_count, chunk_groups
from bigarrays_core.scale_writer import ScaleWriter, WriteReport, is_all_zero

__all__ = ["METHODS", "build_mips", "downsample_block", "mip_plan", "resolve_method"]

#: The downsampling methods (``"mean"`` is accepted as another name for ``"average"``).
METHODS = ("auto", "average", "stride")


def _ignore(n: int) -> None:
    pass


def resolve_method(method: str, ba: BigArray) -> str:
    """``"average"`` or ``"stride"`` for ``method`` (``"auto"`` picks by layer type)."""
    if method == "mean":
        return "average"
    if method == "auto":
        return "stride" if ba.parsed_info.layer_type == "segmentation" else "average"
    if method not in METHODS:
        raise ValueError(f"downsampling method {method!r} is not one of {list(METHODS)} (or 'mean')")
    return method


@dataclass(frozen=True)
class _Axis:
    """One axis of a block: ``n`` voxels whose first is ``lo`` voxels into its factor-``f`` block."""

    lo: int
    n: int
    f: int

    @classmethod
    def of(cls, start: int, n: int, f: int) -> _Axis:
        return cls(start % f, n, f)

    @property
    def blocks(self) -> int:
        return -(-(self.lo + self.n) // self.f)

    @property
    def uniform(self) -> bool:
        """Every block holds ``f`` voxels."""
        return self.lo == 0 and self.n % self.f == 0

    def counts(self) -> np.ndarray:
        """Voxels in each block."""
        ends = np.minimum(np.arange(1, self.blocks + 1) * self.f, self.lo + self.n)
        starts = np.maximum(np.arange(self.blocks) * self.f, self.lo)
        return (ends - starts).astype(np.int64)

    def firsts(self) -> slice | np.ndarray:
        """The index of each block's first voxel (in the data)."""
        if self.lo == 0:
            return slice(0, None, self.f)
        return np.concatenate([[0], np.arange(self.f - self.lo, self.n, self.f)])


def _sum_axis(a: np.ndarray, axis: int, ax: _Axis, dtype: Any) -> np.ndarray:
    """Sums of ``a`` over the blocks of ``axis``, in ``dtype``: ``f`` strided adds, no padding copy."""
    shape = list(a.shape)
    shape[axis] = ax.blocks
    out = np.zeros(shape, dtype, order="F")
    lead = (slice(None),) * axis
    for j in range(ax.f):
        p0 = (j - ax.lo) % ax.f  # the first voxel at offset j of its block
        if p0 >= ax.n:
            continue
        src = a[lead + (slice(p0, None, ax.f),)]
        b0 = (p0 + ax.lo) // ax.f
        dst = out[lead + (slice(b0, b0 + src.shape[axis]),)]
        np.add(dst, src, out=dst)
    return out


def _sum_blocks(data: np.ndarray, axes: Sequence[_Axis], dtype: Any) -> np.ndarray:
    out = data
    for axis, ax in enumerate(axes):
        out = _sum_axis(out, axis, ax, dtype)
    return out


def _partial_planes(axes: Sequence[_Axis]) -> list[tuple[slice, ...]]:
    """Selections of the output planes whose blocks are not whole (at the edges of the data)."""
    planes = []
    for axis, ax in enumerate(axes):
        lead = (slice(None),) * axis
        if ax.lo:
            planes.append(lead + (slice(0, 1),))
        if (ax.lo + ax.n) % ax.f and (ax.blocks > 1 or not ax.lo):
            planes.append(lead + (slice(ax.blocks - 1, ax.blocks),))
    return planes


def _plane_counts(axes: Sequence[_Axis], plane: tuple[slice, ...], dtype: Any) -> np.ndarray:
    """Voxels per block in ``plane`` of the output, shaped like it."""
    sel = plane + (slice(None),) * (3 - len(plane))
    cx, cy, cz = (ax.counts()[s].astype(dtype) for ax, s in zip(axes, sel))
    n: np.ndarray = cx[:, None, None, None] * cy[None, :, None, None] * cz[None, None, :, None]
    return n


def _round_half_even(q: np.ndarray, r: np.ndarray, n: np.ndarray | Any) -> np.ndarray:
    """``q + round(r / n)`` with halves to even, for quotients ``q`` and remainders ``0 <= r < n``
    (``q`` is updated in place)."""
    r *= 2
    up = r > n
    tie = r == n
    tie &= (q & 1).astype(bool)
    up |= tie
    q += up
    return q


def _int_mean(sums: np.ndarray, n: np.ndarray | Any) -> np.ndarray:
    q, r = np.divmod(sums, n)
    return _round_half_even(q, r, n)


def _average(data: np.ndarray, axes: Sequence[_Axis]) -> np.ndarray:
    """Block means; every block is divided by ``prod(f)`` first, then the planes of partial
    blocks at the edges are done again with their own counts (cheaper than a divisor per voxel)."""
    dtype = data.dtype
    whole = int(np.prod([ax.f for ax in axes]))
    planes = _partial_planes(axes)
    if dtype.kind == "f":
        sums = _sum_blocks(data, axes, np.float64)
        mean = sums / whole
        for plane in planes:
            mean[plane] = sums[plane] / _plane_counts(axes, plane, np.float64)
        return mean.astype(dtype)
    if dtype == np.bool_:
        data = data.view(np.uint8)
    if data.dtype.itemsize <= 4:
        info = np.iinfo(data.dtype)
        bound = max(-int(info.min), int(info.max)) * whole
        acc = np.int32 if bound < 2**31 else np.int64  # exact: no block sum can overflow
        sums = _sum_blocks(data, axes, acc)
        mean = _int_mean(sums, acc(whole))
        for plane in planes:
            mean[plane] = _int_mean(sums[plane], _plane_counts(axes, plane, acc))
        return mean.astype(dtype)
    # 64-bit integers: offset binary (order-preserving, unsigned), summed in 32-bit halves.
    u = data.astype(np.uint64) if data.dtype == np.uint64 else data.view(np.uint64) ^ np.uint64(1 << 63)
    hi = _sum_blocks(u >> np.uint64(32), axes, np.uint64)
    lo = _sum_blocks(u & np.uint64(0xFFFFFFFF), axes, np.uint64)

    def mean64(hi: np.ndarray, lo: np.ndarray, n: np.ndarray | Any) -> np.ndarray:
        q_hi, r_hi = np.divmod(hi, n)
        q_lo, r = np.divmod((r_hi << np.uint64(32)) + lo, n)
        return _round_half_even((q_hi << np.uint64(32)) + q_lo, r, n)

    mean = mean64(hi, lo, np.uint64(whole))
    for plane in planes:
        mean[plane] = mean64(hi[plane], lo[plane], _plane_counts(axes, plane, np.uint64))
    return mean if dtype == np.uint64 else (mean ^ np.uint64(1 << 63)).view(np.int64).astype(dtype)


def downsample_block(data: np.ndarray, box: Box, factor: Sequence[int], method: str) -> tuple[np.ndarray, Box]:
    """Downsample the ``(x, y, z, c)`` voxels of ``box`` (absolute fine coordinates) by ``factor``.

    Returns the coarse voxels and their box (``box`` rounded outwards to the blocks). Each
    coarse voxel is made from the voxels of its block inside ``box`` (see the module
    docstring for the blocks and the methods). Pure: no I/O.
    """
    if method not in ("average", "stride"):
        raise ValueError(f"method {method!r} is not 'average' or 'stride'")
    if data.shape[:3] != box.shape or box.is_empty:
        raise ValueError(f"data of shape {data.shape} does not hold the voxels of box {box}")
    axes = [_Axis.of(a, n, f) for a, n, f in zip(box.start, box.shape, factor)]
    if method == "stride":
        out = data
        for axis, ax in enumerate(axes):
            firsts = ax.firsts()
            out = out[(slice(None),) * axis + (firsts,)] if isinstance(firsts, slice) else out.take(firsts, axis)
    else:
        out = _average(data, axes)
    return np.asfortranarray(out), coarsen_box(box, factor)


def mip_plan(ba: BigArray, region: Box | None, mips: int) -> list[tuple[BigArray, Box]]:
    """The scales above ``ba.mip`` to build and, for each, the box that ``region`` (voxels of
    ``ba.mip``; default its bounds) covers there, rounded outwards and clipped to the scale.

    Raises :class:`InfoError` when the info declares fewer scales, or a scale is not an
    integer downsampling of the one below it.
    """
    if mips < 0:
        raise ValueError(f"mips must be >= 0, got {mips}")
    if ba.mip + mips >= ba.num_mips:
        raise InfoError(f"{ba.url} declares {ba.num_mips} scale(s); cannot build {mips} mip(s) above mip {ba.mip} "
                        f"(that needs {ba.mip + mips + 1})", field="scales")
    box = (region if region is not None else ba.bounds).intersect(ba.bounds)
    plan = []
    fine = ba
    for k in range(ba.mip + 1, ba.mip + mips + 1):
        coarse = ba.at_mip(k)
        box = coarsen_box(box, downsample_factor(fine.scale, coarse.scale)).intersect(coarse.bounds)
        plan.append((coarse, box))
        fine = coarse
    return plan


def build_mips(ba: BigArray, region: Box | None = None, *, mips: int = 1, method: str = "auto",
               write_empty: bool = False, record: ProgressRecord | None = None, progress: Progress = _ignore,
               report: WriteReport | None = None) -> WriteReport:
    """Fill the ``mips`` scales above ``ba.mip`` over ``region`` (voxels of ``ba.mip``; default all).

    Each scale is made from the one below it (see the module docstring). The scales must be
    declared in the info already (:func:`bigarrays_core.create` with ``num_mips``). With a
    ``record``, finished chunks are recorded (steps ``"mip K"``) and a rerun skips them;
    without one every chunk is recomputed. ``progress(n)`` is called as chunks finish.
    Returns the counts, added to ``report`` if given.
    """
    report = report if report is not None else WriteReport()
    how = resolve_method(method, ba)
    fine = BigArray(ba.store, ba.parsed_info, ba.mip)  # reads missing chunks as zeros
    for coarse, box in mip_plan(ba, region, mips):
        factor = downsample_factor(fine.scale, coarse.scale)
        step = f"mip {coarse.mip}"
        start = min(record.done(step), chunk_count(coarse, box)) if record is not None else 0
        report.done_before += start
        progress(start)
        writer = ScaleWriter(coarse, report, merge=False)
        for group in chunk_groups(coarse, box, start=start):
            span = group.box
            data = _coarse_voxels(fine, span, factor, how)
            writes: list[ChunkRef] = []
            zero: list[ChunkRef] = []
            for ref in group.refs:
                (zero if is_all_zero(data[ref.box.slices_in(span)]) else writes).append(ref)
            remove: list[ChunkRef] = []
            if zero:
                have_fine = _fine_stored(fine, factor, zero) if write_empty else [False] * len(zero)
                for ref, exists, fine_stored in zip(zero, writer.exists(zero), have_fine):
                    if fine_stored:
                        writes.append(ref)
                    elif exists:
                        remove.append(ref)
                    else:
                        report.empty += 1
            writes.sort(key=lambda r: (r.grid[2], r.grid[1], r.grid[0]))
            writer.commit([(r, r.box) for r in writes], data, span, remove)
            if record is not None:
                record.advance(step, group.end)
            progress(len(group.refs))
        fine = BigArray(coarse.store, coarse.parsed_info, coarse.mip)
    return report


def _coarse_voxels(fine: BigArray, span: Box, factor: Sequence[int], method: str) -> np.ndarray:
    """The coarse voxels of ``span`` made from ``fine``; zeros where the finer scale has no voxels
    under them (only in an info whose coarse bounds reach past the finer scale's)."""
    src = refine_box(span, factor).intersect(fine.bounds)
    if src.is_empty:
        return np.zeros(span.shape + (fine.num_channels,), fine.dtype, order="F")
    data, data_box = downsample_block(fine.read(src), src, factor, method)
    if data_box == span:
        return data
    out = np.zeros(span.shape + (fine.num_channels,), fine.dtype, order="F")
    inter = data_box.intersect(span)
    out[inter.slices_in(span)] = data[inter.slices_in(data_box)]
    return out


def _fine_stored(fine: BigArray, factor: Sequence[int], refs: Sequence[ChunkRef]) -> list[bool]:
    """For each coarse chunk, whether any chunk of the finer scale under it is stored."""
    under = [fine.chunks(refine_box(r.box, factor).intersect(fine.bounds)) for r in refs]
    keys = sorted({c.key for cs in under for c in cs})
    exists = dict(zip(keys, fine.store.exists_many(keys))) if keys else {}
    return [any(exists[c.key] for c in cs) for cs in under]
