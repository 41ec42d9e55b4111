"""Downsampling (``bigarrays_core.downsampling``) and pyramid builds (``bc.downsample``) against
the numpy reference of :mod:`tests.pyramid.reference`: every method, odd sizes, offsets that
are not multiples of the factor, anisotropic factors, sparse volumes, region refreshes,
interrupted builds, scales added to the info."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core import pyramid
from bigarrays_core.downsampling import downsample_block
from bigarrays_core.format import create_info
from bigarrays_core.geometry import Box
from bigarrays_core.pyramid import mip_stages
from bigarrays_core.resume import PROGRESS_PREFIX
from bigarrays_core.scale_writer import WriteReport
from tests.core.datasets import make, random_values
from tests.progress import StopAfter

from .reference import pyramid_reference, reference, segmentation

METHODS = ["average", "mode", "min", "max", "stride"]
GEOMETRIES = [
    ((0, 0, 0), (8, 6, 4), (2, 2, 1)),       # whole blocks: the fast kernels
    ((4, -2, 0), (6, 4, 6), (2, 2, 3)),      # whole blocks, 12 voxels each (no power of two)
    ((-8, 2, 2), (4, 8, 4), (2, 2, 2)),
    ((-7, 3, 5), (9, 7, 5), (2, 2, 2)),       # odd sizes, offsets not multiples of the factor
    ((1, -4, 2), (10, 5, 3), (3, 2, 4)),      # anisotropic, partial blocks at both ends
]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261202)


@pytest.fixture(params=["memory", "file"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"memory://pyramid-{uuid.uuid4().hex}" if request.param == "memory" else f"file://{tmp_path / 'ds'}"


def _data(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, method: str) -> np.ndarray:
    if method == "mode" and np.dtype(dtype).kind in "iu":  # few values: real ties and majorities
        return np.asfortranarray(rng.integers(0, 4, size=shape).astype(dtype))
    return np.asfortranarray(random_values(rng, shape, dtype))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int32", "uint32", "int64", "uint64", "float32",
                                   "float64", "bool"])
@pytest.mark.parametrize(("start", "shape", "factor"), GEOMETRIES)
@pytest.mark.parametrize("method", METHODS)
def test_downsample_block_matches_the_reference(rng: np.random.Generator, dtype: str, start: tuple[int, int, int],
                                                shape: tuple[int, int, int], factor: tuple[int, int, int],
                                                method: str) -> None:
    box = Box.from_shape(start, shape)
    data = _data(rng, shape + (2,), dtype, method)
    got, got_box = downsample_block(data, box, factor, method)
    want = reference(data, box, factor, method)
    assert got_box == Box(tuple(a // f for a, f in zip(box.start, factor)),
                          tuple(-(-b // f) for b, f in zip(box.stop, factor)))
    assert got.dtype == data.dtype and got.shape == want.shape and got.flags.f_contiguous
    if dtype == "float64" and method == "average":  # summed in float64: rounding errors of the sum
        np.testing.assert_allclose(got, want, rtol=0, atol=16 * np.finfo(np.float64).eps * np.abs(data).max())
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("start", "shape", "factor"), GEOMETRIES + [((3, 1, 0), (21, 19, 6), (2, 2, 1))])
@pytest.mark.parametrize("ignore_zero", [False, True])
def test_mode_of_segmentation_like_labels(rng: np.random.Generator, start: tuple[int, int, int],
                                          shape: tuple[int, int, int], factor: tuple[int, int, int],
                                          ignore_zero: bool) -> None:
    box = Box.from_shape(start, shape)
    labels = segmentation(rng, shape, cells=6, background=0.6)[..., None]
    got, _ = downsample_block(labels, box, factor, "mode", ignore_zero=ignore_zero)
    np.testing.assert_array_equal(got, reference(labels, box, factor, "mode", ignore_zero))


def test_mode_breaks_ties_to_the_smallest_and_skips_zeros_only_when_asked() -> None:
    blocks = np.array([[5, 3, 3, 5], [9, 8, 7, 6], [0, 0, 4, 6], [0, 0, 0, 0], [2**64 - 1, 1, 2**64 - 1, 1]],
                      dtype=np.uint64)
    data = np.asfortranarray(np.stack([b.reshape(2, 2, order="F") for b in blocks], axis=2)[..., None])
    box = Box((0, 0, 0), (2, 2, 5))
    got, _ = downsample_block(data, box, (2, 2, 1), "mode")
    assert got[0, 0, :, 0].tolist() == [3, 6, 0, 0, 1]
    got, _ = downsample_block(data, box, (2, 2, 1), "mode", ignore_zero=True)
    assert got[0, 0, :, 0].tolist() == [3, 6, 4, 0, 1]


def test_average_rounds_halves_to_even_exactly_even_for_huge_uint64() -> None:
    data = np.array([1, 2, 3, 4, 5, 6, 2**63, 2**63 + 1], dtype=np.uint64).reshape(8, 1, 1, 1)
    data[6:8] += np.uint64(2**62)
    got, _ = downsample_block(data, Box((0, 0, 0), (8, 1, 1)), (2, 1, 1), "average")
    # (1+2)/2 = 1.5 -> 2, (3+4)/2 = 3.5 -> 4, (5+6)/2 = 5.5 -> 6, (2^63+2^62 + 2^63+2^62+1)/2 -> even
    assert got[:, 0, 0, 0].tolist() == [2, 4, 6, 2**63 + 2**62]
    top = np.full((2, 1, 1, 1), 2**64 - 2, dtype=np.uint64)
    assert downsample_block(top, Box((0, 0, 0), (2, 1, 1)), (2, 1, 1), "average")[0].item() == 2**64 - 2
    neg = np.array([-(2**63), -(2**63) + 1, -3, -4, -5, -6], dtype=np.int64).reshape(6, 1, 1, 1)
    assert downsample_block(neg, Box((0, 0, 0), (6, 1, 1)), (2, 1, 1), "average")[0].ravel().tolist() == [
        -(2**63), -4, -6]  # -3.5 -> -4, -5.5 -> -6 (halves to even, also below zero)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "bool"])
def test_voxel_pairs_read_as_one_wider_integer_average_as_the_reference(rng: np.random.Generator, dtype: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """(2, 2, 1) averages of unsigned 1- and 2-byte voxels read each x pair as one integer of
    twice the width (``average_221_pairs``): whole arrays, views at odd byte offsets
    (unaligned), sub-boxes of a chunk, several channels, every half-way sum; arrays it cannot
    view that way (signed, x not contiguous) take the other kernels, with the same result."""
    from bigarrays_core.kernels import downsample as kernels

    used: list[str] = []
    real = kernels.average_221_pairs

    def counted(*args: object) -> None:
        used.append(dtype)
        real(*args)

    monkeypatch.setattr(kernels, "average_221_pairs", counted)
    data = _data(rng, (66, 14, 5, 3), dtype, "average")
    if dtype != "bool":  # sums at every remainder, the top of the range, halves to even
        top = np.iinfo(data.dtype).max
        data[:8, :2, 0, 0] = np.array([[0, 1, 2, 3, top, top, 1, 2], [1, 0, 1, 3, top, top - 1, 2, 1]]).T
    regions = [(slice(0, 64),), (slice(1, 65), slice(2, 12), slice(1, 4), slice(1, 3)),
               (slice(2, 66), slice(0, 14), slice(0, 5), slice(2, 3))]
    for region in regions:
        view = data[region]
        box = Box.from_shape((-4, 2, 7), view.shape[:3])
        got, _ = downsample_block(view, box, (2, 2, 1), "average")
        np.testing.assert_array_equal(got, reference(view, box, (2, 2, 1), "average"))
    assert len(used) == len(regions)
    for other in (data[::2][:32], data[:64].astype(np.int16 if dtype == "uint16" else np.int8)):
        box = Box.from_shape((0, 0, 0), other.shape[:3])
        got, _ = downsample_block(other, box, (2, 2, 1), "average")
        np.testing.assert_array_equal(got, reference(other, box, (2, 2, 1), "average"))
    assert len(used) == len(regions)


def test_min_and_max_keep_nan_as_numpy() -> None:
    data = np.array([1.0, np.nan, 3.0, 2.0], dtype=np.float32).reshape(4, 1, 1, 1)
    box = Box((0, 0, 0), (4, 1, 1))
    assert np.isnan(downsample_block(data, box, (2, 1, 1), "min")[0][0, 0, 0, 0])
    assert downsample_block(data, box, (2, 1, 1), "max")[0][1, 0, 0, 0] == 3.0


def test_bad_block_arguments_are_named() -> None:
    data = np.zeros((4, 4, 4, 1), np.uint8)
    box = Box((0, 0, 0), (4, 4, 4))
    with pytest.raises(ValueError, match="'median'"):
        downsample_block(data, box, (2, 2, 1), "median")
    with pytest.raises(ValueError, match="ignore_zero goes with method 'mode'"):
        downsample_block(data, box, (2, 2, 1), "average", ignore_zero=True)
    with pytest.raises(ValueError, match="does not hold"):
        downsample_block(data, Box((0, 0, 0), (4, 4, 5)), (2, 2, 1), "average")


# -- pyramid builds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "method"), [("uint16", "average"), ("uint64", "mode"), ("float32", "average"),
                                               ("int16", "min"), ("uint8", "max"), ("uint32", "stride")])
def test_a_build_equals_the_reference_level_by_level(url: str, rng: np.random.Generator, dtype: str,
                                                     method: str) -> None:
    ba = make(url, dtype=dtype, size=(45, 37, 11), voxel_offset=(-7, 3, 5), chunk_size=(8, 8, 4),
              num_mips=4, num_channels=2)
    data = _data(rng, (45, 37, 11, 2), dtype, method)
    ba[:, :, :] = data
    report = bc.downsample(ba, mips=3, method=method)
    assert report.written == sum(len(ba.at_mip(k).chunks()) for k in (1, 2, 3)) and report.empty == 0
    want = pyramid_reference(data, ba.bounds, [(2, 2, 1)] * 3, method)
    for k in (1, 2, 3):
        np.testing.assert_array_equal(ba.at_mip(k)[:, :, :], want[k - 1])


def test_segmentation_mips_are_modes_and_images_averages_with_auto(tmp_path: Path, rng: np.random.Generator) -> None:
    labels = segmentation(rng, (40, 36, 8), cells=9)
    seg = make(str(tmp_path / "seg"), dtype="uint64", size=(40, 36, 8), chunk_size=(16, 16, 8),
               encoding="compressed_segmentation", num_mips=3)
    seg[:, :, :] = labels
    bc.downsample(seg)  # every declared scale, mode for a segmentation
    want = pyramid_reference(labels[..., None], seg.bounds, [(2, 2, 1)] * 2, "mode")
    for k in (1, 2):
        np.testing.assert_array_equal(seg.at_mip(k)[:, :, :], want[k - 1])
    img = make(str(tmp_path / "img"), dtype="uint8", size=(4, 4, 2), chunk_size=(4, 4, 2), num_mips=2)
    img[:, :, :] = np.arange(32, dtype=np.uint8).reshape(4, 4, 2)
    bc.downsample(img)
    assert img.at_mip(1)[0, 0, 0, 0] == 5  # mean of 0, 2, 8, 10 = 5


def test_one_read_many_levels_or_stages_and_pieces_store_the_same_bytes(tmp_path: Path,
                                                                         rng: np.random.Generator) -> None:
    """The default build reads the finest data once for all levels; a tiny task budget splits
    the levels into stages and reads in pieces. Both store exactly the reference's bytes."""
    data = _data(rng, (150, 130, 24, 1), "uint8", "average")
    urls = {}
    for name, budget in (("one-read", 256 << 20), ("pieces", 32 << 10)):
        ba = make(str(tmp_path / name), dtype="uint8", size=(150, 130, 24), voxel_offset=(-16, 8, 1),
                  chunk_size=(16, 16, 8), compression="gzip")
        ba[:, :, :] = data
        stages = mip_stages(ba, create_info(dtype="uint8", size=(150, 130, 24), voxel_offset=(-16, 8, 1),
                                            chunk_size=(16, 16, 8), num_mips=4), 3, max_task_bytes=budget)
        assert stages == ([[1, 2, 3]] if name == "one-read" else [[1, 2], [3]])
        bc.downsample(ba, mips=3, max_task_bytes=budget)
        urls[name] = str(tmp_path / name)
    want = pyramid_reference(data, Box.from_shape((-16, 8, 1), (150, 130, 24)), [(2, 2, 1)] * 3, "average")
    for k in (1, 2, 3):
        a, b = bc.open(urls["one-read"], mip=k), bc.open(urls["pieces"], mip=k)
        np.testing.assert_array_equal(a[:, :, :], want[k - 1])
        keys = sorted(a.store.list(a.key + "/"))
        assert keys == sorted(b.store.list(b.key + "/")) and a.store.get_many(keys) == b.store.get_many(keys)


