"""Pyramids: :func:`downsample` builds, or refreshes, the scales above a scale.

``downsample(ba, mips=N)`` fills the ``N`` scales above ``ba.mip`` (igneous's ``num_mips``:
``mips=2`` on a one-scale volume leaves three), adding to the info those it does not
declare yet, with the geometry :func:`bigarrays_core.create` gives (``num_mips``): each new
scale ``factor`` coarser than the one below it, ``voxel_offset = floor(offset / factor)``,
upper bound ``ceil((offset + size) / factor)``, the same chunk size and encoding. The
blocks and the methods are :mod:`bigarrays_core.downsampling`'s: blocks aligned in
absolute coordinates, partial edge blocks use the voxels they have, ``auto`` is ``mode``
for segmentations and ``average`` for images.

How it runs. The scales to build are cut into *stages* of consecutive scales, and each
stage into tasks (:mod:`bigarrays_core.jobs`): a task is a box of write units of the
stage's coarsest scale (about :data:`TASK_TARGET_BYTES` of source), built in parts of
whole write units (about :data:`PART_BYTES`) one after the other. A part reads the voxels
under it from the stage's source scale **once** (in pieces of at most ``max_task_bytes /
4``, each read in one go) and computes every scale of the stage from them in memory, each
from the one below it (so the result equals building the scales one by one), then stores
the chunks of each scale. Scales stay in one stage while the task boxes, refined to each
of them, are unions of whole chunks (always, when voxel offsets are multiples of the
factors and the chunk sizes agree), and while the voxels under one write unit of the
coarsest scale fit ``max_task_bytes``; otherwise a new stage starts, reading the scale the
last one stored. So no two tasks ever write the same chunk, tasks run in any
order and in parallel, on this machine's threads or on a Dask cluster (``client=``).

Sparse stays sparse: a chunk whose voxels are all zeros is not stored (and is deleted if
it was), unless ``write_empty``; even then a coarse chunk is stored only when some chunk
under it, down to the source scale, is stored. A task whose source chunks are all missing
reads nothing but checks for coarse chunks to delete.

With ``region`` (voxels of ``ba.mip``) only the chunks of each scale that the region
touches are stored: the way to refresh a pyramid after an edit. Resumable: while a build
runs, the tasks it finished are recorded in the dataset (:mod:`bigarrays_core.resume`),
and running the same build again after an interruption skips them; a build that finishes
removes its record, so the next build recomputes everything (the dataset may have changed
since). Edits made between an interruption and the resumed run are seen only by the tasks
not yet done: rebuild with ``resume=False`` (or refresh their ``region``) after such edits.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bigarrays_core.array import BigArray, ChunkRef, buffers
from bigarrays_core.array.executor import run_batches
from bigarrays_core.array.plan import ChunkProjection, plan_read
from bigarrays_core.array.source import StoredChunks
from bigarrays_core.array.write_units import unit_grid, unit_size
from bigarrays_core.downsampling import downsample_block, resolve_method
from bigarrays_core.errors import InfoError, OutOfBoundsError, ReadOnlyError
from bigarrays_core.format import Info, Scale, scale_key_for, write_info
from bigarrays_core.format.scales import coarsen_box, downsample_factor, refine_box
from bigarrays_core.format.sharding import choose_sharding
from bigarrays_core.geometry import Box, Vec3, split_box
from bigarrays_core.jobs import Progress, Stage, run_stages
from bigarrays_core.kvstore import KVStore, WriteOptions
from bigarrays_core.mip_files import FileAverager
from bigarrays_core.resume import ProgressRecord, scale_fingerprint
from bigarrays_core.scale_writer import ScaleWriter, WriteReport, is_all_zero
from bigarrays_core.task_grid import LIST_ABOVE_TASKS, TaskGrid, group_for, stored_boxes

__all__ = ["MAX_TASK_BYTES", "MipStage", "PyramidPlan", "add_scales", "build_task", "downsample",
           "mip_stages", "plan_downsample"]

#: Default bound on the voxel bytes one task holds (source pieces and the scales it builds).
MAX_TASK_BYTES = 256 << 20
#: Tasks are made of whole write units up to about this many source bytes: enough of them to
#: share out among threads or workers, none so small that sending it costs much of its work (a
#: Dask task costs the client, scheduler and worker a few ms of CPU: with 32 MiB tasks two
#: local worker processes built the benchmark's image pyramid in 159 ms, with 64 MiB in 144).
TASK_TARGET_BYTES = 64 << 20
#: A task is built in parts of whole top-level write units of about this many source bytes
#: (at least one unit), each stored before the next is read (see :func:`build_task`).
PART_BYTES = 16 << 20


def _ignore(n: int) -> None:
    pass


# -- the info: scales to add ---------------------------------------------------------------


def _new_scale(info: Info, fine: Scale, factor: Vec3) -> dict[str, Any]:
    """The info entry of a scale ``factor`` coarser than ``fine`` (create's geometry). A sharded
    ``fine`` scale gives a sharded one: with the spec :func:`~bigarrays_core.format.sharding.
    choose_sharding` picks for the new grid when ``fine`` has the one it picks for its own,
    else with ``fine``'s spec (as ``create(sharding={...})`` gives every scale the same)."""
    lo = [o // f for o, f in zip(fine.voxel_offset, factor)]
    hi = [-(-(o + s) // f) for o, s, f in zip(fine.voxel_offset, fine.size, factor)]
    res = [r * f for r, f in zip(fine.resolution, factor)]
    scale: dict[str, Any] = {
        "key": scale_key_for(res), "size": [h - a for h, a in zip(hi, lo)], "voxel_offset": lo,
        "resolution": [int(r) if float(r).is_integer() else r for r in res],
        "chunk_sizes": [list(fine.chunk_size)], "encoding": fine.encoding,
    }
    for name in ("compressed_segmentation_block_size", "jpeg_quality", "png_level", "compression"):
        if fine.raw.get(name) is not None:
            scale[name] = fine.raw[name]
    if fine.sharding is not None:
        chosen = choose_sharding(fine.size, fine.chunk_size, info.dtype, info.num_channels, fine.encoding).to_json()
        if dict(fine.sharding) == chosen:
            scale["sharding"] = choose_sharding(scale["size"], fine.chunk_size, info.dtype, info.num_channels,
                                                fine.encoding).to_json()
        else:
            scale["sharding"] = dict(fine.sharding)
    return scale


def add_scales(info: Info, top: int, factor: Vec3) -> Info:
    """``info`` with scales added until it has scale ``top``, each ``factor`` coarser than
    the one below it (see the module docstring); ``info`` itself if it has it already.

    Raises :class:`InfoError` if a new scale's key is taken.
    """
    if top < len(info.scales):
        return info
    raw = info.to_json()
    fine = info.scales[-1]
    keys = {s.key for s in info.scales}
    for _ in range(len(info.scales), top + 1):
        entry = _new_scale(info, fine, factor)
        if entry["key"] in keys:
            raise InfoError(f"cannot add a scale of resolution {entry['resolution']}: its key {entry['key']!r} "
                            f"is taken by another scale", field="info.scales")
        keys.add(entry["key"])
        raw["scales"].append(entry)
        fine = Info(raw).scales[-1]
    return Info(raw)


def _check_factors(info: Info, base: int, top: int, factor: Vec3 | None) -> None:
    """Every declared scale from ``base + 1`` to ``top`` is an integer downsampling of the one
    below it, by ``factor`` when one was asked for."""
    for k in range(base + 1, min(top, len(info.scales) - 1) + 1):
        have = downsample_factor(info.scales[k - 1], info.scales[k])
        if factor is not None and have != tuple(factor):
            raise InfoError(
                f"scale {k} ({info.scales[k].key!r}) is {list(have)} coarser than scale {k - 1}, not "
                f"factor={list(factor)}: leave factor out to build the declared scales as they are",
                field=f"info.scales[{k}].resolution")


# -- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Level:
    """A scale a stage writes: its mip, factor from the scale below, and the voxels to refresh."""

    mip: int
    factor: Vec3
    region: Box


@dataclass(frozen=True)
class MipStage:
    """What every task of one stage shares (sent with each Dask task, or to every worker once when big: see jobs)."""

    store: KVStore
    info: Info
    source: int
    levels: tuple[_Level, ...]
    method: str
    ignore_zero: bool
    write_empty: bool
    piece_bytes: int

    def array(self, mip: int) -> BigArray:
        return BigArray(self.store, self.info, mip)

    def scale_from_top(self, j: int) -> Vec3:
        """The factor from level ``j`` (an index into :attr:`levels`, -1 for the source) to the top."""
        f = [1, 1, 1]
        for level in self.levels[j + 1:]:
            f = [a * b for a, b in zip(f, level.factor)]
        return (f[0], f[1], f[2])


def _prod(v: Iterable[int]) -> int:
    out = 1
    for a in v:
        out *= a
    return out


def _nests(info: Info, units: Mapping[int, Vec3], top: int, fine: int, factor: Vec3) -> bool:
    """Whether write units of scale ``top``, refined by ``factor`` to scale ``fine``, are
    unions of whole units of ``fine`` covering it all."""
    t, f = info.scales[top], info.scales[fine]
    for a in range(3):
        ut, uf, k = units[top][a], units[fine][a], factor[a]
        if (ut * k) % uf or (t.voxel_offset[a] * k - f.voxel_offset[a]) % uf:
            return False
        if t.voxel_offset[a] * k > f.voxel_offset[a] or (t.voxel_offset[a] + t.size[a]) * k < (
                f.voxel_offset[a] + f.size[a]):
            return False
    return True


def _bounds(scale: Scale) -> Box:
    return Box.from_shape(scale.voxel_offset, scale.size)


def mip_stages(ba: BigArray, info: Info, mips: int, *, max_task_bytes: int = MAX_TASK_BYTES) -> list[list[int]]:
    """The ``mips`` scales above ``ba.mip`` (all declared in ``info``) cut into stages: lists
    of consecutive mips built from one read (see the module docstring)."""
    units = {k: unit_size(BigArray(ba.store, info, k)) for k in range(ba.mip, ba.mip + mips + 1)}
    factors = {k: downsample_factor(info.scales[k - 1], info.scales[k]) for k in range(ba.mip + 1, ba.mip + mips + 1)}
    per_voxel = ba.dtype.itemsize * ba.num_channels

    def up(j: int, top: int) -> Vec3:
        f = (1, 1, 1)
        for k in range(j + 1, top + 1):
            f = (f[0] * factors[k][0], f[1] * factors[k][1], f[2] * factors[k][2])
        return f

    def fits(levels: list[int]) -> bool:
        top = levels[-1]
        if not all(_nests(info, units, top, j, up(j, top)) for j in levels[:-1]):
            return False
        held = sum(_prod(u * f for u, f in zip(units[top], up(j, top))) for j in levels) * per_voxel
        return held + max_task_bytes // 4 <= max_task_bytes

    stages: list[list[int]] = []
    k = ba.mip + 1
    while k <= ba.mip + mips:
        stage = [k]
        while stage[-1] < ba.mip + mips and fits(stage + [stage[-1] + 1]):
            stage.append(stage[-1] + 1)
        stages.append(stage)
        k = stage[-1] + 1
    return stages


def _regions(info: Info, base: int, mips: int, region: Box) -> dict[int, Box]:
    """``region`` (voxels of ``base``) at each scale above it, rounded outwards and clipped."""
    out = {base: region}
    for k in range(base + 1, base + mips + 1):
        out[k] = coarsen_box(out[k - 1], downsample_factor(info.scales[k - 1], info.scales[k])).intersect(
            _bounds(info.scales[k]))
    return out


class _Weights(Sequence[int]):
    """The chunks each task of a stage stores (computed when asked: a stage may have millions)."""

    def __init__(self, ctx: MipStage, tasks: Sequence[Box]) -> None:
        self.ctx, self.tasks = ctx, tasks
        self.arrays = [ctx.array(level.mip) for level in ctx.levels]

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        task, n = self.tasks[i], 0
        for j, (level, a) in enumerate(zip(self.ctx.levels, self.arrays)):
            box = refine_box(task, self.ctx.scale_from_top(j)).intersect(a.bounds).intersect(level.region)
            rx, ry, rz = a.grid.grid_range(box)
            n += len(rx) * len(ry) * len(rz)
        return n


def _task_bytes(max_task_bytes: int) -> int:
    """The source bytes a task is made of (about; whole write units), given the bound on what one holds."""
    return min(TASK_TARGET_BYTES, max_task_bytes // 2)


def _stage(ba: BigArray, info: Info, levels: list[int], regions: Mapping[int, Box], method: str,
           ignore_zero: bool, write_empty: bool, max_task_bytes: int) -> Stage[MipStage, Box]:
    source = levels[0] - 1
    ctx = MipStage(
        ba.store, info, source,
        tuple(_Level(k, downsample_factor(info.scales[k - 1], info.scales[k]), regions[k]) for k in levels),
        method, ignore_zero, write_empty, max(1, max_task_bytes // 4))
    top = ctx.array(levels[-1])
    units = unit_grid(top)
    cover = regions[levels[-1]]
    grid = TaskGrid(units, cover, group_for(units, cover, _prod(unit_size(top)) * _source_bytes_per_top_voxel(ctx, ba),
                                            _task_bytes(max_task_bytes)))
    tasks: Sequence[Box] = grid
    ids: Sequence[int] | None = None
    if len(grid) > LIST_ABOVE_TASKS:  # a huge, probably sparse, volume: only where chunks are stored
        stored = [coarsen_box(b, ctx.scale_from_top(-1)) for b in stored_boxes(ctx.array(source))]
        for j, level in enumerate(ctx.levels):
            stored += [coarsen_box(b, ctx.scale_from_top(j)) for b in stored_boxes(ctx.array(level.mip))]
        ids = grid.touched(stored)
        tasks = [grid[i] for i in ids]
    step = f"mip {levels[0]}" if len(levels) == 1 else f"mip {levels[0]}-{levels[-1]}"
    return Stage(step, build_task, ctx, tasks, _Weights(ctx, tasks), ids)


# -- one task ----------------------------------------------------------------------------------


class _Missing:
    """Which chunks a read found missing (a chunk source over the stored chunks)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.lock = threading.Lock()


class _SeenChunks(StoredChunks):
    """The stored chunks, noting which were missing."""

    def __init__(self, ba: BigArray, missing: _Missing) -> None:
        super().__init__(dataclasses.replace(ba.scale_io, store=_Noting(ba.scale_io.store, missing)))


class _Noting(KVStore):
    """A store that notes the keys its reads found missing, and passes everything on."""

    def __init__(self, inner: KVStore, missing: _Missing) -> None:
        self.inner, self.missing = inner, missing
        self.url, self.read_only, self.threaded_io = inner.url, inner.read_only, inner.threaded_io

    def describe(self, key: str) -> str:
        return self.inner.describe(key)

    def iter_values(self, keys: Sequence[str], spans: Any = None) -> Iterator[Any]:
        for key, value in zip(keys, self.inner.iter_values(keys, spans)):
            if value is None or not value.data:
                with self.missing.lock:
                    self.missing.keys.add(key)
            yield value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.inner.get_many(keys)

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        self.inner.set_many(items, options)

    def delete_many(self, keys: Iterable[str]) -> None:
        self.inner.delete_many(keys)

    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        return self.inner.exists_many(keys)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.inner.list(prefix)


def _paste(out: np.ndarray, out_box: Box, data: np.ndarray, data_box: Box) -> None:
    inter = data_box.intersect(out_box)
    if not inter.is_empty:
        out[inter.slices_in(out_box)] = data[inter.slices_in(data_box)]


def _first_level(ctx: MipStage, source: BigArray, a: BigArray, want: Box, src_box: Box,
                 missing: _Missing) -> np.ndarray:
    """The first level's voxels of ``want``, from the source's voxels in ``src_box``.

    When the source chunks there are unions of whole blocks (their edges at multiples of the
    factor, or at the volume's end), each chunk is reduced right where it is decoded, into
    its part of the result: no assembled copy of the source, and the chunk is still in the
    cache when the kernel reads it; an image's plain raw chunk files are averaged by
    batches, straight from the files (:mod:`bigarrays_core.mip_files`). Otherwise the
    source box is read whole, then reduced. Missing chunks read as zeros (and are noted in
    ``missing``).
    """
    level = ctx.levels[0]
    f = level.factor
    shape = want.shape + (a.num_channels,)
    src = refine_box(want, f).intersect(src_box)
    if src.is_empty or want.is_empty:
        return buffers.zeros(shape, a.dtype, temporary=True)
    io = source.scale_io
    plan = plan_read(io, src, (0, source.num_channels))
    end = source.bounds.stop

    def whole_blocks(box: Box) -> bool:
        return (all(v % k == 0 for v, k in zip(box.start, f))
                and all(v % k == 0 or v == e for v, k, e in zip(box.stop, f, end)))

    if not all(whole_blocks(p.ref.box.intersect(src)) for p in plan):
        data = source.read(src, source=_SeenChunks(source, missing))
        if coarsen_box(src, f) == want:
            out = buffers.empty(shape, a.dtype, temporary=True)
            downsample_block(data, src, f, ctx.method, ignore_zero=ctx.ignore_zero, out=out)
            return out
        out = buffers.zeros(shape, a.dtype, temporary=True)
        coarse, cbox = downsample_block(data, src, f, ctx.method, ignore_zero=ctx.ignore_zero)
        _paste(out, want, coarse, cbox)
        return out

    # The chunks' blocks tile coarsen_box(src); when that is the whole result, every voxel
    # of it is written below (a missing chunk's part as zeros) and it need not be zeroed first.
    tiled = coarsen_box(src, f) == want
    out = buffers.empty(shape, a.dtype, temporary=True) if tiled else buffers.zeros(shape, a.dtype, temporary=True)

    files = FileAverager.of(source, a.dtype, f, ctx.method)

    def work(batch: Sequence[ChunkProjection]) -> None:
        store, pipeline = io.store, io.pipeline
        if files is not None:  # what it can, straight from the files, the GIL released once
            batch = files.average(batch, src, want, out)
        for p, value in zip(batch, store.iter_values([p.ref.key for p in batch])):
            key = p.ref.key
            inter = p.ref.box.intersect(src)
            cbox = coarsen_box(inter, f)
            if value is None or not value.data:
                with missing.lock:
                    missing.keys.add(key)
                if tiled:
                    out[cbox.intersect(want).slices_in(want)] = 0
                continue
            # Reduced before the next chunk is decoded: it may view the thread's reused buffers.
            chunk = pipeline.decode(value.data, p.shape, store.describe(key), key, value.encoding, transient=True)
            part = cbox.intersect(want)
            if part == cbox:  # straight into the result (a view of it)
                downsample_block(chunk[p.region], inter, f, ctx.method, ignore_zero=ctx.ignore_zero,
                                 out=out[cbox.slices_in(want)])
            elif not part.is_empty:
                coarse, _ = downsample_block(chunk[p.region], inter, f, ctx.method, ignore_zero=ctx.ignore_zero)
                _paste(out, want, coarse, cbox)

    run_batches(work, plan, per_thread=4)
    return out


def _levels_of_piece(ctx: MipStage, source: BigArray, arrays: Sequence[BigArray], piece: Box, src_box: Box,
                     missing: _Missing) -> Iterator[tuple[Box, np.ndarray]]:
    """Each level's voxels over ``piece`` (top-level voxels), made one level from the one
    below it, the first from the source's voxels of ``src_box``."""
    cur = cur_box = None
    for j, (level, a) in enumerate(zip(ctx.levels, arrays)):
        want = refine_box(piece, ctx.scale_from_top(j)).intersect(a.bounds)
        if cur is None or cur_box is None:
            out = _first_level(ctx, source, a, want, src_box, missing)
        else:
            src = refine_box(want, level.factor).intersect(cur_box)
            shape = want.shape + (a.num_channels,)
            if src.is_empty or want.is_empty:
                out = buffers.zeros(shape, a.dtype, temporary=True)
            else:
                sub = cur if src == cur_box else cur[src.slices_in(cur_box)]
                cbox = coarsen_box(src, level.factor)
                if cbox == want:  # written whole, straight into the level's array
                    out = buffers.empty(shape, a.dtype, temporary=True)
                    downsample_block(sub, src, level.factor, ctx.method, ignore_zero=ctx.ignore_zero, out=out)
                else:
                    out = buffers.zeros(shape, a.dtype, temporary=True)
                    coarse, _ = downsample_block(sub, src, level.factor, ctx.method, ignore_zero=ctx.ignore_zero)
                    _paste(out, want, coarse, cbox)
        yield want, out
        cur, cur_box = out, want


def build_task(ctx: MipStage, top: Box) -> WriteReport:
    """Build every level of ``ctx`` over ``top`` (a box of the top level's write units) and
    store the chunks each level's region touches. Idempotent.

    The box is built in parts of whole top-level write units of about :data:`PART_BYTES`
    source bytes, one after the other, each read, reduced and stored before the next:
    a part's levels are still in the processor's cache when they are reduced again and
    stored (a task of 64 MiB built whole kept 16 MiB of first level between its reduction
    and its storing)."""
    report = WriteReport()
    source = ctx.array(ctx.source)
    arrays = [ctx.array(level.mip) for level in ctx.levels]
    for part in split_box(top, unit_grid(arrays[-1]), _source_bytes_per_top_voxel(ctx, source), PART_BYTES) or [top]:
        _build_part(ctx, part, report, source, arrays)
    return report


def _source_bytes_per_top_voxel(ctx: MipStage, source: BigArray) -> int:
    """The bytes of ``source`` (any scale of the volume: one dtype and channel count) under one top-level voxel."""
    return _prod(ctx.scale_from_top(-1)) * source.dtype.itemsize * source.num_channels


def _build_part(ctx: MipStage, top: Box, report: WriteReport, source: BigArray, arrays: Sequence[BigArray]) -> None:
    """Build and store the levels over ``top`` (whole top-level write units), adding to
    ``report``; ``source`` and ``arrays`` are ``ctx``'s source and level arrays."""
    boxes = [refine_box(top, ctx.scale_from_top(j)).intersect(a.bounds) for j, a in enumerate(arrays)]
    src_box = refine_box(top, ctx.scale_from_top(-1)).intersect(source.bounds)
    missing = _Missing()
    pieces = [] if src_box.is_empty else split_box(
        top, arrays[-1].grid, _source_bytes_per_top_voxel(ctx, source), ctx.piece_bytes) or [top]
    if len(pieces) <= 1:
        outs = [out for _, out in _levels_of_piece(ctx, source, arrays, top, src_box, missing)]
    else:
        outs = [buffers.zeros(b.shape + (a.num_channels,), a.dtype, temporary=True) for a, b in zip(arrays, boxes)]
        for piece in pieces:
            pbox = refine_box(piece, ctx.scale_from_top(-1)).intersect(source.bounds)
            if pbox.is_empty:
                continue
            for out, box, (want, part) in zip(outs, boxes,
                                               _levels_of_piece(ctx, source, arrays, piece, pbox, missing)):
                _paste(out, box, part, want)
    src_refs = source.chunks(src_box)
    present = {r.key: r.key not in missing.keys for r in src_refs}  # stored below, for write_empty
    below = source
    for level, a, box, out in zip(ctx.levels, arrays, boxes, outs):
        refs = a.chunks(box)
        if ctx.write_empty:
            fine = {r.key for r in below.chunks(refine_box(box, level.factor)) if present.get(r.key)}
            now = {}
            for r in refs:
                under = below.chunks(refine_box(r.box, level.factor).intersect(below.bounds))
                now[r.key] = any(c.key in fine for c in under)
            present = now
        wanted = [r for r in refs if not r.box.intersect(level.region).is_empty]
        _store_level(a, wanted, out, box, present if ctx.write_empty else None, report)
        below = a


def _store_level(a: BigArray, refs: Sequence[ChunkRef], data: np.ndarray, data_box: Box,
                 present: Mapping[str, bool] | None, report: WriteReport) -> None:
    """Store the chunks ``refs`` of ``a`` from ``data``; all-zero ones are not stored (deleted if
    they exist) unless ``present`` (write_empty) says something is stored under them."""
    writer = ScaleWriter(a, report, merge=False)
    writes: list[ChunkRef] = []
    zero: list[ChunkRef] = []
    for ref in refs:
        (zero if is_all_zero(data[ref.box.slices_in(data_box)]) else writes).append(ref)
    remove: list[ChunkRef] = []
    keep_zero = [r for r in zero if present is not None and present.get(r.key)]
    writes.extend(keep_zero)
    others = [r for r in zero if not (present is not None and present.get(r.key))]
    for ref, exists in zip(others, writer.exists(others)):
        if exists:
            remove.append(ref)
        else:
            report.empty += 1
    writes.sort(key=lambda r: (r.grid[2], r.grid[1], r.grid[0]))
    writer.commit([(r, r.box) for r in writes], data, data_box, remove)


# -- the operation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PyramidPlan:
    """A planned build: the info (with any scales it added), the stages, and the job's
    description (what names its progress record)."""

    info: Info
    stages: list[Stage[MipStage, Box]]
    job: dict[str, Any]


def plan_downsample(ba: BigArray, mips: int | None = None, factor: Sequence[int] | None = None,
                    method: str = "auto", region: Box | str | None = None, *, ignore_zero: bool = False,
                    write_empty: bool = False, max_task_bytes: int = MAX_TASK_BYTES) -> PyramidPlan:
    """Check the arguments of :func:`downsample`, add the missing scales to the info (written to
    the store) and cut the build into stages, to run with :func:`bigarrays_core.jobs.run_stages`
    (alone or after other stages, e.g. an ingest's, under one record). Raises as :func:`downsample`."""
    if ba.store.read_only:
        raise ReadOnlyError(f"cannot downsample {ba.url}: the store is read-only")
    info = ba.parsed_info
    how = resolve_method(method, info.layer_type)
    if ignore_zero and how != "mode":
        raise ValueError(f"ignore_zero goes with method 'mode', not {how!r}")
    if mips is None:
        mips = max(1, len(info.scales) - 1 - ba.mip)
    if isinstance(mips, bool) or not isinstance(mips, int) or mips < 0:
        raise ValueError(f"mips must be an integer >= 0, got {mips!r}")
    want: Vec3 | None = None
    if factor is not None:
        f = tuple(int(v) for v in factor)
        if len(f) != 3 or min(f) < 1:
            raise ValueError(f"factor must be 3 integers >= 1, got {list(factor)}")
        want = (f[0], f[1], f[2])
    top = ba.mip + mips
    _check_factors(info, ba.mip, top, want)
    if isinstance(region, str):
        region = Box.parse(region)
    box = ba.bounds if region is None else region.intersect(ba.bounds)
    if box.is_empty:
        raise OutOfBoundsError(f"cannot downsample {region} of {ba.url} mip {ba.mip}: it lies outside the volume "
                               f"{ba.bounds}")
    if mips:
        grown = add_scales(info, top, want or (2, 2, 1))
        if grown is not info:
            write_info(ba.store, grown)
            info = grown
    base = BigArray(ba.store, info, ba.mip)
    regions = _regions(info, ba.mip, mips, box)
    stages = [_stage(base, info, levels, regions, how, ignore_zero, write_empty, max_task_bytes)
              for levels in mip_stages(base, info, mips, max_task_bytes=max_task_bytes)]
    job = {"kind": "downsample", "version": 1, "mip": ba.mip, "region": [list(box.start), list(box.stop)],
           "method": how, "ignore_zero": ignore_zero, "write_empty": write_empty, "max_task_bytes": max_task_bytes,
           "task_bytes": _task_bytes(max_task_bytes),
           "scales": [scale_fingerprint(BigArray(ba.store, info, k)) for k in range(ba.mip, top + 1)]}
    return PyramidPlan(info, stages, job)


def downsample(ba: BigArray, mips: int | None = None, factor: Sequence[int] | None = None, method: str = "auto",
               region: Box | str | None = None, client: Any = None, *, ignore_zero: bool = False,
               write_empty: bool = False, resume: bool = True, record: ProgressRecord | None = None,
               max_task_bytes: int = MAX_TASK_BYTES, progress: Progress = _ignore,
               report: WriteReport | None = None) -> WriteReport:
    """Build (or refresh) the ``mips`` scales above ``ba.mip``; see the module docstring.

    Parameters
    ----------
    mips:
        How many scales above ``ba.mip`` to fill (``mips=2`` on a one-scale volume leaves
        three). Default: every scale the info declares above ``ba.mip``, or 1 if none.
    factor:
        The factor of each scale added to the info (default ``(2, 2, 1)``). Scales the info
        declares keep their own; if ``factor`` is given they must have it.
    method:
        ``"auto"``, ``"average"`` (``"mean"``), ``"mode"``, ``"min"``, ``"max"`` or ``"stride"``
        (:mod:`bigarrays_core.downsampling` states each, and its rounding).
    region:
        A box of ``ba.mip`` voxels (a :class:`Box` or ``"x0:x1,y0:y1,z0:z1"``): only the chunks
        of each scale it touches are stored. Default: the whole volume.
    client:
        ``None`` (this machine's threads), a ``distributed.Client`` or a scheduler address.
    ignore_zero:
        With ``mode``: zeros count only in blocks of nothing but zeros.
    write_empty:
        Store all-zero chunks too, where a chunk under them is stored.
    resume, record:
        Record finished tasks so an interrupted build resumes (see the module docstring);
        ``record`` is one to use instead (kept when the build finishes).
    max_task_bytes:
        About the most voxel bytes one task holds.
    progress:
        Called with the number of chunks of each finished task.

    Returns the counts (chunks written, removed, left empty), added to ``report`` if given.

    Raises :class:`ReadOnlyError` for a read-only store, :class:`InfoError` when a declared
    scale has another factor or is not an integer downsampling, :class:`OutOfBoundsError`
    for a region outside the volume, :class:`ValueError` for a bad method or count.
    """
    plan = plan_downsample(ba, mips, factor, method, region, ignore_zero=ignore_zero, write_empty=write_empty,
                           max_task_bytes=max_task_bytes)
    own = record is None and resume
    if own:
        record = ProgressRecord(ba.store, plan.job)
    report = run_stages(plan.stages, client=client, record=record, progress=progress, report=report)
    if own and record is not None:
        record.delete()
    return report
