"""Long operations on a real Dask cluster: a ``distributed.LocalCluster`` of two worker
*processes* on 127.0.0.1, started and stopped here.

Downsample, transfer and ingest store exactly the same bytes with one thread, two local
threads and two Dask worker processes; a worker SIGKILLed in the middle of a build does not
change the result (Dask runs its tasks again elsewhere); Dask arrays read and write on the
cluster.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core import jobs
from bigarrays_core.ingest import ingest
from bigarrays_core.sources import ArraySource, open_source
from tests.core.datasets import files_under, make, random_values

from .reference import pyramid_reference, segmentation

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(600)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0", silence_logs=50)
    c = distributed.Client(cluster)
    pids = set(c.run(os.getpid).values())
    try:
        yield c
    finally:
        pids |= set(c.run(os.getpid).values())
        c.close()
        cluster.close()
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids:  # anything the cluster failed to stop, by its pid
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def threads() -> Iterator[Callable[[int], None]]:
    before = bc.num_threads()
    yield bc.set_num_threads
    bc.set_num_threads(before)


def _dataset(root: Path, name: str, data: np.ndarray, **kwargs: Any) -> bc.BigArray:
    ba = make(str(root / name), dtype=data.dtype.name, size=data.shape[:3], **kwargs)
    ba[:, :, :] = data
    return ba


def _chunks(root: Path) -> dict[str, bytes]:
    """Every file but progress records and the temporaries of writers killed mid-write."""
    return {k: v for k, v in files_under(str(root)).items()
            if not k.startswith(".bigarrays") and not os.path.basename(k).startswith(".bigarrays-tmp-")}


def _three_ways(tmp_path: Path, threads: Callable[[int], None], client: Any,
                job: Callable[[Path, Any], None]) -> list[dict[str, bytes]]:
    """``job(root, client)`` with 1 thread, 2 threads and the cluster; each root's files."""
    out = []
    for name, n, on in (("one", 1, None), ("two", 2, None), ("dask", 2, client)):
        threads(n)
        root = tmp_path / name
        root.mkdir()
        job(root, on)
        out.append(_chunks(root))
    return out


@pytest.mark.parametrize("kind", ["image", "segmentation"])
def test_downsample_is_byte_identical_on_one_thread_two_threads_and_two_workers(
        tmp_path: Path, threads: Callable[[int], None], client: Any, kind: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "_FETCH_BATCH", 3)  # the tasks' reports come back in several batches
    rng = np.random.default_rng(3)
    if kind == "image":
        data = random_values(rng, (150, 120, 20, 1), "uint8")
        options: dict[str, Any] = {"compression": "gzip"}
    else:
        data = segmentation(rng, (150, 120, 20), cells=20)[..., None]
        options = {"encoding": "compressed_segmentation"}

    def job(root: Path, on: Any) -> None:
        ba = _dataset(root, "ds", data, voxel_offset=(-16, 8, 3), chunk_size=(16, 16, 8), **options)
        report = bc.downsample(ba, mips=3, client=on, max_task_bytes=1 << 20)
        assert report.written == sum(len(ba.at_mip(k).chunks()) for k in (1, 2, 3))

    one, two, dask_ = _three_ways(tmp_path, threads, client, job)
    assert one == two == dask_ and len(one) > 50
    want = pyramid_reference(data, bc.Box.from_shape((-16, 8, 3), data.shape[:3]), [(2, 2, 1)] * 3,
                             "average" if kind == "image" else "mode")
    np.testing.assert_array_equal(bc.open(str(tmp_path / "dask" / "ds"), mip=3)[:, :, :], want[2])


def test_transfer_is_byte_identical_on_one_thread_two_threads_and_two_workers(
        tmp_path: Path, threads: Callable[[int], None], client: Any) -> None:
    data = random_values(np.random.default_rng(4), (130, 100, 30, 1), "uint16")
    source = _dataset(tmp_path, "src", data, chunk_size=(16, 16, 8), num_mips=2)
    bc.downsample(source)

    def job(root: Path, on: Any) -> None:
        bc.transfer(source, str(root / "dst"), chunk_size=(32, 32, 32), compression="gzip", region="5:120,0:99,2:30",
                    verify=True, client=on)

    one, two, dask_ = _three_ways(tmp_path, threads, client, job)
    assert one == two == dask_ and len(one) > 20


@pytest.mark.parametrize("kind", ["file", "array"])
def test_ingest_on_the_cluster_equals_ingest_here(tmp_path: Path, threads: Callable[[int], None],
                                                 client: Any, kind: str) -> None:
    """From a file the stage's context is small and travels in each task; from an array in
    memory (126 kB) it is sent to every worker ahead: the same chunks either way."""
    values = random_values(np.random.default_rng(5), (90, 70, 20), "uint8")
    np.save(tmp_path / "v.npy", values)

    def source() -> Any:
        return open_source(str(tmp_path / "v.npy")) if kind == "file" else ArraySource(values)

    assert jobs.pickles_small(source()) == (kind == "file")

    def job(root: Path, on: Any) -> None:
        ba = make(str(root / "ds"), size=(100, 80, 30), voxel_offset=(0, 0, -5), chunk_size=(16, 16, 8))
        ingest(source(), ba, offset=(7, 3, -2), client=on)

    one, two, dask_ = _three_ways(tmp_path, threads, client, job)
    assert one == two == dask_


