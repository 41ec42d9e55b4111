"""``bigarrays ingest`` end to end: TIFF stacks, .npy, precomputed, mips, compatibility, resuming."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from tests.cli.conftest import run_bigarrays


def _volume(shape: tuple[int, ...], dtype: str = "uint8", seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 200, size=shape).astype(dtype)


def _tiff_dir(root: Path, vol: np.ndarray) -> Path:
    """One single-page TIFF per z, pages (y, x), names that sort numerically only when padded."""
    d = root / "stack"
    d.mkdir()
    for z in range(vol.shape[2]):
        tifffile.imwrite(d / f"slice_{z:04d}.tif", np.ascontiguousarray(vol[:, :, z].T))
    return d


def test_ingest_npy_with_mips(cli, tmp_path: Path) -> None:
    vol = _volume((70, 50, 20), "uint16")
    np.save(tmp_path / "v.npy", vol)
    dest = str(tmp_path / "out")
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--chunk-size", "32", "32", "8", "--resolution", "4", "4", "40",
            "--mips", "3", "--compression", "zstd", "--quiet")
    assert r.code == 0, r.err
    assert "written" in r.out
    ba = bc.open(dest)
    assert ba.shape == (70, 50, 20, 1) and ba.dtype == np.uint16 and ba.num_mips == 3
    assert ba.resolution == (4, 4, 40) and ba.compression["id"] == "zstd"
    np.testing.assert_array_equal(ba[:, :, :, 0], vol)
    m1 = ba.at_mip(1)
    assert m1.shape == (35, 25, 20, 1)
    expected = np.rint(vol.reshape(35, 2, 25, 2, 20).mean(axis=(1, 3))).astype(np.uint16)
    np.testing.assert_array_equal(m1[:, :, :, 0], expected)
    # mip 2: 35 -> 18 (the odd last column is averaged with itself, not with zeros)
    m2 = ba.at_mip(2)[:, :, :, 0]
    assert m2.shape == (18, 13, 20)
    assert m2[17, 0, 0] == np.uint16(np.rint(expected[34, 0:2, 0].astype(float).mean()))
    assert ba.missing_chunks() == m1.missing_chunks() == bc.open(dest, mip=2).missing_chunks() == []


def test_ingest_tiff_directory_transposes_pages(cli, tmp_path: Path) -> None:
    vol = _volume((40, 24, 9))
    src = _tiff_dir(tmp_path, vol)
    dest = str(tmp_path / "out")
    r = cli("ingest", str(src), dest, "--chunk-size", "16", "16", "4", "--voxel-offset", "-8", "100", "3", "--quiet")
    assert r.code == 0, r.err
    ba = bc.open(dest)
    assert ba.voxel_offset == (-8, 100, 3) and ba.shape == (40, 24, 9, 1)
    np.testing.assert_array_equal(ba[-8:32, 100:124, 3:12, 0], vol)


def test_ingest_multipage_tiff_and_segmentation_striding(cli, tmp_path: Path) -> None:
    labels = np.repeat(np.repeat(_volume((8, 8, 6), "uint64", seed=2) + 2**40, 4, axis=0), 4, axis=1)
    tifffile.imwrite(tmp_path / "seg.tif", np.ascontiguousarray(labels.transpose(2, 1, 0)))
    dest = str(tmp_path / "seg")
    r = cli("ingest", str(tmp_path / "seg.tif"), dest, "--encoding", "compressed_segmentation",
            "--chunk-size", "16", "16", "4", "--mips", "2", "--quiet")
    assert r.code == 0, r.err
    ba = bc.open(dest)
    assert ba.parsed_info.layer_type == "segmentation" and ba.encoding == "compressed_segmentation"
    np.testing.assert_array_equal(ba[:, :, :, 0], labels)
    np.testing.assert_array_equal(ba.at_mip(1)[:, :, :, 0], labels[::2, ::2])  # labels, never averages


def test_ingest_from_precomputed_keeps_its_geometry(cli, tmp_path: Path) -> None:
    src = str(tmp_path / "src")
    ba = bc.create(src, dtype="float32", size=(33, 20, 10), chunk_size=(16, 16, 8), resolution=(5, 6, 7),
                   voxel_offset=(-1, -2, -3))
    vol = np.random.default_rng(7).random((33, 20, 10), dtype=np.float32)
    ba[:, :, :] = vol
    dest = (tmp_path / "copy").as_uri()
    assert cli("ingest", src, dest, "--quiet").code == 0
    out = bc.open(dest)
    assert (out.voxel_offset, out.chunk_size, out.resolution) == ((-1, -2, -3), (16, 16, 8), (5, 6, 7))
    np.testing.assert_array_equal(out[:, :, :, 0], vol)


def test_ingest_into_an_incompatible_dataset_is_refused(cli, tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _volume((32, 32, 8)))
    dest = str(tmp_path / "out")
    bc.create(dest, dtype="uint8", size=(32, 32, 8), chunk_size=(16, 16, 8))
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--chunk-size", "32", "32", "8")
    assert r.code == 1 and "chunk_size" in r.err and "(16, 16, 8)" in r.err
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--voxel-offset", "8", "0", "0")
    assert r.code == 1 and "does not fit" in r.err and "[8:40,0:32,0:8]" in r.err
    assert bc.open(dest).missing_chunks() == bc.open(dest).chunks()  # nothing was written
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--mips", "2", "--method", "max", "--quiet")
    assert r.code == 0, r.err  # a scale the dataset lacks is added (create's geometry) and filled
    vol = np.load(tmp_path / "v.npy")
    assert bc.open(dest).num_mips == 2
    np.testing.assert_array_equal(bc.open(dest, mip=1)[:, :, :, 0], vol.reshape(16, 2, 16, 2, 8).max(axis=(1, 3)))


def test_ingest_refuses_values_that_do_not_fit(cli, tmp_path: Path) -> None:
    vol = _volume((16, 16, 4), "uint16")
    vol[3, 4, 1] = 300
    np.save(tmp_path / "v.npy", vol)
    r = cli("ingest", str(tmp_path / "v.npy"), str(tmp_path / "out"), "--dtype", "uint8", "--quiet")
    assert r.code == 1 and "uint8" in r.err and "300" in r.err
    ok = tmp_path / "ok.npy"
    np.save(ok, (vol % 200).astype(np.uint16))
    assert cli("ingest", str(ok), str(tmp_path / "out2"), "--dtype", "uint8", "--quiet").code == 0
    np.testing.assert_array_equal(bc.open(str(tmp_path / "out2"))[:, :, :, 0], vol % 200)


def test_ingest_into_part_of_a_bigger_dataset(cli, tmp_path: Path) -> None:
    dest = str(tmp_path / "big")
    ba = bc.create(dest, dtype="uint8", size=(64, 64, 16), chunk_size=(32, 32, 8))
    ba[0:32, 0:32, 0:8] = 9
    vol = _volume((20, 10, 5))
    np.save(tmp_path / "v.npy", vol)
    # Not chunk-aligned: a read-modify-write of the one (missing) chunk it touches.
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--voxel-offset", "40", "3", "2", "--quiet")
    assert r.code == 0, r.err
    assert "1 chunk(s) written (1 partly covered, merged)" in r.out
    expected = np.zeros((64, 64, 16), np.uint8)
    expected[0:32, 0:32, 0:8] = 9
    expected[40:60, 3:13, 2:7] = vol
    np.testing.assert_array_equal(bc.open(dest)[:, :, :, 0], expected)
    # Placed elsewhere, its voxels go in and the chunk's other voxels stay (issue 11: never dropped).
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--voxel-offset", "0", "0", "0", "--quiet")
    assert r.code == 0 and "1 chunk(s) written (1 partly covered, merged)" in r.out
    expected[0:20, 0:10, 0:5] = vol
    np.testing.assert_array_equal(bc.open(dest)[:, :, :, 0], expected)
    # The same ingest again has nothing left to do.
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--voxel-offset", "0", "0", "0", "--quiet")
    assert r.code == 0 and "0 chunk(s) written" in r.out and "1 done by an earlier run" in r.out
    np.testing.assert_array_equal(bc.open(dest)[:, :, :, 0], expected)


def test_interrupted_ingest_resumes_without_rewriting(tmp_path: Path) -> None:
    vol = _volume((48, 40, 24), seed=11)
    src = _tiff_dir(tmp_path, vol)
    dest = tmp_path / "out"
    key = "1_1_1"
    # A directory where a chunk of the second z-slab goes makes the first run fail there.
    obstacle = dest / key / "16-32_16-32_8-16"
    obstacle.mkdir(parents=True)
    args = ["ingest", str(src), str(dest), "--chunk-size", "16", "16", "8", "--mips", "2", "--quiet"]
    r = run_bigarrays(args)
    assert r.code == 1 and "16-32_16-32_8-16" in r.err and "Traceback" not in r.err
    first_slab = sorted(f"{x}-{x + 16}_{y}-{min(y + 16, 40)}_0-8" for x in (0, 16, 32) for y in (0, 16, 32))
    done = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (dest / key).iterdir() if p.name in first_slab}
    assert sorted(done) == first_slab
    assert not (dest / "2_2_1").exists()
    obstacle.rmdir()
    r = run_bigarrays(args)
    assert r.code == 0, r.err
    # Tasks are z-slabs; the first always finishes (the third may too: tasks run in parallel).
    assert ("9 done by an earlier run" in r.out or "18 done by an earlier run" in r.out) and "written" in r.out
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (dest / key).iterdir()}
    assert {k: after[k] for k in done} == done  # finished chunks untouched (same file, same mtime)
    assert len(after) == 27
    ba = bc.open(str(dest))
    np.testing.assert_array_equal(ba[:, :, :, 0], vol)
    assert bc.open(str(dest), mip=1).missing_chunks() == []
    # A third run has nothing to do.
    r = run_bigarrays(args)
    assert r.code == 0 and "0 chunk(s) written" in r.out and "39 done by an earlier run" in r.out


def test_an_ingest_with_mips_resumed_under_another_pyramid_task_size_builds_every_chunk(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One record covers the ingest and its pyramid; the pyramid's task ``i`` is another box under
    another task size (an earlier version's), so such a record is not resumed: every mip chunk
    is built (read across sizes, it skipped chunks never written)."""
    from bigarrays_core import pyramid

    vol = _volume((256, 256, 16), "uint8")
    np.save(tmp_path / "v.npy", vol)
    dest = str(tmp_path / "out")
    args = ("ingest", str(tmp_path / "v.npy"), dest, "--chunk-size", "16", "16", "8", "--mips", "2", "--quiet")
    monkeypatch.setattr(pyramid, "TASK_TARGET_BYTES", 64 << 10)
    build_part, parts = pyramid._build_part, []

    def interrupted(*a: Any) -> None:
        parts.append(1)
        if len(parts) > 3:
            raise KeyboardInterrupt
        build_part(*a)

    monkeypatch.setattr(pyramid, "_build_part", interrupted)
    assert cli(*args).code == 130
    assert len(parts) == 4  # three pyramid tasks of 8 chunks built and recorded, the fourth interrupted
    monkeypatch.setattr(pyramid, "_build_part", build_part)
    monkeypatch.setattr(pyramid, "TASK_TARGET_BYTES", 256 << 10)
    assert cli(*args).code == 0
    m1 = bc.open(dest, mip=1)
    assert m1.missing_chunks() == []
    np.testing.assert_array_equal(m1[:, :, :, 0], np.rint(vol.reshape(128, 2, 128, 2, 16).mean(axis=(1, 3))))