@pytest.mark.parametrize("sharding", [None, {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 1,
                                              "hash": "identity", "minishard_bits": 1, "shard_bits": 3,
                                              "minishard_index_encoding": "raw", "data_encoding": "gzip"}],
                         ids=["chunks", "shards"])
def test_a_task_built_part_by_part_stores_what_a_task_built_whole_does(tmp_path: Path, rng: np.random.Generator,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         sharding: object) -> None:
    """A task is built in parts of whole top-level write units, each stored before the next is
    read: with parts of one write unit each, a build (missing source chunks, a partial edge, a
    region refresh, write_empty) stores the same keys and bytes as with the task in one part."""
    data = _data(rng, (150, 130, 24, 1), "uint8", "average")
    data[:40, :40] = 0  # whole source chunks of zeros, written below as missing ones
    tasks: list[Box] = []
    parts: list[Box] = []
    build_task, build_part = pyramid.build_task, pyramid._build_part

    def task(ctx: pyramid.MipStage, top: Box) -> WriteReport:
        tasks.append(top)
        return build_task(ctx, top)

    def part(ctx: pyramid.MipStage, top: Box, report: WriteReport, *arrays: object) -> None:
        parts.append(top)
        build_part(ctx, top, report, *arrays)  # type: ignore[arg-type]

    monkeypatch.setattr(pyramid, "build_task", task)
    monkeypatch.setattr(pyramid, "_build_part", part)
    stored: dict[str, dict[str, bytes | None]] = {}
    for name, part_bytes in (("whole", 1 << 40), ("parts", 1)):
        monkeypatch.setattr(pyramid, "PART_BYTES", part_bytes)
        ba = bc.create(str(tmp_path / name), dtype="uint8", size=(150, 130, 24), voxel_offset=(-16, 8, 1),
                       chunk_size=(16, 16, 8), sharding=sharding)
        ba[:, :, :] = data
        if sharding is None:  # missing source chunks (under zeros: the reference is the same)
            ba.store.delete_many([r.key for r in ba.chunks(Box((-16, 8, 1), (16, 40, 25)))])
        tasks.clear()
        parts.clear()
        bc.downsample(ba, mips=3)
        assert parts == tasks if name == "whole" else len(parts) > len(tasks)  # some task in several parts
        parts.clear()
        bc.downsample(bc.open(ba.url), mips=3, region="20:70,30:90,3:9", write_empty=True)
        if name == "parts":  # a refresh builds only what lies under the region: x 2:9, y 3:12, z 3:9 at mip 3
            assert parts and all(not p.intersect(Box((2, 3, 3), (9, 12, 9))).is_empty for p in parts)
        stored[name] = {}
        for k in (1, 2, 3):
            level = bc.open(ba.url, mip=k)
            keys = sorted(level.store.list(level.key + "/"))
            stored[name].update(zip(keys, level.store.get_many(keys)))
    assert stored["whole"] and stored["whole"] == stored["parts"]
    want = pyramid_reference(data, Box.from_shape((-16, 8, 1), (150, 130, 24)), [(2, 2, 1)] * 3, "average")
    for k in (1, 2, 3):
        np.testing.assert_array_equal(bc.open(str(tmp_path / "parts"), mip=k)[:, :, :], want[k - 1])