def test_pickles_small_stops_at_its_limit() -> None:
    big = np.zeros(1 << 24, np.uint8)
    assert jobs.pickles_small({"a": 1, "b": [1, 2, 3]}) and not jobs.pickles_small({"a": big})
    assert jobs.pickles_small(b"x" * 1000, limit=1100) and not jobs.pickles_small(b"x" * 1000, limit=900)


def test_a_worker_killed_in_the_middle_of_a_build_changes_nothing(tmp_path: Path, client: Any) -> None:
    data = random_values(np.random.default_rng(6), (256, 256, 32, 1), "uint8")
    reference = _dataset(tmp_path, "reference", data, chunk_size=(16, 16, 8))
    bc.downsample(reference, mips=2, max_task_bytes=1 << 20)
    victim = _dataset(tmp_path, "victim", data, chunk_size=(16, 16, 8))
    pids = list(client.run(os.getpid).values())
    killed: list[int] = []
    lock = threading.Lock()

    def kill_one(n: int) -> None:  # at the first finished task, while the others are running
        with lock:
            if n and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

    report = bc.downsample(victim, mips=2, client=client, progress=kill_one, max_task_bytes=1 << 20)
    assert killed
    assert report.written == sum(len(victim.at_mip(k).chunks()) for k in (1, 2))
    assert _chunks(tmp_path / "victim") == {
        k.replace("reference", "victim"): v for k, v in _chunks(tmp_path / "reference").items()}
    client.wait_for_workers(2, timeout=60)  # the nanny started a new one
    assert killed[0] not in client.run(os.getpid).values()


def test_dask_arrays_read_and_write_on_the_cluster(tmp_path: Path, client: Any) -> None:
    data = random_values(np.random.default_rng(8), (70, 50, 20, 1), "uint16")
    ba = _dataset(tmp_path, "src", data, voxel_offset=(-40, -7, 2), chunk_size=(16, 16, 8))
    out = make(str(tmp_path / "dst"), dtype="uint16", size=(70, 50, 20), voxel_offset=(-40, -7, 2),
               chunk_size=(32, 16, 8))
    darr = ba.to_dask()
    assert int(client.compute(darr.sum()).result()) == int(data.sum(dtype=np.uint64))
    n = bc.from_dask(darr * 2, out, client=client)
    assert n == len(out.chunks())
    np.testing.assert_array_equal(out[:, :, :], data * 2)
    with pytest.raises(Exception, match="memory store of process"):
        bc.from_dask(da.zeros((16, 16, 8), dtype=np.uint8), make(f"memory://cluster-{os.getpid()}", size=(16, 16, 8),
                                                          chunk_size=(16, 16, 8)), client=client)


@pytest.mark.parametrize("job", ["downsample", "from_dask"])
def test_a_job_waits_on_its_own_clients_event_loop(tmp_path: Path, client: Any, job: str) -> None:
    """Dask's ``as_completed`` follows the *default* client's event loop unless told otherwise:
    a job given one client while another is the default (the last one opened) waited on that
    other client's loop, and hung while that loop was busy."""
    data = random_values(np.random.default_rng(9), (64, 64, 16, 1), "uint8")
    ba = _dataset(tmp_path, "src", data, chunk_size=(16, 16, 8))
    other = distributed.Client(client.scheduler.address, timeout="20s")
    assert other.loop is not client.loop and distributed.default_client() is other
    release = threading.Event()
    other.loop.add_callback(release.wait, 120)  # the default client's loop is busy until released
    done: list[object] = []

    def run() -> None:
        if job == "downsample":
            done.append(bc.downsample(ba, mips=1, client=client))
        else:
            out = make(str(tmp_path / "dst"), dtype="uint8", size=(64, 64, 16), chunk_size=(16, 16, 8))
            done.append(bc.from_dask(ba.to_dask(), out, client=client))

    worker = threading.Thread(target=run, daemon=True)
    try:
        worker.start()
        worker.join(60)
        assert done, f"{job} on one client waited for another client's event loop"
    finally:
        release.set()
        worker.join(60)
        other.close()


def _default_client() -> Any:
    try:
        return distributed.default_client()
    except ValueError:  # none
        return None


def test_a_client_opened_for_a_job_is_not_made_the_default(tmp_path: Path, client: Any) -> None:
    """Given a scheduler's address, a job opens (and closes) a client of its own; the process's
    default client, where ``dask.compute`` in the caller's other threads goes, stays the same."""
    ba = _dataset(tmp_path, "src", random_values(np.random.default_rng(10), (64, 64, 16, 1), "uint8"),
                  chunk_size=(16, 16, 8))
    before = _default_client()
    seen: list[bool] = []
    bc.downsample(ba, mips=1, client=client.scheduler.address,
                  progress=lambda n: seen.append(_default_client() is before))
    assert seen and all(seen)
    assert _default_client() is before
