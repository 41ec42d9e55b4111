"""``bc.transfer``: copies that re-chunk, re-encode, re-compress or crop, never lose a voxel,
skip what the source does not store, resume, and verify."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core import task_grid
from bigarrays_core.format import read_info
from tests.core.datasets import make, random_values
from tests.progress import StopAfter

from .reference import segmentation


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.fixture
def source(tmp_path: Path, rng: np.random.Generator) -> bc.BigArray:
    """A 3-scale uint16 image with a foreign info field and two missing chunks."""
    ba = make(str(tmp_path / "src"), dtype="uint16", size=(100, 90, 30), voxel_offset=(-20, 4, 2),
              chunk_size=(16, 16, 8), resolution=(4, 4, 40), num_mips=3, compression="zstd")
    ba[:, :, :] = random_values(rng, (100, 90, 30), "uint16")
    ba.store.delete_many([ba.chunks()[0].key, ba.chunks()[5].key])
    bc.downsample(ba)
    info = json.loads(ba.store.get("info"))
    info["mesh"] = "mesh"  # something bigarrays does not know: kept in copies
    ba.store.set("info", json.dumps(info).encode())
    return bc.open(ba.url)


def test_a_whole_copy_rechunked_and_recompressed(tmp_path: Path, source: bc.BigArray) -> None:
    report = bc.transfer(source.url, str(tmp_path / "dst"), chunk_size=(32, 32, 32), compression="gzip",
                         verify=True)
    dst = bc.open(str(tmp_path / "dst"))
    assert dst.num_mips == 3 and dst.info["mesh"] == "mesh"
    for k in range(3):
        a, b = source.at_mip(k), dst.at_mip(k)
        assert (b.chunk_size, b.compression["id"], b.bounds, b.resolution) == ((32, 32, 32), "gzip", a.bounds,
                                                                               a.resolution)
        np.testing.assert_array_equal(b[:, :, :], a[:, :, :])
    # The two missing source chunks share no destination chunk with stored ones, except where they do:
    assert report.written == sum(len(dst.at_mip(k).chunks()) for k in range(3))
    # Done: running it again writes nothing, overwrite copies everything again.
    again = bc.transfer(source, str(tmp_path / "dst"))
    assert (again.written, again.done_before) == (0, report.written)
    assert bc.transfer(source, str(tmp_path / "dst"), overwrite=True).written == report.written


def test_missing_chunks_stay_missing(tmp_path: Path, source: bc.BigArray) -> None:
    bc.transfer(source, str(tmp_path / "dst"), mips=1)  # same chunk grid
    dst = bc.open(str(tmp_path / "dst"))
    assert dst.num_mips == 1
    assert [r.key for r in dst.missing_chunks()] == [source.chunks()[0].key, source.chunks()[5].key]


def test_a_region_into_new_bounds_and_regions_meeting_inside_chunks(tmp_path: Path, source: bc.BigArray) -> None:
    """Two regions whose edges fall inside destination chunks: both keep every voxel."""
    dst = str(tmp_path / "dst")
    bc.transfer(source, dst, mips=2, region="-13:30,10:50,3:20", bounds="-20:60,0:64,0:32", chunk_size=(32, 32, 16))
    bc.transfer(source, dst, mips=2, region="30:70,10:50,3:20")
    out = bc.open(dst)
    assert out.bounds == bc.Box((-20, 0, 0), (60, 64, 32)) and out.at_mip(1).bounds == bc.Box((-10, 0, 0),
                                                                                                (30, 32, 32))
    want = np.zeros((80, 64, 32, 1), np.uint16)
    want[7:80, 10:50, 3:20] = source[-13:60, 10:50, 3:20]  # the second region is clipped at x=60
    np.testing.assert_array_equal(out[:, :, :], want)
    m1 = out.at_mip(1)
    np.testing.assert_array_equal(m1[-7:30, 5:25, 3:20], source.at_mip(1)[-7:30, 5:25, 3:20])


def test_an_interrupted_transfer_resumes(tmp_path: Path, source: bc.BigArray) -> None:
    with pytest.raises(KeyboardInterrupt):
        bc.transfer(source, str(tmp_path / "dst"), compression=None, progress=StopAfter(10))
    report = bc.transfer(source, str(tmp_path / "dst"), compression=None, verify=True)
    assert report.done_before >= 10 and report.written > 0
    dst = bc.open(str(tmp_path / "dst"))
    assert dst.compression is None
    for k in range(3):
        np.testing.assert_array_equal(dst.at_mip(k)[:, :, :], source.at_mip(k)[:, :, :])


def test_a_transfer_resumed_under_another_task_cut_copies_every_chunk(tmp_path: Path, source: bc.BigArray,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The record knows tasks by index; one made under another cut of the tasks (an earlier
    version's) is not read as this job's."""
    monkeypatch.setattr(task_grid, "ROWS_MIN_UNITS", 1)
    monkeypatch.setattr(task_grid, "ROWS_MAX_ROW", 1)  # a task per chunk
    with pytest.raises(KeyboardInterrupt):
        bc.transfer(source, str(tmp_path / "dst"), compression=None, progress=StopAfter(6))
    monkeypatch.undo()
    report = bc.transfer(source, str(tmp_path / "dst"), compression=None)
    assert report.done_before == 0
    dst = bc.open(str(tmp_path / "dst"))
    for k in range(3):
        np.testing.assert_array_equal(dst.at_mip(k)[:, :, :], source.at_mip(k)[:, :, :])


