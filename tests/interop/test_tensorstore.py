"""bigarrays <-> TensorStore on local directories (docs/format.md).

Both directions over every standard encoding (raw in six dtypes, png, jpeg,
compressed_segmentation; one and several channels), negative voxel offsets, clipped
edge chunks and two mips; byte-exact raw chunk files; compressed_segmentation blocks of
every encoded bit width; and TensorStore's blindness to gzip'd local files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorstore as ts

import bigarrays_core as bc

from .cases import CODECS, GEOMETRIES, Codec, Geometry, assert_matches_written
from .peers import box_of, scales_for, ts_create, ts_open, ts_read, write_bigarrays, write_tensorstore

pytestmark = pytest.mark.interop

RAW_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int16", "float32")


def inner_box(bounds: bc.Box) -> bc.Box:
    """A box strictly inside ``bounds`` that is aligned to nothing (crosses chunk borders)."""
    return box_of((a + 3 for a in bounds.start), (b - 2 for b in bounds.stop))


def chunk_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` except ``info`` and bigarrays' own records (``.bigarrays/``: a
    local dataset's lock file, progress records), by relative path."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if rel != "info" and not rel.startswith(".bigarrays/"):
                out[rel] = path.read_bytes()
    return out


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("codec", CODECS, ids=str)
def test_tensorstore_reads_what_bigarrays_writes(dataset: Path, rng: np.random.Generator, codec: Codec,
                                                 geometry: Geometry) -> None:
    written = write_bigarrays(dataset, codec, geometry, rng)
    for mip, bounds in enumerate(written.bounds):
        ours = bc.open(str(dataset), mip)[:, :, :]
        theirs = ts_read(dataset, mip)
        assert theirs.shape == bounds.shape + (codec.channels,)
        # Same stored bytes, decoded by both: identical even for jpeg.
        np.testing.assert_array_equal(theirs, ours)
        assert_matches_written(theirs, written.data[mip], codec)
        box = inner_box(bounds)
        np.testing.assert_array_equal(ts_read(dataset, mip, box), bc.open(str(dataset), mip).read(box))


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("codec", CODECS, ids=str)
def test_bigarrays_reads_what_tensorstore_writes(dataset: Path, rng: np.random.Generator, codec: Codec,
                                                 geometry: Geometry) -> None:
    written = write_tensorstore(dataset, codec, geometry, rng)
    for mip, bounds in enumerate(written.bounds):
        # fill_missing=False: a chunk key bigarrays derives differently from TensorStore fails loudly.
        ba = bc.open(str(dataset), mip, fill_missing=False)
        assert ba.bounds == bounds
        assert ba.missing_chunks() == []
        ours = ba[:, :, :]
        np.testing.assert_array_equal(ours, ts_read(dataset, mip))
        assert_matches_written(ours, written.data[mip], codec)
        box = inner_box(bounds)
        assert_matches_written(ba.read(box), written.expected(mip, box), codec)


def test_raw_test_vector_is_byte_identical(tmp_path: Path) -> None:
    """TensorStore's driver_test.cc vector: 2x3 uint8 [[1,2,3],[4,5,6]] -> 01 04 02 05 03 06."""
    data = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8).reshape(2, 3, 1, 1)
    key = "1_1_1/0-2_0-3_0-1"
    ours = bc.create(str(tmp_path / "ours"), dtype="uint8", size=(2, 3, 1), chunk_size=(64, 64, 64))
    ours[0:2, 0:3, 0:1] = data
    scale = scales_for(Codec("raw", "uint8", 1), Geometry("vector", (2, 3, 1), (64, 64, 64), (0, 0, 0),
                                                          resolution=(1, 1, 1), num_mips=1))[0]
    ts_create(tmp_path / "theirs", Codec("raw", "uint8", 1), scale).write(data).result()
    expected = bytes([1, 4, 2, 5, 3, 6])
    assert (tmp_path / "ours" / key).read_bytes() == expected
    assert (tmp_path / "theirs" / key).read_bytes() == expected


@pytest.mark.parametrize("channels", [1, 3], ids=lambda c: f"c{c}")
@pytest.mark.parametrize("dtype", RAW_DTYPES)
def test_raw_chunk_files_are_byte_identical(tmp_path: Path, rng: np.random.Generator, dtype: str,
                                            channels: int) -> None:
    """The same data written by bigarrays and by TensorStore gives the same files, edge chunks included."""
    codec, geometry = Codec("raw", dtype, channels), GEOMETRIES[0]
    written = write_bigarrays(tmp_path / "ours", codec, geometry, rng)
    for scale, values in zip(scales_for(codec, geometry), written.data, strict=True):
        ts_create(tmp_path / "theirs", codec, scale).write(values).result()
    ours, theirs = chunk_files(tmp_path / "ours"), chunk_files(tmp_path / "theirs")
    assert sorted(ours) == sorted(theirs)
    assert len(ours) > 8  # several chunks per mip, not a degenerate volume
    for name in ours:
        assert ours[name] == theirs[name], f"chunk {name} differs"


# -- compressed_segmentation: every encoded bit width, both ways ---------------------------
CSEG_BLOCK = (8, 8, 8)
#: Distinct labels per block: encoded bits 0, 16 (300 > 256 labels; lands on a full block), 1, 2, 4, 8.
CSEG_DISTINCT = (1, 300, 2, 3, 5, 17)


