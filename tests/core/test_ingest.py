"""Ingest (``bigarrays_core.ingest``): tiles merge, sparse stays sparse, interrupted runs resume.

Writes are counted by a :class:`LocalStore` that records every chunk key it stores, so
"writes only what is left" is checked exactly, not by timing.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core import task_grid
from bigarrays_core.geometry import Box
from bigarrays_core.ingest import ingest, ingest_job, ingest_stage
from bigarrays_core.kvstore import LocalStore, WriteOptions
from bigarrays_core.resume import PROGRESS_PREFIX, ProgressRecord
from bigarrays_core.sources import ArraySource, PrecomputedSource, open_source
from tests.progress import StopAfter

from .datasets import make


class CountingStore(LocalStore):
    """A local store that remembers the chunk keys it wrote (progress records aside)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.written: list[str] = []

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        self.written += [k for k in items if not k.startswith(PROGRESS_PREFIX)]
        super().set_many(items, options)


def _npy(tmp_path: Path, name: str, data: np.ndarray) -> str:
    path = str(tmp_path / name)
    np.save(path, data)
    return path


def test_tiles_meeting_inside_chunks_keep_every_voxel(dataset_url: str, rng: np.random.Generator) -> None:
    """Four tiles whose edges all fall inside chunks, ingested in an awkward order."""
    ba = make(dataset_url, dtype="uint16", size=(50, 44, 10), chunk_size=(16, 16, 4), voxel_offset=(-3, 2, 1))
    whole = rng.integers(1, 60000, size=(50, 44, 10), dtype=np.uint16)
    cuts_x, cuts_y = (0, 21, 50), (0, 13, 44)
    for ix, iy in ((1, 1), (0, 0), (1, 0), (0, 1)):
        tile = whole[cuts_x[ix]:cuts_x[ix + 1], cuts_y[iy]:cuts_y[iy + 1]]
        report = ingest(ArraySource(tile), ba, offset=(-3 + cuts_x[ix], 2 + cuts_y[iy], 1))
        assert report.merged > 0
    np.testing.assert_array_equal(ba[:, :, :, 0], whole)


def test_an_interrupted_ingest_resumes_and_writes_only_what_is_left(tmp_path: Path,
                                                                    rng: np.random.Generator) -> None:
    vol = rng.integers(1, 255, size=(64, 48, 24), dtype=np.uint8)
    src = _npy(tmp_path, "v.npy", vol)
    store = CountingStore(str(tmp_path / "out"))
    ba = make(store, size=(64, 48, 24), chunk_size=(16, 16, 8))  # 4 x 3 x 3 = 36 chunks, a z-slab a group
    store.written.clear()
    stop = StopAfter(20)
    with pytest.raises(KeyboardInterrupt):
        ingest(open_source(src), ba, progress=stop)
    first = list(store.written)
    # Tasks are whole z-slabs; two were recorded. The third may have been running beside them
    # (tasks run in parallel): it finished writing, unrecorded, and is redone below.
    assert stop.calls[0] == 0 and sum(stop.calls) == 24 and len(first) in (24, 36)
    store.written.clear()
    stage = ingest_stage(open_source(src), ba)  # three tasks, one z-slab each
    done = ProgressRecord(store, ingest_job(open_source(src), ba, ba.voxel_offset)).done_tasks(stage.step)
    left = [r.key for i, task in enumerate(stage.tasks) if i not in done for r in ba.chunks(task)]
    report = ingest(open_source(src), bc.open(store))
    assert len(done) == 2 and report.done_before == 24 and report.written == 12
    assert sorted(store.written) == sorted(left)  # only what was left
    np.testing.assert_array_equal(ba[:, :, :, 0], vol)
    store.written.clear()
    report = ingest(open_source(src), bc.open(store))  # finished: nothing to write
    assert store.written == [] and (report.done_before, report.written) == (36, 0)
    report = ingest(open_source(src), bc.open(store), overwrite=True)  # asked to: everything again
    assert sorted(store.written) == sorted(r.key for r in ba.chunks()) and report.written == 36


