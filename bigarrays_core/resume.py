"""Resumable chunk jobs: the fixed order they visit chunks in, and the record of how far they got.

A long job (an ingest, a pyramid build) visits the chunks of a box of one scale in a fixed
order, z-slab by z-slab, then row by row (y), x fastest: :func:`chunk_groups` cuts that
order into groups of whole rows. After each group is stored the job calls
:meth:`ProgressRecord.advance`, which replaces a small JSON object in the destination
dataset (``.bigarrays/progress/<job id>.json``; one atomic write), so a job killed at any
moment, even by SIGKILL, is resumed by running it again: it starts after the last group
it recorded, and at worst redoes the one group it was writing. Redoing is harmless: a job
writes the same voxels again.

The job id is a hash of a JSON description of the job (its source's identity, where it
goes, the destination scales' geometry, its options): a record is found again only by the
same job, and any change (another source file, another offset) makes a new, empty one.
Records stay after a job finishes, so running a finished job again writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bigarrays_core.array import BigArray, ChunkRef
from bigarrays_core.geometry import Box
from bigarrays_core.kvstore import KVStore, WriteOptions

__all__ = ["PROGRESS_PREFIX", "ChunkGroup", "ProgressRecord", "chunk_count", "chunk_groups", "scale_fingerprint"]

#: Where progress records live inside a dataset.
PROGRESS_PREFIX = ".bigarrays/progress/"


def scale_fingerprint(ba: BigArray) -> dict[str, Any]:
    """What a job depends on about one scale: its key, grid and encoding."""
    s = ba.scale
    return {"mip": s.index, "key": s.key, "size": list(s.size), "voxel_offset": list(s.voxel_offset),
            "chunk_size": list(s.chunk_size), "encoding": s.encoding, "compression": s.compression,
            "dtype": ba.dtype.name, "num_channels": ba.num_channels}


class ProgressRecord:
    """How many chunks of each step of one job are done, kept in ``store`` at :attr:`key`.

    ``job`` is a JSON-able description of the job (see the module docstring). Steps are
    named by the job (e.g. ``"ingest mip 0"``); :meth:`done` counts chunks in the order of
    :func:`chunk_groups`. A record that cannot be parsed counts as absent (the job is
    then redone, which never loses voxels).
    """

    def __init__(self, store: KVStore, job: Mapping[str, Any]) -> None:
        self.store = store
        self.job = json.loads(json.dumps(dict(job), sort_keys=True))
        digest = hashlib.sha256(json.dumps(self.job, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        self.key = f"{PROGRESS_PREFIX}{digest[:32]}.json"
        self._lock = threading.Lock()
        self._steps: dict[str, int] = {}
        raw = store.get(self.key)
        if raw is not None:
            try:
                saved = json.loads(bytes(raw))
                if saved.get("job") == self.job:
                    self._steps = {str(k): int(v) for k, v in saved.get("steps", {}).items()}
            except (ValueError, TypeError, AttributeError):
                self._steps = {}

    def done(self, step: str) -> int:
        """Chunks of ``step`` finished by earlier runs (and this one)."""
        with self._lock:
            return self._steps.get(step, 0)

    def advance(self, step: str, done: int) -> None:
        """Record that the first ``done`` chunks of ``step`` are stored (one atomic write)."""
        with self._lock:
            self._steps[step] = done
            self._save()

    def reset(self) -> None:
        """Forget every step: the job starts again from its first chunk."""
        with self._lock:
            self._steps = {}
            self._save()

    def _save(self) -> None:
        body = json.dumps({"job": self.job, "steps": self._steps}, indent=1, sort_keys=True).encode()
        self.store.set(self.key, body, WriteOptions(content_type="application/json", cache_control="no-cache"))

    def __repr__(self) -> str:
        return f"ProgressRecord({self.store.describe(self.key)!r}, steps={self._steps})"


@dataclass(frozen=True)
class ChunkGroup:
    """Consecutive chunks of a job: ``refs`` are chunks ``first`` to ``end - 1`` in job order."""

    first: int
    end: int
    refs: list[ChunkRef]

    @property
    def box(self) -> Box:
        """The smallest box holding every chunk of the group."""
        starts, stops = zip(*((r.box.start, r.box.stop) for r in self.refs))
        return Box(tuple(map(min, zip(*starts))), tuple(map(max, zip(*stops))))


def chunk_count(ba: BigArray, box: Box) -> int:
    """How many chunks of ``ba`` the box touches (inside the volume)."""
    rx, ry, rz = ba.grid.grid_range(box)
    return len(rx) * len(ry) * len(rz)


def chunk_groups(ba: BigArray, box: Box, *, start: int = 0, min_chunks: int = 16) -> Iterator[ChunkGroup]:
    """The chunks of ``box`` in job order, in groups of whole rows of at least ``min_chunks``
    chunks (fewer only where a z-slab ends), skipping the first ``start`` chunks.

    Job order is z-slab by z-slab, row (y) by row, x fastest: the order of
    :meth:`BigArray.chunks` over the whole box.
    """
    rx, ry, rz = ba.grid.grid_range(box)
    nx, ny = len(rx), len(ry)
    if nx == 0 or ny == 0:
        return
    rows = max(1, min(ny, -(-min_chunks // nx)))
    (ox, oy, oz), (cx, cy, cz) = ba.voxel_offset, ba.chunk_size
    for iz, gz in enumerate(rz):
        for iy in range(0, ny, rows):
            iy_end = min(ny, iy + rows)
            first, end = (iz * ny + iy) * nx, (iz * ny + iy_end) * nx
            if end <= start:
                continue
            rows_box = Box((ox + rx[0] * cx, oy + ry[iy] * cy, oz + gz * cz),
                           (ox + (rx[-1] + 1) * cx, oy + (ry[iy_end - 1] + 1) * cy, oz + (gz + 1) * cz))
            refs = ba.chunks(rows_box.intersect(box))
            skip = max(0, start - first)
            yield ChunkGroup(first + skip, end, refs[skip:])
