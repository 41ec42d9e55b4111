"""Dask arrays (``BigArray.to_dask``, ``bc.from_dask``) and pickling, on Dask's local threads.

The cluster (worker processes) versions are in ``test_cluster.py``.
"""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.array.executor import in_parallel_task
from bigarrays_core.kvstore import LocalStore, MemoryStore
from tests.core.datasets import make, random_values


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_to_dask_starts_at_the_voxel_offset_even_a_negative_one(tmp_path: Path, rng: np.random.Generator) -> None:
    ba = make(str(tmp_path / "ds"), dtype="uint16", size=(70, 50, 20), voxel_offset=(-64, -3, 5),
              chunk_size=(16, 16, 8), num_channels=2)
    data = random_values(rng, (70, 50, 20, 2), "uint16")
    ba[:, :, :] = data
    darr = ba.to_dask()
    assert darr.shape == ba.shape == (70, 50, 20, 2) and darr.dtype == ba.dtype
    # Storage chunks: the grid starts at the voxel offset, so Dask's chunks are the chunks.
    assert darr.chunks == ((16, 16, 16, 16, 6), (16, 16, 16, 2), (8, 8, 4), (2,))
    assert darr[0, 0, 0, 1].compute() == ba[-64, -3, 5, 1] == data[0, 0, 0, 1]
    assert darr[63, 2, 0, 0].compute() == ba[-1, -1, 5, 0]  # the voxel just before the origin
    assert darr[64, 3, 0, 0].compute() == ba[0, 0, 5, 0]
    np.testing.assert_array_equal(darr.compute(), data)
    np.testing.assert_array_equal(darr[5:40:3, 7, -4:].compute(), data[5:40:3, 7, -4:])
    # What a plain from_array would read instead: ba[0:70, ...] in absolute coordinates, another place.
    naive = np.asarray(ba.read(bc.Box((0, 0, 0), (70, 50, 20))))
    assert not np.array_equal(naive, data)
    assert ba.to_dask(chunks=(32, 32, 20)).chunks[:3] == ((32, 32, 6), (32, 18), (20,))


def test_to_dask_reads_missing_chunks_as_zeros_and_is_lazy(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "ds"), size=(8192, 8192, 1024), chunk_size=(64, 64, 64))  # 64 GiB, 2^18 chunks
    ba[0:64, 0:64, 0:64] = 9
    darr = ba.to_dask()
    assert darr.shape[:3] == (8192, 8192, 1024) and darr.npartitions == 2**18
    assert int(darr[0:100, 0:100, 0:10].sum().compute()) == 64 * 64 * 10 * 9


@pytest.mark.parametrize("offset", [None, (3, -5, 7)])
def test_from_dask_writes_at_the_offset_and_keeps_what_is_around(tmp_path: Path, rng: np.random.Generator,
                                                                offset: tuple[int, int, int] | None) -> None:
    ba = make(str(tmp_path / "ds"), dtype="uint16", size=(90, 60, 30), voxel_offset=(-10, -10, 0),
              chunk_size=(16, 16, 8))
    ba[:, :, :] = 7
    data = random_values(rng, (47, 33, 19), "uint16")
    n = bc.from_dask(da.from_array(data, chunks=(20, 11, 7)), ba, offset)
    start = offset or ba.voxel_offset
    want = np.full((90, 60, 30), 7, np.uint16)
    sl = tuple(slice(s - o, s - o + n_) for s, o, n_ in zip(start, ba.voxel_offset, data.shape))
    want[sl] = data
    np.testing.assert_array_equal(ba[:, :, :, 0], want)
    assert n == len(ba.chunks(bc.Box.from_shape(start, data.shape)))


