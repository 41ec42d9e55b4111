"""Sharded scales on S3 (moto) and GCS (fake-gcs-server), exchanged with TensorStore and CloudVolume.

Both directions, voxel-exact: what bigarrays writes sharded on an object store, TensorStore
(its ``s3`` / ``gcs`` kvstores pointed at the stand-ins) and CloudVolume read identically;
what TensorStore writes sharded there, bigarrays reads identically. Shard files are stored
without a ``Content-Encoding`` (readers need byte ranges of the stored bytes). Through a
recording proxy, opening a petabyte-sized sharded volume on S3 and reading one chunk costs
one GET of the info and three of the shard (index, minishard index, data).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import tensorstore as ts

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from tests.cloud.cloudvolume_access import CloudVolumeAccess
from tests.cloud.recording_proxy import RecordingProxy
from tests.cloud.test_content_encoding_interop import stored_objects
from tests.services import DUMMY_AWS_ENV, Service

pytestmark = [pytest.mark.cloud, pytest.mark.interop]

#: 70 x 45 x 11 voxels from (-37, 5, -4) in 16 x 16 x 4 chunks: a 5 x 3 x 3 grid, edges clipped.
SIZE, CHUNK, OFFSET = (70, 45, 11), (16, 16, 4), (-37, 5, -4)
BOUNDS = Box(OFFSET, (33, 50, 7))
CROSSING = Box((-20, 10, -2), (30, 40, 6))


def spec(preshift: int, hash: str, minishard: int, shard: int, index: str, data: str) -> dict[str, Any]:
    return {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": preshift, "hash": hash,
            "minishard_bits": minishard, "shard_bits": shard, "minishard_index_encoding": index,
            "data_encoding": data}


#: (dtype, encoding, sharding) of each case.
CASES = {
    "raw-u8-identity-gzip": ("uint8", "raw", spec(2, "identity", 2, 3, "raw", "gzip")),
    "cseg-u64-murmur": ("uint64", "compressed_segmentation", spec(1, "murmurhash3_x86_128", 2, 2, "gzip", "gzip")),
}


def sample(rng: np.random.Generator, dtype: str) -> np.ndarray:
    if dtype == "uint64":
        labels = np.array([0, 3, 2**40 + 7, 2**63 + 1], dtype=np.uint64)
        return labels[rng.integers(0, len(labels), size=BOUNDS.shape + (1,))]
    return rng.integers(0, 256, size=BOUNDS.shape + (1,), dtype=np.uint8)


@pytest.fixture(params=["s3", "gcs"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(kind: str, request: pytest.FixtureRequest) -> Iterator[Service]:
    """The stand-in for ``kind``; for GCS, TensorStore is pointed at it too (it reads
    ``TENSORSTORE_GCS_HTTP_URL`` once, and takes a fixed token instead of Google's credentials)."""
    service: Service = request.getfixturevalue(f"{kind}_server")
    with pytest.MonkeyPatch.context() as mp:
        if kind == "gcs":
            mp.setenv("TENSORSTORE_GCS_HTTP_URL", service.endpoint)
            mp.setenv("GOOGLE_AUTH_TOKEN_FOR_TESTING", "test-token")
        yield service


def ts_kvstore(url: str, server: Service) -> dict[str, Any]:
    """TensorStore's kvstore spec for a bigarrays ``s3://`` or ``gs://`` dataset URL."""
    scheme, rest = url.split("://", 1)
    bucket, path = rest.split("/", 1)
    if scheme == "s3":
        return {"driver": "s3", "bucket": bucket, "path": path + "/", "endpoint": server.endpoint,
                "aws_region": DUMMY_AWS_ENV["AWS_DEFAULT_REGION"], "aws_credentials": {"type": "environment"}}
    return {"driver": "gcs", "bucket": bucket, "path": path + "/"}


def ts_read(url: str, server: Service, box: Box | None = None) -> np.ndarray:
    store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": ts_kvstore(url, server)}, read=True).result()
    if box is not None:
        store = store[ts.d["x", "y", "z"][box.start[0]:box.stop[0], box.start[1]:box.stop[1],
                                            box.start[2]:box.stop[2]]]
    return np.asarray(store.read(order="F").result())


@pytest.mark.parametrize("case", list(CASES))
def test_tensorstore_and_cloudvolume_read_sharded_scales_bigarrays_writes(
        kind: str, server: Service, case: str, fresh_url: Callable[[str], str], cloudvolume: CloudVolumeAccess,
        rng: np.random.Generator) -> None:
    dtype, encoding, sharding = CASES[case]
    url = fresh_url(kind)
    ba = bc.create(url, dtype=dtype, size=SIZE, chunk_size=CHUNK, voxel_offset=OFFSET, encoding=encoding,
                   resolution=(8, 8, 40), sharding=sharding)
    data = sample(rng, dtype)
    ba[:, :, :] = data
    objects = stored_objects(url, server if kind == "gcs" else None)
    shards = [k for k in objects if k.endswith(".shard")]
    assert shards and sorted(objects) == sorted(["info", *shards])
    assert all(objects[k].content_encoding in (None, "") for k in shards)  # ranges need the stored bytes
    np.testing.assert_array_equal(ts_read(url, server), data)
    np.testing.assert_array_equal(ts_read(url, server, CROSSING), data[CROSSING.slices_in(BOUNDS)])
    cv = cloudvolume.open(url)
    (x0, y0, z0), (x1, y1, z1) = BOUNDS.start, BOUNDS.stop
    np.testing.assert_array_equal(np.asarray(cv[x0:x1, y0:y1, z0:z1]), data)


@pytest.mark.parametrize("case", list(CASES))
def test_bigarrays_reads_sharded_scales_tensorstore_writes(kind: str, server: Service, case: str,
                                                           fresh_url: Callable[[str], str],
                                                           rng: np.random.Generator) -> None:
    dtype, encoding, sharding = CASES[case]
    url = fresh_url(kind)
    scale: dict[str, Any] = {"size": list(SIZE), "voxel_offset": list(OFFSET), "chunk_size": list(CHUNK),
                             "resolution": [8, 8, 40], "encoding": encoding, "sharding": sharding}
    if encoding == "compressed_segmentation":
        scale["compressed_segmentation_block_size"] = [8, 8, 4]
    data = sample(rng, dtype)
    ts.open({"driver": "neuroglancer_precomputed", "kvstore": ts_kvstore(url, server), "create": True,
             "multiscale_metadata": {"type": "image", "data_type": dtype, "num_channels": 1},
             "scale_metadata": scale}).result().write(data).result()
    ba = bc.open(url, fill_missing=False)
    np.testing.assert_array_equal(ba[:, :, :], data)
    np.testing.assert_array_equal(bc.open(url).read(CROSSING), data[CROSSING.slices_in(BOUNDS)])
    assert not ba.missing_chunks()


@pytest.fixture
def proxy(s3_server: Service) -> Iterator[RecordingProxy]:
    p = RecordingProxy(s3_server.endpoint)
    p.start()
    try:
        yield p
    finally:
        p.stop()


def test_opening_a_petabyte_sharded_volume_and_reading_a_chunk_costs_four_gets(
        fresh_url: Callable[[str], str], proxy: RecordingProxy, rng: np.random.Generator) -> None:
    url = fresh_url("s3")
    options = {"storage_options": {"endpoint_url": proxy.endpoint}}
    ba = bc.create(url, dtype="uint8", size=(100_000,) * 3, chunk_size=(64, 64, 64), sharding=True, **options)
    chunk = Box((64_000, 64_000, 64_000), (64_064, 64_064, 64_064))
    values = rng.integers(1, 256, size=chunk.shape + (1,), dtype=np.uint8)
    ba.write(chunk, values)  # a shard of 2**11 chunks gets one of them: read (missing), then written
    shard_key = ba.scale_io.store.shard_key_of(ba.chunks(chunk)[0].key)  # type: ignore[attr-defined]
    proxy.take()
    fresh = bc.open(url, **options)
    np.testing.assert_array_equal(fresh.read(chunk), values)
    root = "/" + url[len("s3://"):]
    requests = proxy.take()
    assert requests[0] == ("GET", f"{root}/info")
    # The shard index, the minishard index and the chunk: three ranged GETs of the one shard.
    assert requests[1:] == [("GET", f"{root}/{shard_key}")] * 3
    assert os.environ.get("AWS_ENDPOINT_URL") != proxy.endpoint  # only bigarrays went through the proxy