def test_a_damaged_tiff_is_named_and_a_repaired_source_is_ingested_again(tmp_path: Path) -> None:
    vol = _volume((32, 16, 16), seed=12)
    src = _tiff_dir(tmp_path, vol)
    good = (src / "slice_0013.tif").read_bytes()
    (src / "slice_0013.tif").write_bytes(b"not a tiff")  # the run dies in the second z-slab
    args = ["ingest", str(src), str(tmp_path / "out"), "--chunk-size", "16", "16", "8", "--quiet"]
    r = run_bigarrays(args)
    assert r.code == 1 and "slice_0013.tif" in r.err and "Traceback" not in r.err
    (src / "slice_0013.tif").write_bytes(good)
    # A source file that changed is a new source: nothing recorded for the old one is trusted.
    r = run_bigarrays(args)
    assert r.code == 0 and "4 chunk(s) written" in r.out and "0 done by an earlier run" in r.out, r.out
    np.testing.assert_array_equal(bc.open(str(tmp_path / "out"))[:, :, :, 0], vol)


def test_ingest_shows_progress(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _volume((32, 32, 16)))
    r = run_bigarrays(["ingest", str(tmp_path / "v.npy"), str(tmp_path / "out"), "--chunk-size", "16", "16", "8"])
    assert r.code == 0, r.err
    assert "8/8" in r.err and "chunk" in r.err  # tqdm's bar on stderr