def test_misaligned_scales_start_a_new_stage(tmp_path: Path, rng: np.random.Generator) -> None:
    """Offsets 5 -> 2 -> 1 -> 0: a mip-3 chunk straddles mip-2 (and mip-1) chunks, so mip 3 is
    built from mip 2 as stored, and no two tasks write one chunk."""
    geometry = {"size": (100, 100, 8), "voxel_offset": (5, 5, 0), "chunk_size": (16, 16, 8)}
    info = create_info(dtype="uint8", num_mips=4, **geometry)
    ba = make(str(tmp_path / "ds"), dtype="uint8", num_mips=4, **geometry)
    assert mip_stages(ba, info, 3) == [[1, 2], [3]]
    data = _data(rng, (100, 100, 8, 1), "uint8", "average")
    ba[:, :, :] = data
    bc.downsample(ba)
    want = pyramid_reference(data, ba.bounds, [(2, 2, 1)] * 3, "average")
    for k in (1, 2, 3):
        np.testing.assert_array_equal(ba.at_mip(k)[:, :, :], want[k - 1])


def test_scales_are_added_with_the_geometry_of_create(url: str, rng: np.random.Generator) -> None:
    ba = make(url, dtype="uint8", size=(45, 37, 11), voxel_offset=(-7, 3, 5), chunk_size=(8, 8, 4),
              resolution=(4, 4, 40), compression="zstd")
    data = _data(rng, (45, 37, 11, 1), "uint8", "average")
    ba[:, :, :] = data
    bc.downsample(ba, mips=2, factor=(2, 2, 2))
    declared = create_info(dtype="uint8", size=(45, 37, 11), voxel_offset=(-7, 3, 5), chunk_size=(8, 8, 4),
                           resolution=(4, 4, 40), compression="zstd", num_mips=3, downsample_factor=(2, 2, 2))
    assert bc.open(url).info == declared.to_json()
    assert ba.at_mip(2).shape == (12, 10, 3, 1)  # found in the stored info
    want = pyramid_reference(data, ba.bounds, [(2, 2, 2)] * 2, "average")
    np.testing.assert_array_equal(ba.at_mip(2)[:, :, :], want[1])
    with pytest.raises(bc.InfoError, match=r"scale 1 .* \[2, 2, 2\] coarser .* not factor=\[2, 2, 1\]"):
        bc.downsample(bc.open(url), mips=3, factor=(2, 2, 1))


