"""Storing the chunks a long job decided on, for one scale, and counting what happened.

A job (an ingest, a pyramid build) looks at a group of chunks and decides for each one:
store it (all of it, or only the part its source covers, merged into what is stored), make
sure it is absent, or leave it alone. :class:`ScaleWriter` carries those decisions out
(:func:`~bigarrays_core.array.write.write_pieces`: chunks encoded in parallel, partly covered
ones merged by conditional writes, the chunks of a shard stored with one rewrite of it), and
it counts the outcome in a :class:`WriteReport`. On local disk it first removes the temporary files that writers
killed long ago left in the scale's directory (once per directory and process:
:meth:`LocalStore.sweep_stale_temporaries_once`).

Every chunk is compared with the fill value (zero) through :func:`is_all_zero`, bit for bit:
``-0.0`` is not zero, so a float chunk of negative zeros is stored like any other data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bigarrays_core.array import BigArray, ChunkRef
from bigarrays_core.array.write import write_pieces
from bigarrays_core.geometry import Box

__all__ = ["ScaleWriter", "WriteReport", "is_all_zero"]


@dataclass
class WriteReport:
    """What a job did to chunks, over every scale it wrote.

    ``written`` chunks were stored, ``merged`` of them covered only in part, by a
    read-modify-write of that part (the rest of the chunk is kept); ``empty`` were not
    stored because their data was all zeros or the source holds nothing there; ``removed``
    existed and were deleted because they would be all zeros now; ``done_before`` were
    finished by an earlier run of the same job.
    """

    written: int = 0
    merged: int = 0
    empty: int = 0
    removed: int = 0
    done_before: int = 0

    def add(self, other: WriteReport) -> None:
        """Add the counts of ``other`` to these."""
        self.written += other.written
        self.merged += other.merged
        self.empty += other.empty
        self.removed += other.removed
        self.done_before += other.done_before

    def __str__(self) -> str:
        text = (f"{self.written} chunk(s) written ({self.merged} partly covered, merged), "
                f"{self.empty} empty or missing (not stored), {self.done_before} done by an earlier run")
        return text + (f", {self.removed} removed (now all zeros)" if self.removed else "")


def is_all_zero(data: np.ndarray) -> bool:
    """True when every voxel is bit for bit zero (the fill value a missing chunk reads as)."""
    if data.dtype.kind == "f":
        data = data.view(f"u{data.dtype.itemsize}")  # -0.0 is not a zero chunk
    # A nonzero corner answers at once (most image chunks) without a pass over the chunk.
    if data.size and (data[(0,) * data.ndim] or data[(-1,) * data.ndim]):
        return False
    return not data.any()


class ScaleWriter:
    """Stores decided chunks into the scale of ``ba``; counts into ``report``.

    With ``merge`` a chunk stored from a box that covers only part of it is read, patched
    and rewritten (the voxels outside the box are kept); without it every box given must
    cover whole chunks.
    """

    def __init__(self, ba: BigArray, report: WriteReport, *, merge: bool) -> None:
        self.ba = BigArray(ba.store, ba.parsed_info, ba.mip)
        self.merge = merge
        self.report = report
        self.ba.scale_io.store.prepare_writes(ba.key)

    def exists(self, refs: Sequence[ChunkRef]) -> list[bool]:
        return self.ba.scale_io.store.exists_many([r.key for r in refs]) if refs else []

    def commit(self, writes: Sequence[tuple[ChunkRef, Box]], data: np.ndarray, data_box: Box,
               remove: Sequence[ChunkRef] = ()) -> None:
        """Store each ``(chunk, box)`` of ``writes`` from ``data`` (the voxels of ``data_box``),
        and delete the chunks of ``remove``.

        ``box`` is the part of the chunk to store (the whole chunk, or with ``merge`` a part
        of it, merged into what is stored). The chunks of a shard are stored with one
        rewrite of the shard (:func:`bigarrays_core.array.write.write_pieces`).
        """
        for ref, box in writes:
            if box != ref.box and not self.merge:
                raise ValueError(f"{ref.key}: {box} is part of the chunk {ref.box}; this writer stores whole chunks")
            self.report.written += 1
            self.report.merged += box != ref.box
        if writes:
            write_pieces(self.ba.scale_io, writes, data, data_box)
        if remove:
            self.ba.scale_io.store.delete_many([r.key for r in remove])
            self.report.removed += len(remove)
