"""Compressed chunks on S3 and GCS follow CloudVolume's convention, proven with CloudVolume itself.

On object stores a compressed chunk is stored under its plain key (no ``.gz`` / ``.zstd``
suffix) with ``Content-Encoding: gzip`` / ``zstd`` recorded as object metadata. Both ways are
checked against the stand-ins: what bigarrays writes, CloudVolume (through cloud-files, steered
by :mod:`tests.cloud.cloudvolume_access`) reads identically; what CloudVolume writes with its
default gzip (and with zstd, brotli, xz and bzip2), bigarrays reads identically, through
obstore and through fsspec. The objects themselves are inspected with boto3 (S3) and gcsfs
plus the JSON API (GCS), bypassing both libraries.

Whether a value is compressed is decided by the ``Content-Encoding`` the object records, never
by its size: a gzip chunk whose stream happens to be exactly as long as the raw chunk reads
as the chunk, not as its gzip bytes (it used to, when only the size was consulted).
"""

from __future__ import annotations

import gzip
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from tests.cloud.cloudvolume_access import CloudVolumeAccess
from tests.services import Service
from tests.storage.cases import gcsfs_client, s3_client

pytestmark = pytest.mark.cloud

#: 70 x 40 x 20 voxels from (-30, 5, -7) in 32 x 32 x 16 chunks: 3 x 2 x 2 chunks, edges clipped.
SIZE, CHUNK, OFFSET = (70, 40, 20), (32, 32, 16), (-30, 5, -7)
BOUNDS = Box(OFFSET, (40, 45, 13))
CROSSING = Box((-10, 20, 0), (35, 45, 13))  # crosses chunk borders along x, y and z
MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd", "br": b"", "xz": b"\xfd7zXZ\x00", "bz2": b"BZh"}
#: The Content-Encoding CloudVolume (cloud-files) records for each of its compressions.
HEADER = {"s3": {"bz2": "bzip2"}, "gcs": {}}


@dataclass(frozen=True)
class StoredObject:
    """One object as the object store holds it: its bytes as stored and its Content-Encoding."""

    data: bytes
    content_encoding: str | None