def test_sparse_volumes_stay_sparse(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "ds"), dtype="uint8", size=(128, 64, 8), chunk_size=(16, 16, 8), num_mips=3)
    ba[0:16, 0:16, 0:8] = 7           # data: its mip-1 and mip-2 chunks are stored
    ba[96:112, 32:48, 0:8] = 0        # stored, but all zeros: nothing above it
    report = bc.downsample(ba, mips=2)
    assert _keys(ba.at_mip(1)) == {"0-16_0-16_0-8"} and _keys(ba.at_mip(2)) == {"0-16_0-16_0-8"}
    assert report.written == 2 and report.empty == len(ba.at_mip(1).chunks()) + len(ba.at_mip(2).chunks()) - 2
    # write_empty stores zeros where finer chunks are stored, but what is missing below stays missing.
    bc.downsample(ba, mips=2, write_empty=True)
    assert _keys(ba.at_mip(1)) == {"0-16_0-16_0-8", "48-64_16-32_0-8"}
    assert _keys(ba.at_mip(2)) == {"0-16_0-16_0-8", "16-32_0-16_0-8"}
    assert (ba.at_mip(1)[48:64, 16:32, 0:8] == 0).all()


@pytest.mark.parametrize("method", ["average", "mode", "max"])
def test_missing_source_chunks_count_as_zeros(tmp_path: Path, rng: np.random.Generator, method: str) -> None:
    # Each task's first level is written chunk by chunk into an uninitialised array (the
    # suite poisons those): the part under a missing chunk must come out as zeros.
    ba = make(str(tmp_path / "ds"), dtype="uint8", size=(64, 64, 16), chunk_size=(16, 16, 8), num_mips=3)
    full = np.zeros((64, 64, 16), np.uint8)
    for x, y, z in [(0, 0, 0), (16, 32, 8), (48, 48, 0), (32, 0, 8), (48, 16, 8)]:
        block = rng.integers(1, 255, size=(16, 16, 8), dtype=np.uint8)
        ba[x:x + 16, y:y + 16, z:z + 8] = block
        full[x:x + 16, y:y + 16, z:z + 8] = block
    bc.downsample(ba, mips=2, method=method)
    want = pyramid_reference(full[..., None], ba.bounds, [(2, 2, 1)] * 2, method)
    for k in (1, 2):
        np.testing.assert_array_equal(ba.at_mip(k)[:, :, :], want[k - 1])


