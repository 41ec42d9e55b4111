"""Building mips (``bigarrays_core.pyramid``) against a numpy reference written here.

The reference follows the rule literally: coarse voxel ``i`` of an axis with factor ``f``
holds the fine voxels whose absolute coordinate ``x`` has ``x // f == i``; ``average``
is their exact mean (Python integers and fractions, rounded half to even), ``stride``
the first of them.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from bigarrays_core.pyramid import build_mips, downsample_block
from bigarrays_core.resume import ProgressRecord

from .datasets import make


def reference(data: np.ndarray, box: Box, factor: tuple[int, int, int], method: str) -> np.ndarray:
    idx = [(a + np.arange(n)) // f for a, n, f in zip(box.start, box.shape, factor)]
    idx = [i - i[0] for i in idx]
    shape = tuple(int(i[-1]) + 1 for i in idx) + (data.shape[3],)
    out = np.empty(shape, dtype=data.dtype)
    for cx in range(shape[0]):
        for cy in range(shape[1]):
            for cz in range(shape[2]):
                block = data[np.ix_(idx[0] == cx, idx[1] == cy, idx[2] == cz)]
                for c in range(shape[3]):
                    values = block[..., c].ravel(order="F")
                    if method == "stride":
                        out[cx, cy, cz, c] = block[0, 0, 0, c]
                    elif data.dtype.kind == "f":
                        out[cx, cy, cz, c] = float(sum(Fraction(float(v)) for v in values) / len(values))
                    else:
                        out[cx, cy, cz, c] = round(Fraction(sum(int(v) for v in values), len(values)))
    return out


def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.normal(0, 1e3, size=shape).astype(dt)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int32", "uint32", "int64", "uint64", "float32",
                                   "float64", "bool"])
@pytest.mark.parametrize(("start", "shape", "factor"), [
    ((0, 0, 0), (8, 6, 4), (2, 2, 1)),
    ((-7, 3, 5), (9, 7, 5), (2, 2, 2)),       # odd sizes, offsets not multiples of the factor
    ((1, -4, 2), (10, 5, 3), (3, 2, 4)),      # anisotropic, partial blocks at both ends
])
@pytest.mark.parametrize("method", ["average", "stride"])
def test_downsample_block_matches_the_reference(rng: np.random.Generator, dtype: str, start: tuple[int, int, int],
                                                shape: tuple[int, int, int], factor: tuple[int, int, int],
                                                method: str) -> None:
    box = Box.from_shape(start, shape)
    data = np.asfortranarray(_values(rng, shape + (2,), dtype))
    got, got_box = downsample_block(data, box, factor, method)
    want = reference(data, box, factor, method)
    assert got_box == Box(tuple(a // f for a, f in zip(box.start, factor)),
                          tuple(-(-b // f) for b, f in zip(box.stop, factor)))
    assert got.dtype == data.dtype and got.shape == want.shape
    if dtype == "float64" and method == "average":  # summed in float64: rounding errors of the sum
        np.testing.assert_allclose(got, want, rtol=0, atol=16 * np.finfo(np.float64).eps * np.abs(data).max())
    else:
        np.testing.assert_array_equal(got, want)


def test_average_rounds_halves_to_even_exactly_even_for_huge_uint64() -> None:
    big = np.uint64(2**64 - 2)
    data = np.array([1, 2, 3, 4, 5, 6, 2**63, 2**63 + 1], dtype=np.uint64).reshape(8, 1, 1, 1)
    data[6:8] += np.uint64(2**62)
    got, _ = downsample_block(data, Box((0, 0, 0), (8, 1, 1)), (2, 1, 1), "average")
    # (1+2)/2 = 1.5 -> 2, (3+4)/2 = 3.5 -> 4, (5+6)/2 = 5.5 -> 6, (2^63+2^62 + 2^63+2^62+1)/2 -> even
    assert got[:, 0, 0, 0].tolist() == [2, 4, 6, 2**63 + 2**62]
    top = np.full((2, 1, 1, 1), big, dtype=np.uint64)
    assert downsample_block(top, Box((0, 0, 0), (2, 1, 1)), (2, 1, 1), "average")[0].item() == 2**64 - 2
    neg = np.array([-(2**63), -(2**63) + 1], dtype=np.int64).reshape(2, 1, 1, 1)
    assert downsample_block(neg, Box((0, 0, 0), (2, 1, 1)), (2, 1, 1), "average")[0].item() == -(2**63)


@pytest.mark.parametrize(("dtype", "method"), [("uint16", "average"), ("uint64", "stride"), ("float32", "average")])
def test_build_mips_equals_the_reference_level_by_level(dataset_url: str, rng: np.random.Generator, dtype: str,
                                                         method: str) -> None:
    ba = make(dataset_url, dtype=dtype, size=(45, 37, 11), voxel_offset=(-7, 3, 5), chunk_size=(8, 8, 4),
              num_mips=4, downsample_factor=(2, 2, 1), num_channels=2)
    ba[:, :, :] = _values(rng, (45, 37, 11, 2), dtype)
    report = build_mips(ba, mips=3, method=method)
    assert report.written == sum(len(ba.at_mip(k).chunks()) for k in (1, 2, 3)) and report.empty == 0
    fine = ba
    for k in (1, 2, 3):
        coarse = ba.at_mip(k)
        want = reference(fine[:, :, :], fine.bounds, (2, 2, 1), method)
        np.testing.assert_array_equal(coarse[:, :, :], want)
        fine = coarse


def test_auto_strides_segmentations_and_averages_images(tmp_path) -> None:  # type: ignore[no-untyped-def]
    labels = np.repeat(np.arange(1, 17, dtype=np.uint64).reshape(4, 4, 1), 2, axis=2)
    seg = make(str(tmp_path / "seg"), dtype="uint64", size=(4, 4, 2), chunk_size=(4, 4, 2),
               encoding="compressed_segmentation", num_mips=2)
    seg[:, :, :] = labels
    build_mips(seg)
    np.testing.assert_array_equal(seg.at_mip(1)[:, :, :, 0], labels[::2, ::2])  # labels, never averages
    img = make(str(tmp_path / "img"), dtype="uint8", size=(4, 4, 2), chunk_size=(4, 4, 2), num_mips=2)
    img[:, :, :] = labels.astype(np.uint8)
    build_mips(img)
    assert img.at_mip(1)[0, 0, 0, 0] == 4  # mean of 1, 2, 5, 6 = 3.5 -> 4 (half to even)


def _keys(ba: bc.BigArray) -> set[str]:
    return {k.rpartition("/")[2] for k in ba.store.list(ba.key + "/")}


def test_sparse_volumes_stay_sparse(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ba = make(str(tmp_path / "ds"), dtype="uint8", size=(128, 64, 8), chunk_size=(16, 16, 8), num_mips=3)
    ba[0:16, 0:16, 0:8] = 7           # data: its mip-1 and mip-2 chunks are stored
    ba[96:112, 32:48, 0:8] = 0        # stored, but all zeros: nothing above it
    report = build_mips(ba, mips=2)
    assert _keys(ba.at_mip(1)) == {"0-16_0-16_0-8"} and _keys(ba.at_mip(2)) == {"0-16_0-16_0-8"}
    assert report.written == 2 and report.empty == len(ba.at_mip(1).chunks()) + len(ba.at_mip(2).chunks()) - 2
    # write_empty stores zeros where finer chunks are stored, but what is missing below stays missing.
    build_mips(ba, mips=2, write_empty=True)
    assert _keys(ba.at_mip(1)) == {"0-16_0-16_0-8", "48-64_16-32_0-8"}
    assert _keys(ba.at_mip(2)) == {"0-16_0-16_0-8", "16-32_0-16_0-8"}
    assert (ba.at_mip(1)[48:64, 16:32, 0:8] == 0).all()


def test_refreshing_a_region_after_an_edit(tmp_path, rng: np.random.Generator) -> None:  # type: ignore[no-untyped-def]
    ba = make(str(tmp_path / "ds"), dtype="uint8", size=(64, 64, 8), chunk_size=(16, 16, 8), num_mips=3)
    ba[:, :, :] = rng.integers(1, 255, size=(64, 64, 8), dtype=np.uint8)
    build_mips(ba, mips=2)
    edit = Box((20, 36, 0), (30, 41, 8))
    with_edit = bc.open(ba.url, non_aligned_writes=True)
    with_edit.write(edit, np.full(edit.shape, 3, np.uint8))
    report = build_mips(ba, edit, mips=2)
    assert report.written == 1 + 1  # the mip-1 chunk the edit touches, and the one of mip 2 over it
    fresh = make(str(tmp_path / "fresh"), dtype="uint8", size=(64, 64, 8), chunk_size=(16, 16, 8), num_mips=3)
    fresh[:, :, :] = ba[:, :, :]
    build_mips(fresh, mips=2)
    for k in (1, 2):
        np.testing.assert_array_equal(ba.at_mip(k)[:, :, :], fresh.at_mip(k)[:, :, :])
    # Erased below: the coarse chunks over it are removed, not left holding the old values.
    ba[0:32, 0:32, 0:8] = 0
    report = build_mips(ba, Box((0, 0, 0), (32, 32, 8)), mips=2)
    assert report.removed == 1 and "0-16_0-16_0-8" not in _keys(ba.at_mip(1))
    assert (ba.at_mip(1)[0:16, 0:16, :] == 0).all()


def test_a_recorded_build_resumes_after_an_interruption(tmp_path, rng: np.random.Generator) -> None:  # type: ignore[no-untyped-def]
    ba = make(str(tmp_path / "ds"), dtype="uint8", size=(64, 64, 16), chunk_size=(8, 8, 8), num_mips=2)
    ba[:, :, :] = rng.integers(1, 255, size=(64, 64, 16), dtype=np.uint8)
    record = ProgressRecord(ba.store, {"kind": "test-build"})
    seen = []

    def stop_after_16(n: int) -> None:
        seen.append(n)
        if sum(seen) >= 16:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_mips(ba, mips=1, record=record, progress=stop_after_16)
    assert record.done("mip 1") == 16 and len(_keys(ba.at_mip(1))) == 16
    stamps = {k: (tmp_path / "ds" / ba.at_mip(1).key / k).stat().st_mtime_ns for k in _keys(ba.at_mip(1))}
    again = ProgressRecord(ba.store, {"kind": "test-build"})  # as a new process would
    report = build_mips(ba, mips=1, record=again)
    assert (report.done_before, report.written) == (16, 16)
    assert {k: (tmp_path / "ds" / ba.at_mip(1).key / k).stat().st_mtime_ns for k in stamps} == stamps
    np.testing.assert_array_equal(ba.at_mip(1)[:, :, :], reference(ba[:, :, :], ba.bounds, (2, 2, 1), "average"))


def test_bad_requests_are_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ba = make(str(tmp_path / "ds"), num_mips=2)
    with pytest.raises(bc.InfoError, match="declares 2 scale"):
        build_mips(ba, mips=2)
    with pytest.raises(ValueError, match="'mode'"):
        build_mips(ba, method="mode")