def test_tiff_directory_with_mismatched_page_is_named(cli, tmp_path: Path) -> None:
    src = _tiff_dir(tmp_path, _volume((16, 16, 4)))
    tifffile.imwrite(src / "slice_0002.tif", np.zeros((8, 16), np.uint8))
    r = cli("ingest", str(src), str(tmp_path / "out"), "--quiet")
    assert r.code == 1 and "slice_0002.tif" in r.err and "(8, 16)" in r.err


def test_empty_tiff_directory_is_named(cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = cli("ingest", str(tmp_path / "empty"), str(tmp_path / "out"))
    assert r.code == 1 and "empty" in r.err and ".tif" in r.err
    assert not os.path.exists(tmp_path / "out")


# -- voxels are never dropped, sparse stays sparse (issue 11) --------------------------------------------


def _chunk_keys(url: str, mip: int = 0) -> set[str]:
    ba = bc.open(url, mip=mip)
    return {k for k in ba.store.list(ba.key + "/")}


def test_two_tiles_meeting_inside_a_chunk_keep_every_voxel(cli, tmp_path: Path) -> None:
    """Tile B starts at x=40, inside the chunk [32:64] that tile A already wrote."""
    dest = str(tmp_path / "mosaic")
    bc.create(dest, dtype="uint16", size=(96, 40, 12), chunk_size=(32, 16, 8), num_mips=2)
    a = _volume((40, 40, 12), "uint16", seed=1) + 1
    b = _volume((56, 40, 12), "uint16", seed=2) + 1
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    assert cli("ingest", str(tmp_path / "a.npy"), dest, "--mips", "2", "--quiet").code == 0
    r = cli("ingest", str(tmp_path / "b.npy"), dest, "--voxel-offset", "40", "0", "0", "--mips", "2", "--quiet")
    assert r.code == 0, r.err
    got = bc.open(dest)[:, :, :, 0]
    np.testing.assert_array_equal(got[0:40], a)
    np.testing.assert_array_equal(got[40:96], b)
    # The mip-1 chunk across the seam was made again from both tiles, not kept from the first.
    mean = got.reshape(48, 2, 20, 2, 12).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal(bc.open(dest, mip=1)[:, :, :, 0], np.rint(mean).astype(np.uint16))


def test_mips_over_two_aligned_tiles_are_made_from_both(cli, tmp_path: Path) -> None:
    """The tiles meet on a mip-0 chunk boundary (x=32) that lies inside a mip-1 chunk."""
    dest = str(tmp_path / "mosaic")
    bc.create(dest, dtype="uint8", size=(128, 32, 8), chunk_size=(32, 32, 8), num_mips=2)
    a, b = _volume((32, 32, 8), seed=3) + 1, _volume((96, 32, 8), seed=4) + 1
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    assert cli("ingest", str(tmp_path / "a.npy"), dest, "--mips", "2", "--quiet").code == 0
    assert cli("ingest", str(tmp_path / "b.npy"), dest, "--voxel-offset", "32", "0", "0", "--mips", "2",
               "--quiet").code == 0
    mip0 = np.concatenate([a, b]).astype(np.float64)
    expected = np.rint(mip0.reshape(64, 2, 16, 2, 8).mean(axis=(1, 3))).astype(np.uint8)
    np.testing.assert_array_equal(bc.open(dest, mip=1)[:, :, :, 0], expected)


def test_partial_blocks_at_the_edges_average_the_voxels_they_have(cli, tmp_path: Path) -> None:
    """Factor 3 on x from offset 1: blocks [0:3) and [6:9) hold 2 and 2 of the 7 voxels 1..7."""
    vol = np.arange(1, 8, dtype=np.uint8).reshape(7, 1, 1) * np.array([10], np.uint8)
    np.save(tmp_path / "v.npy", vol)
    dest = str(tmp_path / "out")
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--voxel-offset", "1", "0", "0", "--downsample", "3", "1", "1",
            "--mips", "2", "--quiet")
    assert r.code == 0, r.err
    m1 = bc.open(dest, mip=1)
    assert m1.bounds == Box((0, 0, 0), (3, 1, 1))
    # x 1,2 -> (10+20)/2 = 15; x 3,4,5 -> 40; x 6,7 -> (60+70)/2 = 65
    assert m1[:, 0, 0, 0].tolist() == [15, 40, 65]


