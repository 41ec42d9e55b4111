"""Resumable jobs: the record of which of a job's tasks are done.

A long job (an ingest, a transfer, a pyramid build) is a fixed list of tasks per stage
(:mod:`bigarrays_core.jobs`), each writing its own chunks or shards. As tasks finish, the
process that runs the job records them in a small JSON object in the destination dataset
(``.bigarrays/progress/<job id>.json``; one atomic write, at most about once a second), so
a job killed at any moment, even by SIGKILL, is resumed by running it again: it skips the
recorded tasks, and at worst redoes the few that finished since the last save. Redoing is
harmless: a task writes the same voxels again.

The job id is a hash of a JSON description of the job (its source's identity, where it
goes, the destination scales' geometry, its options): a record is found again only by the
same job, and any change (another source file, another offset) makes a new, empty one.
Whether a record stays after its job finishes is the job's choice: an ingest's stays (its
source has an identity that changes with its content, so running a finished ingest again
writes nothing), a pyramid build's is removed (its source is the dataset itself, which
may have changed since).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from bigarrays_core.array import BigArray
from bigarrays_core.kvstore import KVStore, WriteOptions

__all__ = ["PROGRESS_PREFIX", "ProgressRecord", "scale_fingerprint"]

#: Where progress records live inside a dataset.
PROGRESS_PREFIX = ".bigarrays/progress/"


def scale_fingerprint(ba: BigArray) -> dict[str, Any]:
    """What a job depends on about one scale: its key, grid and encoding."""
    s = ba.scale
    return {"mip": s.index, "key": s.key, "size": list(s.size), "voxel_offset": list(s.voxel_offset),
            "chunk_size": list(s.chunk_size), "encoding": s.encoding, "compression": s.compression,
            "dtype": ba.dtype.name, "num_channels": ba.num_channels}


class ProgressRecord:
    """Which tasks of each stage of one job are done, kept in ``store`` at :attr:`key`.

    ``job`` is a JSON-able description of the job (see the module docstring). Stages are
    named by the job (e.g. ``"ingest mip 0"``, ``"mip 1-3"``); a task is known by its index
    in the stage's fixed task order. Finished tasks are stored as sorted runs
    ``[[first, end], ...]``. A record that cannot be parsed counts as absent (the job is
    then redone, which never loses voxels).
    """

    def __init__(self, store: KVStore, job: Mapping[str, Any]) -> None:
        self.store = store
        self.job = json.loads(json.dumps(dict(job), sort_keys=True))
        digest = hashlib.sha256(json.dumps(self.job, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        self.key = f"{PROGRESS_PREFIX}{digest[:32]}.json"
        self._lock = threading.Lock()
        self._tasks: dict[str, set[int]] = {}
        raw = store.get(self.key)
        if raw is not None:
            try:
                saved = json.loads(bytes(raw))
                if saved.get("job") == self.job:
                    self._tasks = {str(step): {i for a, b in runs for i in range(int(a), int(b))}
                                   for step, runs in saved.get("tasks", {}).items()}
            except (ValueError, TypeError, AttributeError):
                self._tasks = {}

    @property
    def exists(self) -> bool:
        """Whether some task of the job is recorded as done."""
        with self._lock:
            return any(self._tasks.values())

    def done_tasks(self, step: str) -> set[int]:
        """The indices of the tasks of ``step`` finished by earlier runs (and this one)."""
        with self._lock:
            return set(self._tasks.get(step, ()))

    def add_tasks(self, step: str, indices: Iterable[int], *, save: bool = True) -> None:
        """Record tasks of ``step`` as done; with ``save`` (else at the next :meth:`save`)."""
        with self._lock:
            self._tasks.setdefault(step, set()).update(int(i) for i in indices)
        if save:
            self.save()

    def save(self) -> None:
        """Store the record (one atomic write)."""
        with self._lock:
            steps = {step: _runs(done) for step, done in self._tasks.items()}
        body = json.dumps({"job": self.job, "tasks": steps}, sort_keys=True).encode()
        self.store.set(self.key, body, WriteOptions(content_type="application/json", cache_control="no-cache"))

    def reset(self) -> None:
        """Forget every task: the job starts again from the beginning."""
        with self._lock:
            self._tasks = {}
        self.save()

    def delete(self) -> None:
        """Remove the record from the store (and forget it here)."""
        with self._lock:
            self._tasks = {}
        self.store.delete(self.key)

    def __repr__(self) -> str:
        done = {step: len(t) for step, t in self._tasks.items()}
        return f"ProgressRecord({self.store.describe(self.key)!r}, done={done})"


def _runs(indices: set[int]) -> list[list[int]]:
    """Sorted ``[first, end]`` runs of consecutive indices."""
    out: list[list[int]] = []
    for i in sorted(indices):
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return out