def _keys(ba: bc.BigArray) -> set[str]:
    return {k.rpartition("/")[2] for k in ba.store.list(ba.key + "/")}


def test_refreshing_a_region_after_an_edit(tmp_path: Path, rng: np.random.Generator) -> None:
    ba = make(str(tmp_path / "ds"), dtype="uint8", size=(64, 64, 8), chunk_size=(16, 16, 8), num_mips=3)
    ba[:, :, :] = rng.integers(1, 255, size=(64, 64, 8), dtype=np.uint8)
    bc.downsample(ba, mips=2)
    edit = Box((20, 36, 0), (30, 41, 8))
    bc.open(ba.url, non_aligned_writes=True).write(edit, np.full(edit.shape, 3, np.uint8))
    report = bc.downsample(ba, mips=2, region=edit)
    assert report.written == 1 + 1  # the mip-1 chunk the edit touches, and the one of mip 2 over it
    fresh = make(str(tmp_path / "fresh"), dtype="uint8", size=(64, 64, 8), chunk_size=(16, 16, 8), num_mips=3)
    fresh[:, :, :] = ba[:, :, :]
    bc.downsample(fresh, mips=2)
    for k in (1, 2):
        np.testing.assert_array_equal(ba.at_mip(k)[:, :, :], fresh.at_mip(k)[:, :, :])
    # Erased below: the coarse chunks over it are removed, not left holding the old values.
    ba[0:32, 0:32, 0:8] = 0
    report = bc.downsample(ba, mips=2, region="0:32,0:32,0:8")
    assert report.removed == 1 and "0-16_0-16_0-8" not in _keys(ba.at_mip(1))
    assert (ba.at_mip(1)[0:16, 0:16, :] == 0).all()


