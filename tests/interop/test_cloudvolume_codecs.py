"""bigarrays <-> CloudVolume on local directories for compresso, crackle, jxl, fpzip, kempressed,
zfpc and brotli (:mod:`tests.interop.codec_cases`).

Both directions, plus the chunks themselves: for every case both tools write the same
encoded bytes for the same data (the same library call underneath), so each decodes the
other's chunks exactly as it decodes its own. Lossless cases read back the data written;
lossy ones (jxl below quality 100, fpzip with fewer bits, zfpc with a tolerance) read back
what CloudVolume decodes from the same bytes. CloudVolume's own quirks are pinned down
(three-channel jxl, float64 zfpc) rather than hidden.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc

from .codec_cases import CASES, CodecCase, cv_info, sample, stored_payload

pytestmark = pytest.mark.interop

#: 70 x 40 x 20 voxels from (-30, 5, -7) in 32 x 32 x 16 chunks: 3 x 2 x 2 chunks, edges clipped.
SIZE, CHUNK, OFFSET = (70, 40, 20), (32, 32, 16), (-30, 5, -7)
BOUNDS = bc.Box(OFFSET, (40, 45, 13))
CROSSING = bc.Box((-10, 20, 0), (35, 45, 13))


def cv(path: Path, **options: Any) -> Any:
    from cloudvolume import CloudVolume  # type: ignore[import-untyped]

    kw: dict[str, Any] = {"fill_missing": False, "progress": False, "parallel": 1, **options}
    return CloudVolume(f"file://{path}", **kw)


def cv_read(vol: Any, box: bc.Box = BOUNDS) -> np.ndarray:
    (x0, y0, z0), (x1, y1, z1) = box.start, box.stop
    return np.asarray(vol[x0:x1, y0:y1, z0:z1])


def cv_write(path: Path, case: CodecCase, data: np.ndarray) -> None:
    vol = cv(path, info=cv_info(case, SIZE, CHUNK, OFFSET), compress=case.cv_compress)
    vol.commit_info()
    (x0, y0, z0), (x1, y1, z1) = BOUNDS.start, BOUNDS.stop
    vol[x0:x1, y0:y1, z0:z1] = data


def ba_write(path: Path, case: CodecCase, data: np.ndarray) -> bc.BigArray:
    ba = bc.create(str(path), dtype=case.dtype, size=SIZE, chunk_size=CHUNK, voxel_offset=OFFSET,
                   resolution=(8, 8, 40), num_channels=case.channels, encoding=case.encoding,
                   compression=case.ba_compression, encoding_settings=case.settings,
                   compressed_segmentation_block_size=(8, 8, 8))
    ba[:, :, :] = data
    return ba


def chunk_files(path: Path) -> dict[str, bytes]:
    """The chunk files of the dataset's one scale, by name (suffix included)."""
    (scale,) = [d for d in os.listdir(path) if (path / d).is_dir() and d != ".bigarrays"]  # not its lock file
    return {name: (path / scale / name).read_bytes() for name in os.listdir(path / scale)}