def test_copy_of_a_sparse_dataset_stores_only_its_chunks(cli, tmp_path: Path) -> None:
    src = str(tmp_path / "src")
    ba = bc.create(src, dtype="uint8", size=(128, 128, 32), chunk_size=(32, 32, 32), compression="gzip")
    ba[0:32, 0:32, 0:32] = 5
    ba[64:96, 96:128, 0:32] = _volume((32, 32, 32), seed=4)
    ba[96:128, 0:32, 0:32] = 0  # stored, but all zeros: not copied unless asked
    dest = str(tmp_path / "copy")
    r = cli("ingest", src, dest, "--quiet")
    assert r.code == 0, r.err
    want = {f"{ba.key}/0-32_0-32_0-32", f"{ba.key}/64-96_96-128_0-32"}
    assert _chunk_keys(dest) == want
    np.testing.assert_array_equal(bc.open(dest)[:, :, :], ba[:, :, :])
    again = str(tmp_path / "copy2")
    assert cli("ingest", src, again, "--write-empty", "--quiet").code == 0
    assert _chunk_keys(again) == want | {f"{ba.key}/96-128_0-32_0-32"}  # missing stays missing even so


def test_mips_of_a_sparse_volume_store_only_chunks_with_data(cli, tmp_path: Path) -> None:
    vol = np.zeros((128, 64, 16), np.uint8)
    vol[5:20, 3:9, 2:7] = 200  # data in the first chunk of mip 0 and of mip 1 only
    np.save(tmp_path / "v.npy", vol)
    dest = str(tmp_path / "out")
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--chunk-size", "16", "16", "16", "--mips", "3", "--quiet")
    assert r.code == 0, r.err
    ba = bc.open(dest)
    assert _chunk_keys(dest, 0) == {f"{ba.key}/0-16_0-16_0-16", f"{ba.key}/16-32_0-16_0-16"}
    assert _chunk_keys(dest, 1) == {f"{ba.at_mip(1).key}/0-16_0-16_0-16"}
    assert _chunk_keys(dest, 2) == {f"{ba.at_mip(2).key}/0-16_0-16_0-16"}
    np.testing.assert_array_equal(ba[:, :, :, 0], vol)