def test_verify_names_the_first_voxel_that_differs(tmp_path: Path, source: bc.BigArray) -> None:
    bc.transfer(source, str(tmp_path / "dst"), mips=1)
    dst = bc.open(str(tmp_path / "dst"))
    dst[12:28, 20:36, 2:10] = 0
    with pytest.raises(bc.BigArraysError, match=r"differs .* first at voxel \[12, 20, 2\]"):
        bc.transfer(source, str(tmp_path / "dst"), mips=1, verify=True)


def test_a_segmentation_re_encoded(tmp_path: Path, rng: np.random.Generator) -> None:
    seg = make(str(tmp_path / "seg"), dtype="uint64", size=(64, 48, 16), chunk_size=(32, 32, 16))
    labels = segmentation(rng, (64, 48, 16), cells=8)
    seg[:, :, :] = labels
    bc.transfer(seg, str(tmp_path / "cseg"), encoding="compressed_segmentation", compression=None, verify=True)
    out = bc.open(str(tmp_path / "cseg"))
    assert out.encoding == "compressed_segmentation"
    assert out.scale.compressed_segmentation_block_size == (8, 8, 8)
    np.testing.assert_array_equal(out[:, :, :, 0], labels)
    with pytest.raises(ValueError, match="jpeg"):
        bc.transfer(make(str(tmp_path / "img"), size=(32, 32, 8), chunk_size=(32, 32, 8)),
                    str(tmp_path / "jpg"), encoding="jpeg", verify=True)


def test_bad_transfers_are_refused_before_writing(tmp_path: Path, source: bc.BigArray) -> None:
    other = make(str(tmp_path / "u8"), dtype="uint8", size=(100, 90, 30), voxel_offset=(-20, 4, 2))
    with pytest.raises(bc.InfoError, match="uint8"):
        bc.transfer(source, other.url)
    bc.transfer(source, str(tmp_path / "dst"), mips=1)
    with pytest.raises(bc.InfoError, match="chunk size"):
        bc.transfer(source, str(tmp_path / "dst"), mips=1, chunk_size=(8, 8, 8))
    with pytest.raises(bc.InfoError, match="bounds= applies to a new destination"):
        bc.transfer(source, str(tmp_path / "dst"), mips=1, bounds="0:10,0:10,0:10")
    with pytest.raises(bc.OutOfBoundsError, match="nothing to copy"):
        bc.transfer(source, str(tmp_path / "dst"), mips=1, region="500:600,0:10,0:10")
    with pytest.raises(ValueError, match="mips must be"):
        bc.transfer(source, str(tmp_path / "dst"), mips=4)
    with pytest.raises(bc.InfoError, match="encoding"):
        bc.transfer(source, str(tmp_path / "new"), encoding="compressed_segmentation")  # uint16 cannot
    assert not (tmp_path / "new" / "info").exists()
    assert read_info(bc.open(str(tmp_path / "dst")).store).scales[0].chunk_size == (16, 16, 8)


def test_encoding_settings_follow_the_encoding(tmp_path: Path, source: bc.BigArray) -> None:
    # uint16 into PNG at level 9: the setting is written, and copied on when the encoding is kept.
    bc.transfer(source, str(tmp_path / "png"), mips=1, encoding="png", encoding_settings={"png_level": 9},
                verify=True)
    png = bc.open(str(tmp_path / "png"))
    assert png.info["scales"][0]["png_level"] == 9
    bc.transfer(png, str(tmp_path / "png2"))
    assert bc.open(str(tmp_path / "png2")).info["scales"][0]["png_level"] == 9
    # A change of encoding drops the old encoding's settings.
    bc.transfer(png, str(tmp_path / "raw"), encoding="raw", verify=True)
    assert "png_level" not in bc.open(str(tmp_path / "raw")).info["scales"][0]
    # A setting of another encoding, or settings for an existing destination: refused, nothing written.
    with pytest.raises(bc.InfoError, match="jpeg_quality") as err:
        bc.transfer(source, str(tmp_path / "bad"), encoding="png", encoding_settings={"jpeg_quality": 90})
    assert err.value.field == "jpeg_quality" and not (tmp_path / "bad" / "info").exists()
    with pytest.raises(bc.InfoError, match="new destination only"):
        bc.transfer(source, str(tmp_path / "png"), mips=1, encoding_settings={"png_level": 1})
    assert bc.open(str(tmp_path / "png")).info["scales"][0]["png_level"] == 9
