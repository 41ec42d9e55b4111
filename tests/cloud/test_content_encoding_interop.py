"""gzip and zstd chunks on S3 and GCS follow CloudVolume's convention, proven with CloudVolume itself.

On object stores a compressed chunk is stored under its plain key (no ``.gz`` / ``.zstd``
suffix) with ``Content-Encoding: gzip`` / ``zstd`` recorded as object metadata. Both ways are
checked against the stand-ins: what bigarrays writes, CloudVolume (through cloud-files, steered
by :mod:`tests.cloud.cloudvolume_access`) reads identically; what CloudVolume writes with its
default gzip (and with zstd), bigarrays reads identically. The objects themselves are inspected
with boto3 (S3) and gcsfs plus the JSON API (GCS), bypassing both libraries.
"""

from __future__ import annotations

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
MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}


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


def check_chunks_are_tagged(objects: dict[str, StoredObject], chunk_keys: list[str], encoding: str) -> None:
    """Every chunk is stored compressed under its plain key and tagged ``encoding``; nothing else."""
    assert sorted(objects) == sorted(["info", *chunk_keys])
    assert not [k for k in objects if k.endswith((".gz", ".zstd"))]
    assert objects["info"].content_encoding in (None, "")
    for key in chunk_keys:
        obj = objects[key]
        assert obj.content_encoding == encoding, key
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


@pytest.mark.parametrize("compress", [None, "zstd"], ids=["default-gzip", "zstd"])
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

    ba = bc.open(url, fill_missing=False)
    chunk_keys = [r.key for r in ba.chunks()]
    check_chunks_are_tagged(stored_objects(url, gcs), chunk_keys, compress or "gzip")
    assert ba.bounds == BOUNDS and ba.dtype == np.uint16
    np.testing.assert_array_equal(ba[:, :, :], data)
    np.testing.assert_array_equal(ba.read(CROSSING), data[CROSSING.slices_in(BOUNDS)])
    assert ba.missing_chunks() == []
