"""The core's behaviours over every store kind: memory, local disk, S3 (moto) and GCS (fake-gcs-server).

One suite, parametrised by the ``dataset_url`` fixture (``conftest.py``), so a behaviour that
holds on local disk is proven on the object stores too: round trips for every encoding and
byte compression with a negative ``voxel_offset`` and clipped edge chunks, cutouts crossing
chunk borders and the volume's bounds, missing chunks, unaligned and read-only writes. The
per-kind details (how a compressed chunk is named or tagged on each store) are checked in
``test_content_encoding_interop.py``; the core's finer points stay in ``tests/core``.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from tests.core.datasets import snapshot

#: 37 x 30 x 13 voxels from (-20, -7, -9) in 16 x 16 x 8 chunks: 3 x 2 x 2 = 12 chunks, of which
#: the last along every axis is clipped (5, 14 and 5 voxels deep).
GEOMETRY: dict[str, Any] = {"size": (37, 30, 13), "chunk_size": (16, 16, 8), "voxel_offset": (-20, -7, -9)}
BOUNDS = Box((-20, -7, -9), (17, 23, 4))
DTYPES = {"raw": "uint16", "png": "uint8", "jpeg": "uint8", "compressed_segmentation": "uint64"}
COMPRESSIONS = [None, "gzip", "zstd", "blosc"]

#: Cutouts crossing chunk borders, starting or ending inside chunks, reaching outside the bounds.
CUTOUTS = [
    Box((-20, -7, -9), (17, 23, 4)),  # the whole volume
    Box((-5, 8, -2), (13, 10, 0)),  # straddles a border on every axis
    Box((-30, -20, -15), (-3, 0, -8)),  # below the lower corner: zeros there
    Box((11, 20, 2), (40, 40, 20)),  # past the upper corner, through the clipped edge chunks
    Box((-4, -7, -9), (12, 23, 4)),  # exactly one chunk column along x
    Box((0, 0, 0), (1, 1, 1)),  # one voxel
]


def sample(rng: np.random.Generator, encoding: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Test data suited to ``encoding``: noise, a smooth image for jpeg, labels for cseg."""
    full = shape + (1,)
    if encoding == "jpeg":  # lossy: smooth content keeps the error small and predictable
        x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
        smooth = 100 + 60 * np.sin(x / 6.0) * np.cos(y / 5.0) + 3 * z + rng.normal(0, 2, shape)
        return np.clip(smooth, 0, 255).astype(np.uint8).reshape(full)
    if encoding == "compressed_segmentation":
        labels = np.array([0, 1, 7, 2**40 + 3, 2**64 - 1], dtype=np.uint64)
        return labels[rng.integers(0, len(labels), size=full)]
    info = np.iinfo(np.dtype(DTYPES[encoding]))
    return rng.integers(info.min, info.max, size=full, dtype=DTYPES[encoding], endpoint=True)


def window(data: np.ndarray, box: Box) -> np.ndarray:
    """What a read of ``box`` must give when the whole volume holds ``data``: zeros outside."""
    out = np.zeros(box.shape + data.shape[3:], dtype=data.dtype)
    inner = box.intersect(BOUNDS)
    if not inner.is_empty:
        out[inner.slices_in(box)] = data[inner.slices_in(BOUNDS)]
    return out


def make(url: str, **kwargs: Any) -> bc.BigArray:
    """A raw uint16 dataset of :data:`GEOMETRY` (``kwargs`` override) at ``url``."""
    return bc.create(url, **{"dtype": "uint16", **GEOMETRY, **kwargs})


def chunk_keys(ba: bc.BigArray) -> list[str]:
    return sorted(k for k in ba.store.list() if k != "info")


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("encoding", list(DTYPES))
def test_aligned_round_trip(dataset_url: str, encoding: str, compression: str | None,
                            rng: np.random.Generator) -> None:
    ba = make(dataset_url, dtype=DTYPES[encoding], encoding=encoding, compression=compression)
    data = sample(rng, encoding, BOUNDS.shape)
    ba[:, :, :] = data  # the stop at the volume's end counts as aligned: edge chunks are clipped
    assert chunk_keys(ba) == sorted(r.key for r in ba.chunks())
    assert len(chunk_keys(ba)) == 12 and "1_1_1/12-17_9-23_-1-4" in chunk_keys(ba)

    if encoding == "jpeg":  # lossy: the store must give back exactly what memory gives back
        reference = make(f"memory://cloud-tests-jpeg-{uuid.uuid4().hex}", dtype="uint8", encoding="jpeg",
                         compression=compression)
        reference[:, :, :] = data
        expected = reference[:, :, :]
        error = np.abs(expected.astype(np.int16) - data)
        assert error.max() <= 24 and error.mean() <= 4
    else:
        expected = data

    again = bc.open(dataset_url, read_only=True)
    assert (again.encoding, again.dtype, again.bounds) == (encoding, np.dtype(DTYPES[encoding]), BOUNDS)
    assert (again.compression or {}).get("id") == compression
    for box in CUTOUTS[:2]:
        np.testing.assert_array_equal(again.read(box), window(expected, box), err_msg=str(box))