def test_an_interrupted_build_resumes_and_a_finished_one_leaves_no_record(tmp_path: Path,
                                                                           rng: np.random.Generator) -> None:
    ba = make(str(tmp_path / "ds"), dtype="uint8", size=(256, 256, 16), chunk_size=(16, 16, 8), num_mips=2)
    ba[:, :, :] = rng.integers(1, 255, size=(256, 256, 16), dtype=np.uint8)
    with pytest.raises(KeyboardInterrupt):
        bc.downsample(ba, mips=1, progress=StopAfter(64), max_task_bytes=1 << 20)
    (record,) = (tmp_path / "ds" / PROGRESS_PREFIX).glob("*.json")  # kept: the build did not finish
    stamps = {k: (tmp_path / "ds" / ba.at_mip(1).key / k).stat().st_mtime_ns for k in _keys(ba.at_mip(1))}
    done: list[int] = []
    report = bc.downsample(ba, mips=1, progress=done.append, max_task_bytes=1 << 20)
    assert done[0] == report.done_before >= 64 and report.done_before + report.written == len(ba.at_mip(1).chunks())
    after = {k: (tmp_path / "ds" / ba.at_mip(1).key / k).stat().st_mtime_ns for k in stamps}
    assert sum(after[k] == stamps[k] for k in stamps) >= report.done_before  # recorded tasks were not redone
    want = reference(ba[:, :, :], ba.bounds, (2, 2, 1), "average")
    np.testing.assert_array_equal(ba.at_mip(1)[:, :, :], want)
    assert not record.exists() and not os.listdir(tmp_path / "ds" / PROGRESS_PREFIX)
    report = bc.downsample(ba, mips=1)  # finished builds are not remembered: built again
    assert report.done_before == 0 and report.written == len(ba.at_mip(1).chunks())