def test_tiff_directory_sorts_numbers_naturally(cli, tmp_path: Path) -> None:
    vol = _volume((16, 8, 12), seed=9)
    d = tmp_path / "stack"
    d.mkdir()
    for z in range(vol.shape[2]):  # img_2 must come before img_10
        tifffile.imwrite(d / f"img_{z}.tif", np.ascontiguousarray(vol[:, :, z].T))
    assert cli("ingest", str(d), str(tmp_path / "out"), "--quiet").code == 0
    np.testing.assert_array_equal(bc.open(str(tmp_path / "out"))[:, :, :, 0], vol)


def test_ingest_sharded_writes_sharded_scales_that_tensorstore_reads(cli, tmp_path: Path) -> None:
    import tensorstore as ts

    vol = _volume((96, 80, 24), "uint16", seed=5)
    np.save(tmp_path / "v.npy", vol)
    dest = tmp_path / "out"
    args = ("ingest", str(tmp_path / "v.npy"), str(dest), "--chunk-size", "16", "16", "8", "--mips", "2",
            "--sharded", "--quiet")
    r = cli(*args)
    assert r.code == 0, r.err
    ba = bc.open(str(dest))
    assert ba.sharding is not None and ba.at_mip(1).sharding is not None
    assert all(s.get("sharding") for s in ba.info["scales"])
    np.testing.assert_array_equal(ba[:, :, :, 0], vol)
    assert not list(dest.joinpath(ba.key).glob("*-*_*-*_*-*"))  # shard files, no chunk files
    spec = {"driver": "neuroglancer_precomputed", "kvstore": f"file://{dest}", "scale_index": 1}
    with_ts = ts.open(spec, read=True).result()[ts.d["channel"][0]].read(order="F").result()
    np.testing.assert_array_equal(with_ts, ba.at_mip(1)[:, :, :, 0])
    # Run again: finished, nothing rewritten.
    again = cli(*args)
    assert again.code == 0, again.err
    assert "0 chunk(s) written" in again.out


def test_ingest_sharded_into_an_unsharded_dataset_is_refused(cli, tmp_path: Path) -> None:
    vol = _volume((32, 32, 8))
    np.save(tmp_path / "v.npy", vol)
    dest = str(tmp_path / "out")
    assert cli("ingest", str(tmp_path / "v.npy"), dest, "--chunk-size", "16", "16", "8", "--quiet").code == 0
    before = sorted(p.name for p in (tmp_path / "out").rglob("*"))
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--sharded", "--quiet")
    assert r.code != 0 and "sharding" in r.err and "unsharded" in r.err
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == before
