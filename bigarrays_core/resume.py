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
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
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
        self._job_json = json.dumps(self.job, sort_keys=True)
        self._tasks: dict[str, _Runs] = {}
        raw = store.get(self.key)
        if raw is not None:
            try:
                saved = json.loads(bytes(raw))
                if saved.get("job") == self.job:
                    for step, runs in saved.get("tasks", {}).items():
                        done = self._tasks.setdefault(str(step), _Runs())
                        for a, b in runs:
                            if int(a) < int(b):
                                done.add(int(a), int(b))
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
            runs = self._tasks.get(step)
            return {i for a, b in runs for i in range(a, b)} if runs is not None else set()

    def add_tasks(self, step: str, indices: Iterable[int], *, save: bool = True) -> None:
        """Record tasks of ``step`` as done; with ``save`` (else at the next :meth:`save`)."""
        with self._lock:
            done = self._tasks.setdefault(step, _Runs())
            for i in indices:
                done.add(int(i), int(i) + 1)
        if save:
            self.save()

    def save(self) -> None:
        """Store the record (one atomic write). Costs the number of runs, not of tasks."""
        with self._lock:
            steps = {step: [[a, b] for a, b in runs] for step, runs in self._tasks.items()}
        # What json.dumps({"job": ..., "tasks": ...}, sort_keys=True) writes, the job encoded once.
        body = f'{{"job": {self._job_json}, "tasks": {json.dumps(steps, sort_keys=True)}}}'.encode()
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
        done = {step: sum(b - a for a, b in runs) for step, runs in self._tasks.items()}
        return f"ProgressRecord({self.store.describe(self.key)!r}, done={done})"


class _Runs:
    """The done tasks of a stage as sorted ``[first, end)`` runs, apart from each other
    (never overlapping nor touching). Adding tasks is a binary search and a splice, so a
    job of many tasks recording each one costs the runs, not a sort of every task per save."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, first: int, end: int) -> None:
        """Add tasks ``first`` to ``end - 1`` (``first < end``), merged with the runs they touch."""
        lo = bisect_left(self.ends, first)  # the first run ending at or after first
        hi = bisect_right(self.starts, end)  # past the last run starting at or before end
        if lo < hi:
            first, end = min(first, self.starts[lo]), max(end, self.ends[hi - 1])
        self.starts[lo:hi] = [first]
        self.ends[lo:hi] = [end]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.starts, self.ends)

    def __bool__(self) -> bool:
        return bool(self.starts)
