"""Ingest: write a :class:`~bigarrays_core.sources.Source` into one scale of a dataset.

The source's voxels are placed at ``offset`` and written in tasks of whole rows of chunks
(:mod:`bigarrays_core.jobs`: on this machine's threads or a Dask cluster; memory stays
bounded by a few groups of rows):

- A chunk the source covers wholly is replaced. A chunk it covers in part is **merged**:
  read, patched where the source has voxels, rewritten (the other voxels are kept), so tiles
  that meet inside a chunk all survive, whatever order they are ingested in.
- **Sparse stays sparse.** A chunk where the source stores nothing (every chunk of a
  precomputed source under it is missing) is left alone. A chunk whose voxels would all be
  zero (the fill value) is not stored, unless ``write_empty``; if one is stored already and
  the source covers it wholly, it is deleted (it reads as zeros, as the source says).
- **Resumable.** With a :class:`~bigarrays_core.resume.ProgressRecord` (made from the
  source's identity by default) finished tasks are recorded as the job goes; running the
  same ingest again skips them, and running a finished one writes nothing. ``overwrite``
  forgets the record and writes everything again.

Ingests of tiles that share chunks may run at the same time, in any processes: the merge
is a conditional read-modify-write (:func:`bigarrays_core.array.write.update_chunk`), so no
tile loses voxels, on every store whose conditional writes are atomic across processes
(local disk, S3, GCS; ``KVStore.atomic_updates``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bigarrays_core.array import BigArray
from bigarrays_core.array.write_units import unit_grid
from bigarrays_core.errors import OutOfBoundsError, ReadOnlyError, WriteDataError
from bigarrays_core.format import Info
from bigarrays_core.geometry import Box, ChunkGrid, Vec3
from bigarrays_core.jobs import Progress, Stage, run_stages
from bigarrays_core.kvstore import KVStore
from bigarrays_core.resume import ProgressRecord, scale_fingerprint
from bigarrays_core.scale_writer import ScaleWriter, WriteReport, is_all_zero
from bigarrays_core.sources import Source
from bigarrays_core.task_grid import TaskGrid, rows_of

__all__ = ["IngestStage", "cast_values", "ingest", "ingest_group", "ingest_job", "ingest_stage", "ingest_task"]


def _ignore(n: int) -> None:
    pass


def cast_values(data: np.ndarray, dtype: np.dtype[Any], where: str) -> np.ndarray:
    """``data`` as ``dtype``; refuses values the destination cannot hold instead of wrapping them.

    Raises :class:`WriteDataError` naming ``where`` and the range of the values.
    """
    if data.dtype == dtype or np.can_cast(data.dtype, dtype, "safe"):
        return data.astype(dtype, copy=False)
    if data.size and dtype.kind in "iub":
        lo, hi = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
        if data.min() < lo or data.max() > hi or (data.dtype.kind == "f" and not np.all(np.mod(data, 1) == 0)):
            raise WriteDataError(f"{where}: {data.dtype.name} values do not fit {dtype.name} "
                                 f"(range {data.min()}..{data.max()})")
    with np.errstate(over="ignore"):
        out = data.astype(dtype)
    if dtype.kind == "f" and data.size and np.isinf(out).sum() != np.isinf(data).sum():
        raise WriteDataError(f"{where}: {data.dtype.name} values overflow {dtype.name} "
                             f"(range {data.min()}..{data.max()})")
    return out


def ingest_job(source: Source, ba: BigArray, offset: Sequence[int], *, write_empty: bool = False,
               mips: int = 0, pyramid: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The description that names an ingest's :class:`ProgressRecord` (None if the source has no identity).

    It names the group of write units a task is (:func:`ingest_group`): a record knows tasks by
    index, so one made under another cut is another job's (not read as this one's).

    ``mips`` (the scales built above it) and ``pyramid`` (the
    :attr:`~bigarrays_core.pyramid.PyramidPlan.job` of their stages, which names the method)
    describe the pyramid built after it, when one record covers both (as ``bigarrays ingest
    --mips`` does): a record whose pyramid was cut into other tasks is another job's.
    """
    if source.identity is None:
        return None
    scales = [scale_fingerprint(ba.at_mip(k)) for k in range(ba.mip, min(ba.num_mips, ba.mip + mips + 1))]
    target = Box.from_shape(tuple(int(o) for o in offset), source.shape[:3])
    job = {"kind": "ingest", "version": 2, "source": source.identity, "mip": ba.mip,
           "offset": [int(o) for o in offset], "scales": scales, "write_empty": write_empty, "mips": mips,
           "method": pyramid["method"] if pyramid is not None else None,
           "group": list(ingest_group(ba, target))}
    if pyramid is not None:
        job["pyramid"] = dict(pyramid)
    return job


@dataclass(frozen=True)
class IngestStage:
    """What every task of an ingest shares (sent with each Dask task, or to every worker once when big: see jobs)."""

    source: Source
    store: KVStore
    info: Info
    mip: int
    offset: Vec3
    write_empty: bool

    @property
    def target(self) -> Box:
        """Where the source's voxels go."""
        return Box.from_shape(self.offset, self.source.shape[:3])