def assert_read_back(actual: np.ndarray, data: np.ndarray, case: CodecCase) -> None:
    if case.lossless and case.encoding != "kempressed":
        np.testing.assert_array_equal(actual, data)
    else:  # jxl / fpzip / zfpc lossy: close; kempressed: (2 + v) - 2, rounded near 2
        tolerance = 24 if case.encoding == "jxl" else 0.02
        assert np.abs(actual.astype(float) - data.astype(float)).max() <= tolerance


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bigarrays_reads_what_cloudvolume_writes(tmp_path: Path, case: CodecCase, rng: np.random.Generator) -> None:
    data = sample(case, BOUNDS.shape, rng)
    cv_write(tmp_path, case, data)
    assert {name[name.rfind("-"):].partition(".")[2] for name in chunk_files(tmp_path)} == {case.suffix[1:]}
    theirs = cv_read(cv(tmp_path))
    ba = bc.open(str(tmp_path), fill_missing=False)
    assert ba.encoding == case.encoding and ba.dtype == np.dtype(case.dtype)
    ours = ba[:, :, :]
    # The same bytes, decoded alike; and a region crossing chunks (region decoders) agrees.
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ba.read(CROSSING), theirs[CROSSING.slices_in(BOUNDS)])
    assert_read_back(ours, data, case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_cloudvolume_reads_what_bigarrays_writes(tmp_path: Path, case: CodecCase, rng: np.random.Generator) -> None:
    data = sample(case, BOUNDS.shape, rng)
    ba = ba_write(tmp_path, case, data)
    assert {name[name.rfind("-"):].partition(".")[2] for name in chunk_files(tmp_path)} == {case.suffix[1:]}
    ours = ba[:, :, :]
    theirs = cv_read(cv(tmp_path))
    np.testing.assert_array_equal(theirs, ours)
    np.testing.assert_array_equal(cv_read(cv(tmp_path), CROSSING), ours[CROSSING.slices_in(BOUNDS)])
    assert_read_back(ours, data, case)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_both_encode_the_same_bytes(tmp_path: Path, case: CodecCase, rng: np.random.Generator) -> None:
    """Byte compression aside (gzip levels differ), every chunk either tool writes is the same.

    Except crackle's memory-order flag: CloudVolume hands the library a C-ordered copy of each
    chunk, bigarrays a Fortran-ordered one, and crackle records which; the labels are the same.
    """
    import crackle

    data = sample(case, BOUNDS.shape, rng)
    cv_write(tmp_path / "cv", case, data)
    ba_write(tmp_path / "ba", case, data)
    theirs, ours = chunk_files(tmp_path / "cv"), chunk_files(tmp_path / "ba")
    assert sorted(theirs) == sorted(ours) and len(ours) == 12
    for name in ours:
        mine, other = stored_payload(ours[name], case.suffix), stored_payload(theirs[name], case.suffix)
        if case.encoding == "crackle":
            assert crackle.header(mine).fortran_order and not crackle.header(other).fortran_order
            np.testing.assert_array_equal(crackle.decompress(mine), crackle.decompress(other))
        else:
            assert mine == other, name


def test_three_channel_jxl_from_cloudvolume_is_read_as_written(tmp_path: Path, rng: np.random.Generator) -> None:
    """CloudVolume stores three-channel jxl as three frames and reads its own chunks back with the
    channels scrambled; bigarrays reads the three channels CloudVolume was given."""
    case = CodecCase("jxl", "uint8", channels=3, settings={"jxl_quality": 100}, compression=None)
    data = sample(case, BOUNDS.shape, rng)
    cv_write(tmp_path, case, data)
    np.testing.assert_array_equal(bc.open(str(tmp_path))[:, :, :], data)
    assert not np.array_equal(cv_read(cv(tmp_path)), data)  # CloudVolume 12's quirk


def test_float64_zfpc_is_read_as_float32_by_cloudvolume(tmp_path: Path, rng: np.random.Generator) -> None:
    """zfpc's decoder (CloudVolume's) returns float32 whatever the stream holds; bigarrays decodes
    the stream's own type, so float64 survives exactly."""
    case = CodecCase("zfpc", "float64")
    data = sample(case, BOUNDS.shape, rng)
    ba = ba_write(tmp_path, case, data)
    np.testing.assert_array_equal(ba[:, :, :], data)
    np.testing.assert_array_equal(cv_read(cv(tmp_path)), data.astype(np.float32).astype(np.float64))


def test_a_cloudvolume_scale_bigarrays_cannot_read_does_not_block_the_others(tmp_path: Path,
                                                                            rng: np.random.Generator) -> None:
    """CloudVolume's mip 1 in its historical ``npz`` encoding: mip 0 opens and reads; mip 1 fails alone."""
    case = CodecCase("raw", "uint8")
    data = sample(case, BOUNDS.shape, rng)
    cv_write(tmp_path, case, data)
    vol = cv(tmp_path)
    vol.add_scale((2, 2, 1), chunk_size=CHUNK, encoding="raw")
    vol.commit_info()
    info = json.loads((tmp_path / "info").read_text())
    info["scales"][1]["encoding"] = "npz"
    (tmp_path / "info").write_text(json.dumps(info))
    ba = bc.open(str(tmp_path))
    np.testing.assert_array_equal(ba[:, :, :], data)
    key = info["scales"][1]["key"]
    with pytest.raises(bc.InfoError, match=rf"scales\[1\].encoding: unknown encoding 'npz'.*key '{key}'"):
        ba.at_mip(1)
