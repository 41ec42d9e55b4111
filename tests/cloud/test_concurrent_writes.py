"""Unaligned writes from 8 processes into the same chunks lose no voxel: locally (a lock file
per dataset, record locks per key), on the S3 stand-in (``If-Match`` / ``If-None-Match``) and
on the GCS stand-in (``ifGenerationMatch``), for plain and sharded scales.

Each process writes its own columns of voxels (``x % 8 == p``) one at a time, so every write
is a read-modify-write of chunks the others are changing too. Before conditional writes the
per-process lock let about half of the voxels vanish without a word.

The S3 stand-in here is moto serving one request at a time (:mod:`tests.cloud.serial_moto`):
S3 applies a conditional write atomically, moto's threaded server does not (it checks, then
stores), and this test is about bigarrays' side of the protocol.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from tests.services import DUMMY_AWS_ENV, Service, create_s3_bucket, free_port, wait_for_http

from .conftest import kind_params

WRITER = Path(__file__).with_name("concurrent_writer.py")
SERIAL_MOTO = Path(__file__).with_name("serial_moto.py")
PROCESSES = 8


@pytest.fixture
def serial_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A bucket on a moto server that serves one request at a time; yields an ``s3://`` URL
    (the environment points S3 clients, the writers' included, at that server)."""
    port = free_port()
    env = {**os.environ, **DUMMY_AWS_ENV}
    proc = subprocess.Popen([sys.executable, str(SERIAL_MOTO), str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with Service("serial-moto", proc, port) as service:
        wait_for_http(f"{service.endpoint}/moto-api/", timeout=30, proc=proc)
        for name, value in DUMMY_AWS_ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", service.endpoint)
        create_s3_bucket(service.endpoint, "concurrent-writes")
        yield "s3://concurrent-writes/datasets/em"


@pytest.mark.parametrize("kind", kind_params("local", "s3", "gcs"))
@pytest.mark.parametrize("sharded", [False, True])
def test_eight_processes_writing_into_shared_chunks_lose_nothing(fresh_url: Callable[[str], str],
                                                                  request: pytest.FixtureRequest, kind: str,
                                                                  sharded: bool) -> None:
    url = request.getfixturevalue("serial_s3") + ("-sharded" if sharded else "") if kind == "s3" else fresh_url(kind)
    sharding = {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 2, "hash": "identity",
                "minishard_bits": 0, "shard_bits": 0, "minishard_index_encoding": "raw", "data_encoding": "raw"}
    bc.create(url, dtype="uint16", size=(48, 40, 4), chunk_size=(16, 16, 4), voxel_offset=(-8, 3, 0),
              sharding=sharding if sharded else None)
    start = time.time() + 3.0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, str(WRITER), url, str(p), str(PROCESSES), repr(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for p in range(PROCESSES)]
    try:
        results = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0 and out.strip() == "done", err
    got = bc.open(url)[:, :, :, 0]
    want = np.broadcast_to(((np.arange(-8, 40) % PROCESSES) + 1).astype(np.uint16)[:, None, None], got.shape)
    lost = int(np.count_nonzero(got != want))
    assert lost == 0, f"{lost} of {got.size} voxels lost"