def ingest_task(ctx: IngestStage, box: Box) -> WriteReport:
    """Write the source's voxels into the write units of ``box`` (a group of whole units);
    see the module docstring. Idempotent."""
    report = WriteReport()
    ba = BigArray(ctx.store, ctx.info, ctx.mip)
    source, off, target = ctx.source, ctx.offset, ctx.target
    back = [-o for o in off]
    refs = ba.chunks(box.intersect(target))
    covers = [ref.box.intersect(target) for ref in refs]
    stored = source.stored([c.translate(back) for c in covers])
    if not any(stored):
        report.empty += len(refs)
        return report
    writer = ScaleWriter(ba, report, merge=True)
    span = box.intersect(target)
    data = cast_values(source.read(span.translate(back)), ba.dtype, f"{source.name} -> {ba.url} mip {ba.mip} {span}")
    writes, remove, maybe_absent = [], [], []
    for ref, cover, has in zip(refs, covers, stored):
        if not has:
            report.empty += 1
        elif not ctx.write_empty and is_all_zero(data[cover.slices_in(span)]):
            maybe_absent.append((ref, cover))
        else:
            writes.append((ref, cover))
    for (ref, cover), exists in zip(maybe_absent, writer.exists([r for r, _ in maybe_absent])):
        if not exists:
            report.empty += 1
        elif cover == ref.box:
            remove.append(ref)
        else:  # zeros merged into a stored chunk that holds other voxels too
            writes.append((ref, cover))
    writes.sort(key=lambda w: (w[0].grid[2], w[0].grid[1], w[0].grid[0]))
    writer.commit(writes, data, span, remove)
    return report


def ingest_stage(source: Source, ba: BigArray, offset: Sequence[int] | None = None, *, write_empty: bool = False,
                 stored: Iterable[Box] | None = None) -> Stage[IngestStage, Box]:
    """The tasks of an ingest (see :func:`ingest`), to run with :func:`bigarrays_core.jobs.run_stages`
    (with other stages, e.g. a pyramid's, under one record).

    Tasks are groups of whole rows of chunks (:func:`bigarrays_core.task_grid.rows_of`).
    ``stored``: boxes (voxels of ``ba``'s scale) outside of which the source is known to hold
    nothing; only the tasks they meet are made (how a transfer of a huge sparse volume visits
    only its stored chunks). Raises :class:`OutOfBoundsError` naming both boxes when the
    source does not fit inside the scale.
    """
    off = tuple(int(o) for o in offset) if offset is not None else ba.voxel_offset
    target = Box.from_shape(off, source.shape[:3])
    if not ba.bounds.contains(target) or source.shape[3] != ba.num_channels:
        raise OutOfBoundsError(
            f"source {source.name} ({'x'.join(map(str, source.shape))}, x y z c) placed at {target} does not fit "
            f"{ba.url} mip {ba.mip} (bounds {ba.bounds}, {ba.num_channels} channel(s))")
    if ba.store.read_only:
        raise ReadOnlyError(f"cannot ingest into {ba.url}: the store is read-only")
    ctx = IngestStage(source, ba.store, ba.parsed_info, ba.mip, (off[0], off[1], off[2]), write_empty)
    grid = TaskGrid(unit_grid(ba), target, ingest_group(ba, target))
    tasks: Sequence[Box] = grid
    ids: Sequence[int] | None = None
    if stored is not None:
        ids = grid.touched(stored)
        tasks = [grid[i] for i in ids]
    return Stage(f"ingest mip {ba.mip}", ingest_task, ctx, tasks, _Weights(ba.grid, tasks, target), ids)


def ingest_group(ba: BigArray, target: Box) -> Vec3:
    """The write units of ``ba``'s scale that one task of an ingest into ``target`` covers, per
    axis (whole rows: :func:`bigarrays_core.task_grid.rows_of`)."""
    return rows_of(unit_grid(ba), target)


class _Weights(Sequence[int]):
    """The chunks of each task inside the target (computed when asked)."""

    def __init__(self, grid: ChunkGrid, tasks: Sequence[Box], target: Box) -> None:
        self.grid, self.tasks, self.target = grid, tasks, target

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        rx, ry, rz = self.grid.grid_range(self.tasks[i].intersect(self.target))
        return len(rx) * len(ry) * len(rz)


def ingest(source: Source, ba: BigArray, *, offset: Sequence[int] | None = None, write_empty: bool = False,
           overwrite: bool = False, record: ProgressRecord | None = None, resume: bool = True,
           client: Any = None, progress: Progress = _ignore, report: WriteReport | None = None) -> WriteReport:
    """Write ``source`` into scale ``ba.mip`` with its first voxel at ``offset`` (default ``ba.voxel_offset``).

    See the module docstring for what is written, merged, skipped and recorded.
    ``record`` is where progress goes; by default (``resume``) one named by
    :func:`ingest_job` when the source has an identity. ``client``: None (this machine's
    threads), a ``distributed.Client`` or a scheduler address (:mod:`bigarrays_core.jobs`;
    the workers must be able to open the source). ``progress(n)`` is called as chunks finish
    (first with the number an earlier run finished). Returns the counts, added to
    ``report`` if given.

    Raises :class:`OutOfBoundsError` naming both boxes when the source does not fit inside
    the scale (nothing is written), :class:`WriteDataError` when its values do not fit the
    dtype, and what the source or the store raise.
    """
    stage = ingest_stage(source, ba, offset, write_empty=write_empty)
    if record is None and resume:
        job = ingest_job(source, ba, stage.context.offset, write_empty=write_empty)
        record = ProgressRecord(ba.store, job) if job is not None else None
    if record is not None and overwrite:
        record.reset()
    return run_stages([stage], client=client, record=record, progress=progress, report=report)
