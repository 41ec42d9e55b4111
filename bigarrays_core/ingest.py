"""Ingest: write a :class:`~bigarrays_core.sources.Source` into one scale of a dataset.

The source's voxels are placed at ``offset`` and written chunk by chunk, in the job order
of :func:`bigarrays_core.resume.chunk_groups` (memory stays bounded by a group of rows):

- A chunk the source covers wholly is replaced. A chunk it covers in part is **merged**:
  read, patched where the source has voxels, rewritten (the other voxels are kept), so tiles
  that meet inside a chunk all survive, whatever order they are ingested in.
- **Sparse stays sparse.** A chunk where the source stores nothing (every chunk of a
  precomputed source under it is missing) is left alone. A chunk whose voxels would all be
  zero (the fill value) is not stored, unless ``write_empty``; if one is stored already and
  the source covers it wholly, it is deleted (it reads as zeros, as the source says).
- **Resumable.** With a :class:`~bigarrays_core.resume.ProgressRecord` (made from the
  source's identity by default) finished chunks are recorded as the job goes; running the
  same ingest again starts after them, and running a finished one writes nothing.
  ``overwrite`` forgets the record and writes everything again.

Writes into chunks shared with another ingest running at the same time in another process
can lose voxels (the read-modify-write lock is per process): ingest tiles that share
chunks one after another, or from one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bigarrays_core.array import BigArray
from bigarrays_core.errors import OutOfBoundsError, WriteDataError
from bigarrays_core.geometry import Box
from bigarrays_core.resume import ProgressRecord, chunk_count, chunk_groups, scale_fingerprint
from bigarrays_core.scale_writer import ScaleWriter, WriteReport, is_all_zero
from bigarrays_core.sources import Source

__all__ = ["Progress", "cast_values", "ingest", "ingest_job"]

#: Called with the number of chunks just finished (skipped ones included).
Progress = Callable[[int], None]


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
               mips: int = 0, method: str | None = None) -> dict[str, Any] | None:
    """The description that names an ingest's :class:`ProgressRecord` (None if the source has no identity).

    ``mips`` and ``method`` describe the pyramid built after it, when one record covers both
    (as ``bigarrays ingest --mips`` does).
    """
    if source.identity is None:
        return None
    scales = [scale_fingerprint(ba.at_mip(k)) for k in range(ba.mip, min(ba.num_mips, ba.mip + mips + 1))]
    return {"kind": "ingest", "source": source.identity, "mip": ba.mip, "offset": [int(o) for o in offset],
            "scales": scales, "write_empty": write_empty, "mips": mips, "method": method}


def ingest(source: Source, ba: BigArray, *, offset: Sequence[int] | None = None, write_empty: bool = False,
           overwrite: bool = False, record: ProgressRecord | None = None, resume: bool = True,
           progress: Progress = _ignore, report: WriteReport | None = None) -> WriteReport:
    """Write ``source`` into scale ``ba.mip`` with its first voxel at ``offset`` (default ``ba.voxel_offset``).

    See the module docstring for what is written, merged, skipped and recorded.
    ``record`` is where progress goes; by default (``resume``) one named by
    :func:`ingest_job` when the source has an identity. ``progress(n)`` is called as chunks
    finish (first with the number an earlier run finished). Returns the counts, added to
    ``report`` if given.

    Raises :class:`OutOfBoundsError` naming both boxes when the source does not fit inside
    the scale (nothing is written), :class:`WriteDataError` when its values do not fit the
    dtype, and what the source or the store raise.
    """
    report = report if report is not None else WriteReport()
    off = tuple(int(o) for o in offset) if offset is not None else ba.voxel_offset
    target = Box.from_shape(off, source.shape[:3])
    if not ba.bounds.contains(target) or source.shape[3] != ba.num_channels:
        raise OutOfBoundsError(
            f"source {source.name} ({'x'.join(map(str, source.shape))}, x y z c) placed at {target} does not fit "
            f"{ba.url} mip {ba.mip} (bounds {ba.bounds}, {ba.num_channels} channel(s))")
    if record is None and resume:
        job = ingest_job(source, ba, off, write_empty=write_empty)
        record = ProgressRecord(ba.store, job) if job is not None else None
    if record is not None and overwrite:
        record.reset()
    step = f"ingest mip {ba.mip}"
    start = min(record.done(step), chunk_count(ba, target)) if record is not None else 0
    report.done_before += start
    progress(start)
    writer = ScaleWriter(ba, report, merge=True)
    for group in chunk_groups(ba, target, start=start):
        covers = [ref.box.intersect(target) for ref in group.refs]
        stored = source.stored([c.translate([-o for o in off]) for c in covers])
        if any(stored):
            span = group.box.intersect(target)
            data = cast_values(source.read(span.translate([-o for o in off])), ba.dtype,
                               f"{source.name} -> {ba.url} mip {ba.mip} {span}")
            writes, remove, maybe_absent = [], [], []
            for ref, cover, has in zip(group.refs, covers, stored):
                if not has:
                    report.empty += 1
                elif not write_empty and is_all_zero(data[cover.slices_in(span)]):
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
        else:
            report.empty += len(group.refs)
        if record is not None:
            record.advance(step, group.end)
        progress(len(group.refs))
    return report