def stored_objects(url: str, gcs: Service | None) -> dict[str, StoredObject]:
    """Every object under the dataset ``url`` (``s3://`` or ``gs://``), by key below the root."""
    bucket, prefix = url.split("://", 1)[1].split("/", 1)
    out: dict[str, StoredObject] = {}
    if url.startswith("s3://"):
        client = s3_client()
        for obj in client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", []):
            got = client.get_object(Bucket=bucket, Key=obj["Key"])  # botocore never decodes
            out[obj["Key"][len(prefix) + 1:]] = StoredObject(got["Body"].read(), got.get("ContentEncoding"))
        return out
    assert gcs is not None
    root = f"{bucket}/{prefix}"
    for path, info in gcsfs_client().find(root, detail=True).items():
        name = path[len(bucket) + 1:]
        # Accept-Encoding: gzip asks for the bytes as stored (GCS otherwise transcodes gzip).
        media = f"{gcs.endpoint}/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media"
        request = urllib.request.Request(media, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as r:
            data = r.read()
        assert len(data) == int(info["size"]), f"{path}: got {len(data)} bytes, stored size {info['size']}"
        out[path[len(root) + 1:]] = StoredObject(data, info.get("contentEncoding"))
    return out


def check_chunks_are_tagged(objects: dict[str, StoredObject], chunk_keys: list[str], encoding: str,
                            header: str | None = None) -> None:
    """Every chunk is stored compressed under its plain key and tagged ``header`` (by default
    ``encoding``); nothing else."""
    assert sorted(objects) == sorted(["info", *chunk_keys])
    assert not [k for k in objects if k.endswith((".gz", ".zstd", ".br", ".xz", ".bz2"))]
    assert objects["info"].content_encoding in (None, "")
    for key in chunk_keys:
        obj = objects[key]
        assert obj.content_encoding == (header or encoding), key
        assert obj.data.startswith(MAGIC[encoding]), key


def cv_read(cv: Any, box: Box) -> np.ndarray:
    (x0, y0, z0), (x1, y1, z1) = box.start, box.stop
    return np.asarray(cv[x0:x1, y0:y1, z0:z1])


def sample(rng: np.random.Generator) -> np.ndarray:
    """uint16 data that compresses (so the stored bytes really are a gzip / zstd stream)."""
    return rng.integers(0, 64, size=BOUNDS.shape + (1,), dtype=np.uint16)


@pytest.fixture(params=["s3", "gcs"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gcs(kind: str, request: pytest.FixtureRequest) -> Service | None:
    return request.getfixturevalue("gcs_server") if kind == "gcs" else None


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_bigarrays_writes_what_cloudvolume_reads(kind: str, compression: str, fresh_url: Callable[[str], str],
                                                 cloudvolume: CloudVolumeAccess, gcs: Service | None,
                                                 rng: np.random.Generator) -> None:
    url = fresh_url(kind)
    ba = bc.create(url, dtype="uint16", size=SIZE, chunk_size=CHUNK, voxel_offset=OFFSET, resolution=(8, 8, 40),
                   layer_type="image", compression=compression)
    data = sample(rng)
    ba[:, :, :] = data
    chunk_keys = [r.key for r in ba.chunks()]
    check_chunks_are_tagged(stored_objects(url, gcs), chunk_keys, compression)

    cv = cloudvolume.open(url)
    assert tuple(cv.bounds.minpt) == BOUNDS.start and tuple(cv.bounds.maxpt) == BOUNDS.stop
    np.testing.assert_array_equal(cv_read(cv, BOUNDS), data)
    np.testing.assert_array_equal(cv_read(cv, CROSSING), data[CROSSING.slices_in(BOUNDS)])


@pytest.mark.parametrize("compress", [None, "zstd", "br", "xz", "bz2"], ids=["default-gzip", "zstd", "br", "xz", "bz2"])
def test_cloudvolume_writes_what_bigarrays_reads(kind: str, compress: str | None, fresh_url: Callable[[str], str],
                                                 cloudvolume: CloudVolumeAccess, gcs: Service | None,
                                                 rng: np.random.Generator) -> None:
    from cloudvolume import CloudVolume  # type: ignore[import-untyped]

    url = fresh_url(kind)
    info = CloudVolume.create_new_info(
        num_channels=1, layer_type="image", data_type="uint16", encoding="raw", resolution=[8, 8, 40],
        voxel_offset=list(OFFSET), volume_size=list(SIZE), chunk_size=list(CHUNK),
    )
    options = {} if compress is None else {"compress": compress}
    cv = cloudvolume.open(url, info=info, **options)
    cv.commit_info()
    data = sample(rng)
    (x0, y0, z0), (x1, y1, z1) = BOUNDS.start, BOUNDS.stop
    cv[x0:x1, y0:y1, z0:z1] = data

    encoding = compress or "gzip"
    for obstore_reads in (True, False):
        ba = bc.open(url, fill_missing=False, obstore_reads=obstore_reads)
        chunk_keys = [r.key for r in ba.chunks()]
        check_chunks_are_tagged(stored_objects(url, gcs), chunk_keys, encoding, HEADER[kind].get(encoding))
        assert ba.bounds == BOUNDS and ba.dtype == np.uint16
        np.testing.assert_array_equal(ba[:, :, :], data)
        np.testing.assert_array_equal(ba.read(CROSSING), data[CROSSING.slices_in(BOUNDS)])
        assert ba.missing_chunks() == []


RAW_SHAPE = (64, 64, 16)
RAW_SIZE = 64 * 64 * 16


def gzip_of_raw_size() -> tuple[np.ndarray, bytes]:
    """A uint8 chunk whose ``gzip -9`` stream is exactly as long as the raw chunk."""
    noise = np.random.default_rng(0).integers(0, 256, RAW_SIZE, dtype=np.uint8).tobytes()
    for k in range(RAW_SIZE - 1000, RAW_SIZE):
        raw = noise[:k] + bytes(RAW_SIZE - k)
        stream = gzip.compress(raw, 9, mtime=0)
        if len(stream) == RAW_SIZE:
            return np.frombuffer(raw, np.uint8).reshape(RAW_SHAPE, order="F"), stream
    raise AssertionError("no noise length gives a gzip stream of the raw size")


def test_a_gzip_object_of_the_raw_size_reads_as_the_chunk(kind: str, fresh_url: Callable[[str], str],
                                                         gcs: Service | None) -> None:
    """Regression: on S3 and GCS a chunk stored (as CloudVolume stores it) gzip-compressed with
    ``Content-Encoding: gzip``, in a scale whose info says raw with no compression, whose gzip
    stream is exactly the raw chunk's size, used to read as its own gzip bytes (31, 139, 8...)."""
    chunk, stream = gzip_of_raw_size()
    url = fresh_url(kind)
    bc.create(url, dtype="uint8", size=RAW_SHAPE, chunk_size=RAW_SHAPE, resolution=(1, 1, 1))
    bucket, prefix = url.split("://", 1)[1].split("/", 1)
    key = f"{prefix}/1_1_1/0-64_0-64_0-16"
    if kind == "s3":
        s3_client().put_object(Bucket=bucket, Key=key, Body=stream, ContentEncoding="gzip")
    else:
        gcsfs_client().pipe_file(f"{bucket}/{key}", stream, fixed_key_metadata={"content_encoding": "gzip"})
    assert stored_objects(url, gcs)["1_1_1/0-64_0-64_0-16"] == StoredObject(stream, "gzip")
    for obstore_reads in (True, False):
        ba = bc.open(url, fill_missing=False, obstore_reads=obstore_reads)
        np.testing.assert_array_equal(ba[:, :, :][..., 0], chunk)
        np.testing.assert_array_equal(ba[3:40, 1:64, 2:9][..., 0], chunk[3:40, 1:64, 2:9])
