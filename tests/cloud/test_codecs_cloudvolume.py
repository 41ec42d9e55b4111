"""compresso, crackle, jxl, fpzip, kempressed, zfpc and brotli on S3 and GCS, both ways with CloudVolume.

The cases of :mod:`tests.interop.codec_cases` on the stand-ins: what CloudVolume writes
(through cloud-files, steered by :mod:`tests.cloud.cloudvolume_access`) bigarrays reads
identically, and the reverse. Byte compression follows CloudVolume's convention on object
stores: the chunk under its plain key with ``Content-Encoding: gzip`` / ``br``, which the
objects themselves (read past both libraries) are checked for. S3 and GCS reads do not
report Content-Encoding, so CloudVolume's brotli chunks reach bigarrays as brotli streams
with nothing saying so; bigarrays recognises them (see ``bigarrays_core.codecs.pipeline``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from tests.cloud.cloudvolume_access import CloudVolumeAccess
from tests.cloud.test_content_encoding_interop import StoredObject, stored_objects
from tests.interop.codec_cases import CASES, CodecCase, cv_info, sample, stored_payload
from tests.services import Service

pytestmark = pytest.mark.cloud

SIZE, CHUNK, OFFSET = (70, 40, 20), (32, 32, 16), (-30, 5, -7)
BOUNDS = bc.Box(OFFSET, (40, 45, 13))
CROSSING = bc.Box((-10, 20, 0), (35, 45, 13))


@pytest.fixture(params=["s3", "gcs"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gcs(kind: str, request: pytest.FixtureRequest) -> Service | None:
    return request.getfixturevalue("gcs_server") if kind == "gcs" else None


def content_encoding(case: CodecCase) -> str | None:
    """The Content-Encoding both tools give the case's chunks on object stores."""
    return {".gz": "gzip", ".br": "br", "": None}[case.suffix]


def check_objects(objects: dict[str, StoredObject], keys: list[str], case: CodecCase) -> dict[str, bytes]:
    """Chunks under their plain keys with the case's Content-Encoding; their encoded bytes."""
    assert sorted(objects) == sorted(["info", *keys])
    out = {}
    for key in keys:
        obj = objects[key]
        assert (obj.content_encoding or None) == content_encoding(case), key
        out[key] = stored_payload(obj.data, content_encoding(case))
    return out


def cv_read(vol: Any, box: bc.Box = BOUNDS) -> np.ndarray:
    (x0, y0, z0), (x1, y1, z1) = box.start, box.stop
    return np.asarray(vol[x0:x1, y0:y1, z0:z1])


def assert_read_back(actual: np.ndarray, data: np.ndarray, case: CodecCase) -> None:
    if case.lossless and case.encoding != "kempressed":
        np.testing.assert_array_equal(actual, data)
    else:
        assert np.abs(actual.astype(float) - data.astype(float)).max() <= (24 if case.encoding == "jxl" else 0.02)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bigarrays_reads_what_cloudvolume_writes(kind: str, case: CodecCase, fresh_url: Callable[[str], str],
                                                 cloudvolume: CloudVolumeAccess, gcs: Service | None,
                                                 rng: np.random.Generator) -> None:
    url = fresh_url(kind)
    vol = cloudvolume.open(url, info=cv_info(case, SIZE, CHUNK, OFFSET), compress=case.cv_compress)
    vol.commit_info()
    data = sample(case, BOUNDS.shape, rng)
    (x0, y0, z0), (x1, y1, z1) = BOUNDS.start, BOUNDS.stop
    vol[x0:x1, y0:y1, z0:z1] = data

    ba = bc.open(url, fill_missing=False)
    check_objects(stored_objects(url, gcs), [r.key for r in ba.chunks()], case)
    theirs = cv_read(cloudvolume.open(url))
    ours = ba[:, :, :]
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ba.read(CROSSING), theirs[CROSSING.slices_in(BOUNDS)])
    assert_read_back(ours, data, case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_cloudvolume_reads_what_bigarrays_writes(kind: str, case: CodecCase, fresh_url: Callable[[str], str],
                                                 cloudvolume: CloudVolumeAccess, gcs: Service | None,
                                                 rng: np.random.Generator) -> None:
    url = fresh_url(kind)
    ba = bc.create(url, dtype=case.dtype, size=SIZE, chunk_size=CHUNK, voxel_offset=OFFSET, resolution=(8, 8, 40),
                   num_channels=case.channels, encoding=case.encoding, compression=case.ba_compression,
                   encoding_settings=case.settings, compressed_segmentation_block_size=(8, 8, 8))
    data = sample(case, BOUNDS.shape, rng)
    ba[:, :, :] = data
    stored = check_objects(stored_objects(url, gcs), [r.key for r in ba.chunks()], case)
    for ref in ba.chunks():  # each object holds that chunk's encoding, as CloudVolume would write it
        np.testing.assert_array_equal(ba.decode_chunk(ref, stored[ref.key]), ba.read(ref.box))

    ours = ba[:, :, :]
    vol = cloudvolume.open(url)
    np.testing.assert_array_equal(cv_read(vol), ours)
    np.testing.assert_array_equal(cv_read(vol, CROSSING), ours[CROSSING.slices_in(BOUNDS)])
    assert_read_back(ours, data, case)