def test_from_dask_cuts_its_tasks_on_chunks_so_no_two_write_one_chunk(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ba = make(str(tmp_path / "ds"), size=(100, 100, 20), chunk_size=(16, 16, 8), voxel_offset=(3, 3, 3))
    written: list[str] = []
    store = type(ba.store)
    blind, conditional = store.set_many, store.write_if_unchanged

    def spy_blind(self: LocalStore, items, options=None):  # type: ignore[no-untyped-def]
        written.extend(items)
        assert in_parallel_task()  # chunk work stays in Dask's thread
        blind(self, items, options)

    def spy_conditional(self: LocalStore, key, value, expected, options=None):  # type: ignore[no-untyped-def]
        written.append(key)  # an edge chunk, merged
        assert in_parallel_task()
        return conditional(self, key, value, expected, options)

    monkeypatch.setattr(store, "set_many", spy_blind)
    monkeypatch.setattr(store, "write_if_unchanged", spy_conditional)
    data = np.ones((95, 90, 17), np.uint8)
    bc.from_dask(da.from_array(data, chunks=(25, 25, 5)), ba, (5, 4, 3))  # unaligned start: edge chunks merge
    assert len(written) == len(set(written)) == len(ba.chunks(bc.Box.from_shape((5, 4, 3), data.shape)))
    got = ba[:, :, :, 0]
    assert got[2:97, 1:91, 0:17].all() and got.sum() == data.size


def test_from_dask_refuses_what_cannot_be_written(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "ds"), size=(32, 32, 8), chunk_size=(16, 16, 8))
    with pytest.raises(bc.SelectionError, match="2 channel"):
        bc.from_dask(da.zeros((32, 32, 8, 2), dtype=np.uint8), ba)
    with pytest.raises(bc.OutOfBoundsError, match="wholly outside"):
        bc.from_dask(da.zeros((4, 4, 4), dtype=np.uint8), ba, (100, 0, 0))
    with pytest.raises(bc.WriteDataError):
        bc.from_dask(da.full((32, 32, 8), 300, dtype=np.int32), ba)
    with pytest.raises(bc.ReadOnlyError):
        bc.from_dask(da.zeros((32, 32, 8), dtype=np.uint8), bc.open(ba.url, read_only=True))
    assert ba.missing_chunks() == ba.chunks()


def test_dask_tasks_run_chunk_work_in_their_own_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask block of 64 stored chunks is read in the thread Dask runs the task in: bigarrays
    does not fan out to its own pool on top of Dask's threads."""
    import bigarrays_core.array.read as read

    ba = make(str(tmp_path / "ds"), size=(64, 64, 64), chunk_size=(16, 16, 16))
    ba[:, :, :] = 1
    serial = []
    real = read.run_batches

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        serial.append(in_parallel_task())
        return real(*args, **kwargs)

    monkeypatch.setattr(read, "run_batches", spy)
    assert int(ba.to_dask(chunks=(64, 64, 64)).sum().compute(scheduler="threads")) == 64**3
    assert serial == [True]
    ba[0:64, 0:64, 0:64]  # outside Dask: the usual parallel read
    assert serial == [True, False]


# -- pickling ----------------------------------------------------------------------------------------------


def test_bigarrays_and_stores_pickle(tmp_path: Path) -> None:
    local = make(str(tmp_path / "ds"), size=(32, 32, 8), chunk_size=(16, 16, 8), voxel_offset=(-5, 0, 0),
                 num_mips=2)
    local[:, :, :] = 3
    view = bc.open(local.url, mip=1, fill_missing=False, bounded=True, non_aligned_writes=True)
    copy = pickle.loads(pickle.dumps(view))
    assert (copy.url, copy.mip, copy.info, copy.fill_missing, copy.bounded, copy.non_aligned_writes) == (
        view.url, 1, view.info, False, True, True)
    assert isinstance(copy.store, LocalStore) and copy.store.root == local.store.root
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(local))[:, :, :], local[:, :, :])
    named = make(f"memory://pickle-{uuid.uuid4().hex}", size=(16, 16, 8), chunk_size=(16, 16, 8))
    again = pickle.loads(pickle.dumps(named))
    again[:, :, :] = 5  # the same data, in this process
    assert (named[:, :, :] == 5).all()
    anonymous = MemoryStore()
    anonymous.set("k", b"v")
    other = pickle.loads(pickle.dumps(anonymous))
    other.set("k2", b"w")
    assert anonymous.get("k2") == b"w" and other.get("k") == b"v"


def test_a_memory_store_refuses_to_be_used_in_another_process() -> None:
    payload = pickle.dumps(MemoryStore("memory://somewhere"))
    import subprocess
    import sys

    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read()).get('info')"
    proc = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, timeout=60)
    assert proc.returncode != 0 and b"memory store of process" in proc.stderr and b"file://" in proc.stderr


def test_to_dask_graphs_are_deterministic(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "ds"), size=(32, 32, 8), chunk_size=(16, 16, 8))
    assert ba.to_dask().name == bc.open(ba.url).to_dask().name != make(
        str(tmp_path / "other"), size=(32, 32, 8), chunk_size=(16, 16, 8)).to_dask().name
    assert dask.base.tokenize(ba.to_dask()) == dask.base.tokenize(ba.to_dask())