def test_a_record_of_another_task_size_is_not_read_as_this_one(tmp_path: Path, rng: np.random.Generator,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Task ``i`` of a build with other task boxes is another box: a build interrupted under one
    task size (an earlier version's) and run again under another starts from nothing, and
    stores every chunk (a record read across sizes would skip chunks never written)."""
    ba = make(str(tmp_path / "ds"), dtype="uint8", size=(256, 256, 16), chunk_size=(16, 16, 8), num_mips=2)
    ba[:, :, :] = rng.integers(1, 255, size=(256, 256, 16), dtype=np.uint8)
    monkeypatch.setattr(pyramid, "TASK_TARGET_BYTES", 64 << 10)
    with pytest.raises(KeyboardInterrupt):
        bc.downsample(ba, mips=1, progress=StopAfter(64))
    assert len(list((tmp_path / "ds" / PROGRESS_PREFIX).glob("*.json"))) == 1
    monkeypatch.setattr(pyramid, "TASK_TARGET_BYTES", 256 << 10)
    report = bc.downsample(ba, mips=1)
    assert report.done_before == 0 and report.written == len(ba.at_mip(1).chunks())
    np.testing.assert_array_equal(ba.at_mip(1)[:, :, :], reference(ba[:, :, :], ba.bounds, (2, 2, 1), "average"))


def test_bad_requests_are_named(tmp_path: Path) -> None:
    ba = make(str(tmp_path / "ds"), num_mips=2)
    with pytest.raises(ValueError, match="'median'"):
        bc.downsample(ba, method="median")
    with pytest.raises(ValueError, match="ignore_zero goes with method 'mode'"):
        bc.downsample(ba, ignore_zero=True)
    with pytest.raises(ValueError, match="mips must be"):
        bc.downsample(ba, mips=-1)
    with pytest.raises(bc.OutOfBoundsError, match="outside the volume"):
        bc.downsample(ba, region="100:200,0:10,0:10")
    with pytest.raises(bc.ReadOnlyError):
        bc.downsample(bc.open(ba.url, read_only=True))
    assert bc.open(ba.url).num_mips == 2  # nothing was added


_FAULTS_OF_A_BUILD = """
import json, resource, sys
import numpy as np
import bigarrays_core as bc
from bigarrays_core.codecs import gzip as gz

gz._chosen.update({x: "libdeflate" for x in range(256)})  # as the probe chooses for EM data here
bc.set_num_threads(1)
ba = bc.create(sys.argv[1], dtype="uint8", size=(512, 512, 64), chunk_size=(64, 64, 64),
               compression=json.loads(sys.argv[2]))
ba[...] = np.random.default_rng(5).integers(0, 255, size=(512, 512, 64, 1), dtype=np.uint8)
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    bc.downsample(ba, mips=3, factor=(2, 2, 1), resume=False)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(min(faults[1:]))
"""


def test_a_build_does_not_fault_in_fresh_memory_where_the_allocator_keeps_none(tmp_path: Path) -> None:
    # A Dask worker starts with MALLOC_TRIM_THRESHOLD_ set, which turns glibc's adaptive
    # mapping threshold off: every allocation of 128 KiB or more is then a fresh mapping,
    # faulted in page by page. A mip task's level arrays and packed chunks come from the
    # recycled pool instead (before: 1,162 faults per build of this volume, 4.5 MiB; now 4).
    import subprocess
    import sys

    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    done = subprocess.run([sys.executable, "-c", _FAULTS_OF_A_BUILD, f"file://{tmp_path / 'ds'}", "null"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) < 300, done.stdout


def test_gzip_chunks_inflated_into_a_reused_buffer_build_the_reference(tmp_path: Path, rng: np.random.Generator,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks large enough for libdeflate (chosen here as the probe chooses it for EM data)
    # are inflated into one buffer per thread, reused chunk after chunk: each must be reduced
    # before the next is decoded, on one thread and on several.
    from bigarrays_core.codecs import gzip as gz

    monkeypatch.setattr(gz, "_chosen", {x: "libdeflate" for x in range(256)})
    data = _data(rng, (192, 160, 32, 1), "uint8", "average")
    want = pyramid_reference(data, Box.from_shape((-32, 16, 0), (192, 160, 32)), [(2, 2, 1)] * 2, "average")
    for threads in (1, 3):
        ba = make(str(tmp_path / f"t{threads}"), dtype="uint8", size=(192, 160, 32), voxel_offset=(-32, 16, 0),
                  chunk_size=(64, 64, 32), compression={"id": "gzip", "level": 9})
        ba[:, :, :] = data
        before = bc.num_threads()
        bc.set_num_threads(threads)
        try:
            bc.downsample(ba, mips=2)
        finally:
            bc.set_num_threads(before)
        for k in (1, 2):
            np.testing.assert_array_equal(bc.open(str(tmp_path / f"t{threads}"), mip=k)[:, :, :], want[k - 1])