def test_cutouts_cross_chunk_borders_and_bounds(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, compression="gzip")
    # Aligned at the lower corner but reaching 12 voxels below it and past the upper corner:
    # the outside part is clipped away and the rest saved.
    big = Box((-36, -23, -17), (32, 39, 12))
    data = sample(rng, "raw", big.shape)
    ba.write(big, data)
    expected = data[BOUNDS.slices_in(big)]
    assert chunk_keys(ba) == sorted(r.key for r in ba.chunks())
    for box in CUTOUTS:
        np.testing.assert_array_equal(ba.read(box), window(expected, box), err_msg=str(box))
    # numpy-style indexing in absolute coordinates: negatives are coordinates, ints drop axes.
    np.testing.assert_array_equal(ba[-5:13, 8:10, -2:0], window(expected, Box((-5, 8, -2), (13, 10, 0))))
    np.testing.assert_array_equal(ba[-1, :, 3], expected[19, :, 12])
    for z0 in range(-9, 4, 5):  # a few random cutouts against the model
        start = [int(rng.integers(lo - 4, hi)) for lo, hi in zip(BOUNDS.start, BOUNDS.stop, strict=True)]
        stop = [s + int(rng.integers(1, 24)) for s in start]
        box = Box((start[0], start[1], z0), (stop[0], stop[1], z0 + int(rng.integers(1, 10))))
        np.testing.assert_array_equal(ba.read(box), window(expected, box), err_msg=str(box))


def test_missing_chunks_read_as_zeros_or_raise_naming_the_url(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, compression="zstd")
    data = sample(rng, "raw", BOUNDS.shape) | np.uint16(1)  # never 0, so a zero means "filled"
    ba[:, :, :] = data
    gone = "1_1_1/-4-12_-7-9_-9--1"
    ba.store.delete(gone)
    hole = Box((-4, -7, -9), (12, 9, -1))
    expected = data.copy()
    expected[hole.slices_in(BOUNDS)] = 0

    np.testing.assert_array_equal(bc.open(dataset_url)[:, :, :], expected)
    assert [r.key for r in ba.missing_chunks()] == [gone]

    strict = bc.open(dataset_url, fill_missing=False)
    with pytest.raises(bc.ChunkNotFoundError) as info:
        strict[-10:0, 0:10, -5:0]
    err = info.value
    assert isinstance(err, KeyError) and err.key == gone
    assert f"{dataset_url}/{gone}" in str(err)  # e.g. s3://bkt-.../datasets/em/1_1_1/-4-12_-7-9_-9--1
    outside_hole = Box((-20, -7, -9), (-4, 23, 4))
    np.testing.assert_array_equal(strict.read(outside_hole), window(expected, outside_hole))


def test_unaligned_write_raises_and_writes_nothing(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, compression="gzip")
    ba[:, :, :] = sample(rng, "raw", BOUNDS.shape)
    before = snapshot(ba.store)
    box = Box((-19, -7, -9), (12, 9, -1))  # one voxel short of the chunk border at x = -20
    with pytest.raises(bc.AlignmentError) as info:
        ba.write(box, sample(rng, "raw", box.shape))
    err = info.value
    assert isinstance(err, ValueError)
    assert err.nearest == Box((-20, -7, -9), (12, 9, -1))
    assert str(err.nearest) in str(err) and dataset_url in str(err)
    with pytest.raises(bc.AlignmentError):
        ba[0:16, 0:16, 0:8] = 7  # inside the volume but off the grid (which starts at -20, -7, -9)
    assert snapshot(ba.store) == before


def test_read_only_open_refuses_every_write(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url)
    data = sample(rng, "raw", BOUNDS.shape)
    ba[:, :, :] = data
    before = snapshot(ba.store)
    ro = bc.open(dataset_url, read_only=True)
    assert ro.store.read_only
    with pytest.raises(bc.ReadOnlyError) as info:
        ro[:, :, :] = 5
    assert isinstance(info.value, PermissionError) and isinstance(info.value, bc.StorageError)
    assert dataset_url in str(info.value)
    with pytest.raises(bc.ReadOnlyError):
        ro.write("-20:-4,-7:9,-9:-1", np.ones((16, 16, 8), np.uint16))
    with pytest.raises(bc.ReadOnlyError):
        ro.store.set("1_1_1/extra", b"x")
    with pytest.raises(bc.ReadOnlyError):
        ro.store.delete("1_1_1/-20--4_-7-9_-9--1")
    with pytest.raises(bc.ReadOnlyError):
        bc.create(dataset_url, dtype="uint8", size=(8, 8, 8), overwrite=True, read_only=True)
    assert snapshot(ba.store) == before
    np.testing.assert_array_equal(ro[:, :, :], data)


def test_missing_chunks_lists_exactly_the_unwritten_ones(dataset_url: str) -> None:
    ba = make(dataset_url, compression="gzip")
    everything = [r.key for r in ba.chunks()]
    assert [r.key for r in ba.missing_chunks()] == everything
    ba[-20:-4, -7:23, -9:4] = 1  # the first column of chunks along x (4 chunks)
    ba[12:17, 9:23, -1:4] = 2  # the clipped corner chunk
    written = {"1_1_1/-20--4_-7-9_-9--1", "1_1_1/-20--4_9-23_-9--1", "1_1_1/-20--4_-7-9_-1-4",
               "1_1_1/-20--4_9-23_-1-4", "1_1_1/12-17_9-23_-1-4"}
    assert [r.key for r in ba.missing_chunks()] == [k for k in everything if k not in written]
    part = Box((-10, 0, -3), (14, 10, 2))  # touches 3 x 2 x 2 chunks, 3 of them written
    refs = ba.missing_chunks(part)
    assert [r.key for r in refs] == [r.key for r in ba.chunks(part) if r.key not in written]
    assert all(r.box == r.box.intersect(BOUNDS) for r in refs)
    assert ba.missing_chunks(Box((100, 100, 100), (200, 200, 200))) == []