def cseg_chunk(rng: np.random.Generator, dtype: str, channels: int) -> np.ndarray:
    """One clipped 20x24x13 chunk whose 3x3x2 blocks (partial at the x and z edges) need
    each bit width of :data:`CSEG_DISTINCT`; labels above 2**32 for uint64."""
    shape = (20, 24, 13)
    top = np.iinfo(np.dtype(dtype)).max
    out = np.zeros(shape + (channels,), dtype=dtype, order="F")
    blocks = [(bx, by, bz) for bz in range(2) for by in range(3) for bx in range(3)]
    for c in range(channels):
        for i, (bx, by, bz) in enumerate(blocks):
            sl = tuple(slice(b * s, min((b + 1) * s, n))
                       for b, s, n in zip((bx, by, bz), CSEG_BLOCK, shape, strict=True))
            n_voxels = int(np.prod([s.stop - s.start for s in sl]))
            distinct = min(CSEG_DISTINCT[(i + c) % len(CSEG_DISTINCT)], n_voxels)
            labels = rng.permutation(np.unique(rng.integers(1, top, size=distinct + 8, dtype=dtype,
                                                            endpoint=True)))[:distinct]
            assert len(labels) == distinct
            block = np.concatenate([labels, rng.choice(labels, n_voxels - distinct)])
            rng.shuffle(block)
            out[sl + (c,)] = block.reshape([s.stop - s.start for s in sl], order="F")
    return out


def encoded_bits(chunk: bytes, channels: int, nblocks: int) -> set[int]:
    """The encodedBits of every block header of every channel of a stored chunk."""
    words = np.frombuffer(chunk, dtype="<u4")
    bits: set[int] = set()
    for c in range(channels):
        headers = words[int(words[c]):int(words[c]) + 2 * nblocks:2]
        bits |= {int(h) >> 24 for h in headers}
    return bits


@pytest.mark.parametrize("channels", [1, 2], ids=lambda c: f"c{c}")
@pytest.mark.parametrize("dtype", ["uint32", "uint64"])
def test_compressed_segmentation_chunks_cross_decode(tmp_path: Path, rng: np.random.Generator, dtype: str,
                                                     channels: int) -> None:
    codec = Codec("compressed_segmentation", dtype, channels)
    data = cseg_chunk(rng, dtype, channels)
    size = data.shape[:3]
    ours = bc.create(str(tmp_path / "ours"), dtype=dtype, size=size, chunk_size=(32, 32, 16),
                     num_channels=channels, encoding=codec.encoding, compressed_segmentation_block_size=CSEG_BLOCK)
    ours[:, :, :] = data
    [ref] = ours.chunks()
    assert encoded_bits(ours.store.get(ref.key) or b"", channels, 18) == {0, 1, 2, 4, 8, 16}
    np.testing.assert_array_equal(ts_read(tmp_path / "ours", 0), data)

    theirs = tmp_path / "theirs"
    ts_create(theirs, codec, ours.scale).write(data).result()
    stored = (theirs / ref.key).read_bytes()
    assert encoded_bits(stored, channels, 18) == {0, 1, 2, 4, 8, 16}
    np.testing.assert_array_equal(bc.open(str(theirs), fill_missing=False)[:, :, :], data)


# -- info, and byte compression TensorStore cannot see ---------------------------------------
@pytest.mark.parametrize(
    "compression", [None, "gzip", "zstd", {"id": "zstd", "level": 5}, {"id": "blosc", "cname": "lz4", "level": 5,
                                                                      "shuffle": 1}],
    ids=["none", "gzip", "zstd", "zstd5", "blosc"],
)
def test_tensorstore_opens_the_info_bigarrays_writes(dataset: Path, compression: Any) -> None:
    """TensorStore accepts the info, non-standard per-scale ``compression`` member included."""
    geometry = GEOMETRIES[0]
    ba = bc.create(str(dataset), dtype="uint16", size=geometry.size, chunk_size=geometry.chunk,
                   resolution=geometry.resolution, voxel_offset=geometry.offset, num_channels=3,
                   compression=compression, num_mips=2)
    assert ("compression" in ba.info["scales"][0]) == (compression is not None)
    for mip in range(2):
        level = ba.at_mip(mip)
        store = ts_open(dataset, mip)
        assert store.domain.labels == ("x", "y", "z", "channel")
        assert list(store.domain.inclusive_min) == [*level.voxel_offset, 0]
        assert tuple(store.domain.shape) == level.shape
        assert store.dtype.numpy_dtype == level.dtype
        assert store.chunk_layout.read_chunk.shape == (*level.chunk_size, 3)
        assert list(store.dimension_units[:3]) == [ts.Unit(r, "nm") for r in level.resolution]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_tensorstore_cannot_read_compressed_local_chunks(tmp_path: Path, rng: np.random.Generator,
                                                         compression: str) -> None:
    """TensorStore's file kvstore neither decodes nor looks for ``.gz``/``.zstd`` files
    (docs/format.md, "Byte compression"): a compressed bigarrays dataset reads as missing chunks.
    The same data written without compression is what TensorStore reads."""
    codec, geometry = Codec("raw", "uint16", 1), GEOMETRIES[0]
    packed = write_bigarrays(tmp_path / "packed", codec, geometry, rng, compression=compression)
    plain = write_bigarrays(tmp_path / "plain", codec, geometry, np.random.default_rng(0))
    np.testing.assert_array_equal(bc.open(str(tmp_path / "packed"))[:, :, :], packed.data[0])
    strict = ts_open(tmp_path / "packed", 0, fill_missing_data_reads=False)
    with pytest.raises(ValueError, match="is missing"):
        strict.read().result()
    assert not ts_read(tmp_path / "packed", 0).any()  # by default: silently all zeros
    np.testing.assert_array_equal(ts_read(tmp_path / "plain", 0), plain.data[0])