def test_a_record_of_another_task_cut_is_not_read_as_this_one(tmp_path: Path, rng: np.random.Generator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A record knows tasks by index: an ingest interrupted under one cut of its tasks (an
    earlier version's) and run again under another starts from nothing and writes every chunk
    (read across cuts, task ``i`` of the record would be another box, and chunks never
    written would be skipped)."""
    vol = rng.integers(1, 255, size=(64, 48, 24), dtype=np.uint8)
    src = _npy(tmp_path, "v.npy", vol)
    ba = make(str(tmp_path / "out"), size=(64, 48, 24), chunk_size=(16, 16, 8))
    monkeypatch.setattr(task_grid, "ROWS_MIN_UNITS", 1)
    monkeypatch.setattr(task_grid, "ROWS_MAX_ROW", 1)  # a task per chunk: 36
    with pytest.raises(KeyboardInterrupt):
        ingest(open_source(src), ba, progress=StopAfter(10))
    monkeypatch.undo()  # a z-slab of 12 chunks per task: 3
    report = ingest(open_source(src), bc.open(str(tmp_path / "out")))
    assert report.done_before == 0 and report.written == 36
    np.testing.assert_array_equal(ba[:, :, :, 0], vol)


def test_a_changed_source_file_is_a_new_job(tmp_path: Path, rng: np.random.Generator) -> None:
    vol = rng.integers(1, 255, size=(32, 32, 8), dtype=np.uint8)
    src = _npy(tmp_path, "v.npy", vol)
    ba = make(str(tmp_path / "out"), size=(32, 32, 8), chunk_size=(16, 16, 8))
    ingest(open_source(src), ba)
    vol[3, 4, 5] = 0
    np.save(src, vol)
    os.utime(src, ns=(1, 1))  # another mtime, whatever the clock's resolution
    report = ingest(open_source(src), ba)
    assert report.done_before == 0 and report.written == 4
    assert ba[3, 4, 5, 0] == 0


def test_an_array_without_identity_keeps_no_record(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "out"), size=(32, 32, 8), chunk_size=(16, 16, 8))
    assert ingest(ArraySource(np.ones((32, 32, 8), np.uint8)), ba).written == 4
    assert list(ba.store.list(PROGRESS_PREFIX)) == []
    assert ingest(ArraySource(np.ones((32, 32, 8), np.uint8)), ba).written == 4  # redone, not skipped
    named = ArraySource(np.ones((32, 32, 8), np.uint8), identity={"name": "ones"})
    assert ingest(named, ba).written == 4 and ingest(named, ba).done_before == 4
    assert len(list(ba.store.list(PROGRESS_PREFIX))) == 1


def test_zero_chunks_are_not_stored_and_a_zeroed_chunk_is_removed(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "out"), dtype="float32", size=(32, 16, 8), chunk_size=(16, 16, 8))
    vol = np.zeros((32, 16, 8), np.float32)
    vol[0, 0, 0] = -0.0  # not the fill value bit for bit: must be stored
    report = ingest(ArraySource(vol), ba)
    assert (report.written, report.empty) == (1, 1)
    assert set(ba.store.list(ba.key + "/")) == {f"{ba.key}/0-16_0-16_0-8"}
    assert np.signbit(ba[0, 0, 0, 0])
    ba[16:32, 0:16, 0:8] = 5.0
    report = ingest(ArraySource(np.zeros((32, 16, 8), np.float32)), ba)  # zeros over stored data
    assert report.removed == 2 and list(ba.store.list(ba.key + "/")) == []
    assert not ba[:, :, :].any()
    assert ingest(ArraySource(np.zeros((32, 16, 8), np.float32)), ba, write_empty=True).written == 2


def test_zeros_merged_into_part_of_a_stored_chunk(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "out"), size=(32, 16, 8), chunk_size=(16, 16, 8))
    ba[0:16, 0:16, 0:8] = 9
    report = ingest(ArraySource(np.zeros((10, 16, 8), np.uint8)), ba, offset=(10, 0, 0))
    assert (report.written, report.merged, report.empty) == (1, 1, 1)  # the second chunk stays absent
    expected = np.full((16, 16, 8), 9, np.uint8)
    expected[10:16] = 0
    np.testing.assert_array_equal(ba[0:16, :, :, 0], expected)
    assert set(ba.store.list(ba.key + "/")) == {f"{ba.key}/0-16_0-16_0-8"}


def test_a_sparse_precomputed_source_copies_only_its_chunks(tmp_path: Path, rng: np.random.Generator) -> None:
    src = make(str(tmp_path / "src"), dtype="uint32", size=(48, 48, 16), chunk_size=(16, 16, 16),
               encoding="compressed_segmentation", voxel_offset=(-16, 0, 0))
    src[-16:0, 16:32, 0:16] = rng.integers(1, 9, size=(16, 16, 16), dtype=np.uint32)
    dst = make(str(tmp_path / "dst"), dtype="uint32", size=(96, 48, 16), chunk_size=(32, 16, 8),
               voxel_offset=(0, 0, 0))
    source = PrecomputedSource(src.url)
    assert source.stored([Box((0, 16, 0), (16, 32, 16)), Box((16, 0, 0), (48, 48, 16))]) == [True, False]
    report = ingest(source, dst, offset=(40, 0, 0))  # source chunk x [-16:0] lands in [40:56]
    assert set(dst.store.list(dst.key + "/")) == {f"{dst.key}/32-64_16-32_0-8", f"{dst.key}/32-64_16-32_8-16"}
    assert report.written == 2 and report.merged == 2
    np.testing.assert_array_equal(dst[40:88, :, :], src[:, :, :])


def test_bad_placements_and_values_are_refused_before_writing(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "out"), size=(32, 32, 8), chunk_size=(16, 16, 8))
    with pytest.raises(bc.OutOfBoundsError, match=r"\[20:52,0:32,0:8\].*\[0:32,0:32,0:8\]"):
        ingest(ArraySource(np.ones((32, 32, 8), np.uint8)), ba, offset=(20, 0, 0))
    with pytest.raises(bc.WriteDataError, match="300"):
        ingest(ArraySource(np.full((16, 16, 8), 300, np.uint16)), ba)
    flags = make(str(tmp_path / "flags"), dtype="bool", size=(16, 16, 8), chunk_size=(16, 16, 8))
    with pytest.raises(bc.WriteDataError, match="bool.*0..2"):
        ingest(ArraySource(np.arange(16 * 16 * 8, dtype=np.uint8).reshape(16, 16, 8) % 3), flags)
    floats = make(str(tmp_path / "floats"), dtype="float32", size=(16, 16, 8), chunk_size=(16, 16, 8))
    with pytest.raises(bc.WriteDataError, match="overflow float32"):
        ingest(ArraySource(np.full((16, 16, 8), 1e300)), floats)
    assert ingest(ArraySource(np.full((16, 16, 8), 0.1)), floats).written == 1  # rounding is not an error
    assert list(ba.store.list(ba.key + "/")) == [] and list(flags.store.list(flags.key + "/")) == []


def test_a_progress_record_keeps_runs_of_tasks_finished_in_any_order(tmp_path: Path) -> None:
    """Tasks finish in any order, one by one or in groups, some twice; the record holds the
    sorted runs of every one of them (kept as tasks are added, not sorted at each save),
    written as ``json.dumps({"job": ..., "tasks": ...}, sort_keys=True)`` writes them, and
    read back the same. A save's length follows the runs, not the tasks."""
    rng = random.Random(11)
    store = LocalStore(str(tmp_path / "out"))
    job = {"kind": "test", "n": 3, "nested": {"b": [1, 2], "a": None}}
    record = ProgressRecord(store, job)
    done: set[int] = set()
    order = list(range(3000))
    rng.shuffle(order)
    for k in range(0, len(order), 7):
        group = order[k:k + rng.randint(1, 9)]
        record.add_tasks("s", group, save=rng.random() < 0.05)
        done.update(group)
        if len(done) >= 3 and rng.random() < 0.1:
            record.add_tasks("s", rng.sample(sorted(done), 3), save=False)  # again: no change
    record.add_tasks("t", [7], save=False)
    record.save()
    runs: list[list[int]] = []
    for i in sorted(done):
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    raw = (tmp_path / "out" / record.key).read_bytes()
    assert raw == json.dumps({"job": job, "tasks": {"s": runs, "t": [[7, 8]]}}, sort_keys=True).encode()
    again = ProgressRecord(store, job)
    assert again.done_tasks("s") == done and again.done_tasks("t") == {7}
    record.add_tasks("s", set(range(3000)) - done)  # all of them: one run
    assert json.loads((tmp_path / "out" / record.key).read_text())["tasks"]["s"] == [[0, 3000]]


def test_a_progress_record_is_one_json_object_in_the_destination(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "out"), size=(32, 32, 8), chunk_size=(16, 16, 8))
    record = ProgressRecord(ba.store, {"kind": "test", "n": 1})
    assert record.key.startswith(PROGRESS_PREFIX) and record.done_tasks("x") == set() and not record.exists
    record.add_tasks("x", [0, 1, 2, 5, 9, 8])
    saved = json.loads((tmp_path / "out" / record.key).read_text())
    assert saved["tasks"] == {"x": [[0, 3], [5, 6], [8, 10]]}  # runs of finished task indices
    again = ProgressRecord(ba.store, {"n": 1, "kind": "test"})  # same job, any key order
    assert again.done_tasks("x") == {0, 1, 2, 5, 8, 9} and again.done_tasks("y") == set()
    assert ProgressRecord(ba.store, {"kind": "test", "n": 2}).done_tasks("x") == set()
    (tmp_path / "out" / record.key).write_text("{not json")  # never trusted when it cannot be read
    assert ProgressRecord(ba.store, {"kind": "test", "n": 1}).done_tasks("x") == set()
    record.delete()
    assert not (tmp_path / "out" / record.key).exists()
