"""Every store and BigArray pickles, and the copy works: what Dask sends to its workers.

Round trips in this process on every store kind (memory, local, S3, GCS, HTTP, and sharded
scales over them), and a pyramid built on the S3 stand-in by Dask worker processes, which
get the array (and its store) by pickle.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.kvstore import open_store
from tests.services import StaticHTTPServer

from .conftest import KINDS, kind_params


@pytest.mark.parametrize("kind", kind_params(*KINDS))
@pytest.mark.parametrize("sharded", [False, True])
def test_arrays_and_their_stores_pickle(fresh_url: Callable[[str], str], kind: str, sharded: bool) -> None:
    url = fresh_url(kind)
    ba = bc.create(url, dtype="uint16", size=(40, 30, 8), chunk_size=(16, 16, 8), voxel_offset=(-3, 0, 1),
                   sharding=True if sharded else None, num_mips=2)
    data = np.random.default_rng(2).integers(0, 60000, size=(40, 30, 8), dtype=np.uint16)
    ba[:, :, :] = data
    copy = pickle.loads(pickle.dumps(ba.at_mip(0)))
    assert type(copy.store) is type(ba.store) and copy.url == ba.url and copy.info == ba.info
    assert type(copy.scale_io.store) is type(ba.scale_io.store)
    np.testing.assert_array_equal(copy[:, :, :, 0], data)
    copy[-3:13, 0:16, 1:9] = 7  # the copy writes where the original reads
    assert (ba[-3:13, 0:16, 1:9] == 7).all()
    store = pickle.loads(pickle.dumps(ba.scale_io.store))
    assert store.get_many([ba.chunks()[0].key]) == ba.scale_io.store.get_many([ba.chunks()[0].key])


def test_an_http_store_pickles(http_server: StaticHTTPServer, tmp_path: Path) -> None:
    ba = bc.create(str(tmp_path / "ds"), dtype="uint8", size=(16, 16, 8), chunk_size=(16, 16, 8))
    ba[:, :, :] = 9
    shutil.copytree(tmp_path / "ds", Path(http_server.root) / "pickled")
    remote = bc.open(f"{http_server.endpoint}/pickled")
    copy = pickle.loads(pickle.dumps(remote))
    assert copy.store.read_only and (copy[:, :, :] == 9).all()
    store = pickle.loads(pickle.dumps(open_store(f"{http_server.endpoint}/pickled")))
    assert store.get("info") == remote.store.get("info")


@pytest.mark.cloud
def test_dask_workers_build_a_pyramid_on_s3(fresh_url: Callable[[str], str]) -> None:
    distributed = pytest.importorskip("distributed")
    url = fresh_url("s3")  # the stand-in's environment is set: the workers started below inherit it
    ba = bc.create(url, dtype="uint8", size=(96, 80, 8), chunk_size=(16, 16, 8), num_mips=3)
    data = np.random.default_rng(3).integers(0, 255, size=(96, 80, 8), dtype=np.uint8)
    ba[:, :, :] = data
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster:
        with distributed.Client(cluster) as client:
            assert all(pid != os.getpid() for pid in client.run(os.getpid).values())
            report = bc.downsample(ba, client=client)
    assert report.written == len(ba.at_mip(1).chunks()) + len(ba.at_mip(2).chunks())
    local = bc.create("memory://pickling-reference", dtype="uint8", size=(96, 80, 8), chunk_size=(16, 16, 8),
                      num_mips=3, overwrite=True)
    local[:, :, :] = data
    bc.downsample(local)
    for k in (1, 2):
        np.testing.assert_array_equal(bc.open(url, mip=k)[:, :, :], local.at_mip(k)[:, :, :])
