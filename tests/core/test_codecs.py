"""Chunk encodings and byte compression: round trips, exact byte layouts, sniffing, corrupt chunks."""

from __future__ import annotations

import gzip
import io
from typing import Any

import blosc
import brotli
import imagecodecs
import numpy as np
import pytest
import zstandard
from PIL import Image

import bigarrays_core as bc
from bigarrays_core.codecs import ChunkPipeline, pipeline_for
from bigarrays_core.format import DTYPES

from .datasets import files_under, local_root, make

# -- the matrix ----------------------------------------------------------------------------

COMPRESSIONS: list[Any] = [
    None,
    "gzip",
    {"id": "gzip", "level": 9},
    "zstd",
    {"id": "zstd", "level": 19},
    {"id": "blosc", "cname": "blosclz", "shuffle": 0},
    {"id": "blosc", "cname": "blosclz", "shuffle": 1},
    {"id": "blosc", "cname": "blosclz", "shuffle": 2},
    {"id": "blosc", "cname": "lz4", "level": 5, "shuffle": 1},
    {"id": "blosc", "cname": "zstd", "level": 3, "shuffle": 2},
]


def comp_id(c: Any) -> str:
    if c is None:
        return "none"
    if isinstance(c, str):
        return c
    return "-".join(str(v) for v in c.values())


ENCODING_CASES: list[tuple[str, str, int]] = (
    [("raw", dt, c) for dt in DTYPES for c in (1, 2, 3)]
    + [("png", dt, c) for dt in ("uint8", "uint16") for c in (1, 2, 3, 4)]
    + [("jpeg", "uint8", c) for c in (1, 3)]
    + [("compressed_segmentation", dt, c) for dt in ("uint32", "uint64") for c in (1, 2, 3)]
)

CHUNK = (16, 12, 8)
EDGE = (5, 12, 3)  # a clipped upper-edge chunk of the same scale


def pipeline(encoding: str, dtype: str, channels: int, compression: Any = None, **kw: Any) -> ChunkPipeline:
    info = bc.create_info(dtype=dtype, size=(37, 12, 19), chunk_size=CHUNK, num_channels=channels,
                          encoding=encoding, compression=compression, compressed_segmentation_block_size=(4, 4, 2),
                          **kw)
    return pipeline_for(info.scales[0], info.dtype, info.num_channels)


def sample(encoding: str, dtype: str, shape: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Chunk data each encoding should keep: random for lossless ones, smooth for jpeg, labels for cseg."""
    dt = DTYPES[dtype]
    if encoding == "jpeg":
        x, y, z, c = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
        return np.asfortranarray((40 + 3 * x + 2 * y + 5 * z + 30 * c).astype(np.uint8))
    if encoding == "compressed_segmentation":
        labels = np.array([0, 1, 7, 2**31 + 5, 2**32 - 1], dtype=np.uint64)
        if dtype == "uint64":
            labels = np.concatenate([labels, np.array([2**32, 2**40 + 3, 2**64 - 1], dtype=np.uint64)])
        return np.asfortranarray(rng.choice(labels, size=shape).astype(dt))
    if dt == np.dtype(bool):
        return np.asfortranarray(rng.random(shape) < 0.5)
    if dt.kind == "f":
        out = rng.standard_normal(shape).astype(dt) * 1e6
        out.flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
        return np.asfortranarray(out)
    info = np.iinfo(dt)
    return np.asfortranarray(rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True))


def round_trip_params() -> list[Any]:
    out = []
    for encoding, dtype, channels in ENCODING_CASES:
        for compression in COMPRESSIONS:
            # With this seed the gzip'd 5x12x3 float64 edge chunk is exactly as long as the raw chunk
            # (1440 bytes): a regression test for decoders that guess "raw" from the length.
            out.append(pytest.param(encoding, dtype, channels, compression,
                                    id=f"{encoding}-{dtype}-{channels}ch-{comp_id(compression)}"))
    return out


@pytest.mark.parametrize(("encoding", "dtype", "channels", "compression"), round_trip_params())
def test_round_trip(encoding: str, dtype: str, channels: int, compression: Any, rng: np.random.Generator) -> None:
    p = pipeline(encoding, dtype, channels, compression)
    for spatial in (CHUNK, EDGE):
        shape = spatial + (channels,)
        chunk = sample(encoding, dtype, shape, rng)
        stored = p.encode(chunk, "test-key")
        assert isinstance(stored, bytes)
        out = p.decode(stored, shape, "test-key")
        assert out.shape == shape
        assert out.dtype == DTYPES[dtype]
        if encoding == "jpeg":
            diff = np.abs(out.astype(int) - chunk.astype(int))
            assert diff.mean() < 2.5 and diff.max() <= 24, (diff.mean(), diff.max())
        else:
            np.testing.assert_array_equal(out, chunk)
        # The byte codec really sits on top of the encoding.
        plain = p.codec.encode(chunk)
        if compression is None:
            assert stored == plain
        else:
            assert stored != plain
            assert p.compressor is not None and p.compressor.decode(stored) == plain
            cid = compression if isinstance(compression, str) else compression["id"]
            if cid == "gzip":
                assert stored[:2] == b"\x1f\x8b" and gzip.decompress(stored) == plain
            elif cid == "zstd":
                assert stored[:4] == b"\x28\xb5\x2f\xfd" and zstandard.ZstdDecompressor().decompress(stored) == plain
            else:
                assert blosc.decompress(stored) == plain


def test_raw_is_little_endian_fortran_order(rng: np.random.Generator) -> None:
    p = pipeline("raw", "uint16", 2)
    chunk = np.asfortranarray(rng.integers(0, 2**16, size=(3, 2, 2, 2), dtype=np.uint16))
    stored = p.encode(chunk)
    assert stored == chunk.astype("<u2").tobytes(order="F")
    assert stored == np.ascontiguousarray(chunk.transpose(3, 2, 1, 0)).astype("<u2").tobytes()  # C order of (c,z,y,x)
    big = p.encode(chunk.astype(">u2"))  # a big-endian array is stored little-endian all the same
    assert big == stored
    assert pipeline("raw", "bool", 1).encode(np.array([True, False]).reshape(2, 1, 1, 1)) == b"\x01\x00"


def test_tensorstore_raw_vector(local_url: str) -> None:
    ba = bc.create(local_url, dtype="uint8", size=(2, 3, 1), chunk_size=(2, 3, 1), resolution=(1, 1, 1))
    ba[0:2, 0:3, 0:1] = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)[:, :, np.newaxis]
    files = files_under(local_root(local_url))
    assert sorted(files) == ["1_1_1/0-2_0-3_0-1", "info"]
    assert files["1_1_1/0-2_0-3_0-1"] == bytes([0x01, 0x04, 0x02, 0x05, 0x03, 0x06])
    np.testing.assert_array_equal(bc.open(local_url)[:, :, 0, 0], [[1, 2, 3], [4, 5, 6]])


# -- compressed_segmentation words ---------------------------------------------------------


def cseg_reference_decode(words: np.ndarray, spatial: tuple[int, int, int], block: tuple[int, int, int],
                          dtype: np.dtype) -> np.ndarray:
    """Decode one channel stream straight from the format's description (independent of the codec)."""
    ew = 2 if dtype == np.uint64 else 1
    grid = [-(-s // b) for s, b in zip(spatial, block, strict=True)]
    out = np.zeros(spatial, dtype=dtype)
    for gz in range(grid[2]):
        for gy in range(grid[1]):
            for gx in range(grid[0]):
                h = 2 * (gx + grid[0] * (gy + grid[1] * gz))
                table, bits, values = int(words[h]) & 0xFFFFFF, int(words[h]) >> 24, int(words[h + 1])
                assert bits in (0, 1, 2, 4, 8, 16, 32)
                for z in range(block[2]):
                    for y in range(block[1]):
                        for x in range(block[0]):
                            X, Y, Z = gx * block[0] + x, gy * block[1] + y, gz * block[2] + z
                            if X >= spatial[0] or Y >= spatial[1] or Z >= spatial[2]:
                                continue
                            bit = bits * (x + block[0] * (y + block[1] * z))
                            idx = (int(words[values + bit // 32]) >> (bit % 32)) & ((1 << bits) - 1) if bits else 0
                            label = int(words[table + idx * ew])
                            if ew == 2:
                                label |= int(words[table + idx * ew + 1]) << 32
                            out[X, Y, Z] = label
    return out


NG_VALUES = np.array([4, 3, 4, 4]).reshape((2, 2, 1, 1), order="F")  # (x, y) = (0,0) (1,0) (0,1) (1,1)


def test_cseg_neuroglancer_uint32_vector() -> None:
    # neuroglancer encode_uint32.spec.ts: block [2,2,1], encodedBits 1, table [3, 4], bits 0b1101.
    info = bc.create_info(dtype="uint32", size=(2, 2, 1), encoding="compressed_segmentation",
                          compressed_segmentation_block_size=(2, 2, 1))
    p = pipeline_for(info.scales[0], info.dtype, 1)
    expected = [1, 3 | (1 << 24), 2, 0b1101, 3, 4]
    vector = np.array(expected, dtype="<u4").tobytes()
    np.testing.assert_array_equal(p.decode(vector, (2, 2, 1, 1)), NG_VALUES)
    stored = p.encode(NG_VALUES.astype(np.uint32))
    assert list(np.frombuffer(stored, "<u4")) == expected


def test_cseg_neuroglancer_uint64_vector() -> None:
    info = bc.create_info(dtype="uint64", size=(2, 2, 1), encoding="compressed_segmentation",
                          compressed_segmentation_block_size=(2, 2, 1))
    p = pipeline_for(info.scales[0], info.dtype, 1)
    expected = [1, 3 | (1 << 24), 2, 0b1101, 3, 0, 4, 0]
    np.testing.assert_array_equal(p.decode(np.array(expected, dtype="<u4").tobytes(), (2, 2, 1, 1)), NG_VALUES)
    assert list(np.frombuffer(p.encode(NG_VALUES.astype(np.uint64)), "<u4")) == expected
    # Labels above 2**32 keep their high word.
    big = (NG_VALUES.astype(np.uint64) << np.uint64(36)) + np.uint64(9)
    words = np.frombuffer(p.encode(big), "<u4")
    np.testing.assert_array_equal(cseg_reference_decode(words[1:], (2, 2, 1), (2, 2, 1), np.dtype(np.uint64)),
                                  big[..., 0])


@pytest.mark.parametrize("dtype", ["uint32", "uint64"])
def test_cseg_multichannel_header_is_channel_word_offsets(dtype: str, rng: np.random.Generator) -> None:
    block = (4, 4, 2)
    p = pipeline("compressed_segmentation", dtype, 3)
    chunk = sample("compressed_segmentation", dtype, EDGE + (3,), rng)
    chunk[..., 1] = 7  # one channel of a single value: encodedBits 0 everywhere
    words = np.frombuffer(p.encode(chunk), "<u4")
    offsets = [int(w) for w in words[:3]]
    assert offsets[0] == 3
    assert offsets[0] < offsets[1] < offsets[2] < len(words)
    bounds = offsets + [len(words)]
    for c in range(3):
        stream = words[bounds[c]:bounds[c + 1]]
        np.testing.assert_array_equal(cseg_reference_decode(stream, EDGE, block, DTYPES[dtype]), chunk[..., c])
    # Channel 1 is constant: every block header has encodedBits 0.
    nblocks = 2 * 3 * 2
    assert all(int(w) >> 24 == 0 for w in words[bounds[1]:bounds[1] + 2 * nblocks:2])


def test_cseg_single_channel_stream_matches_the_reference(rng: np.random.Generator) -> None:
    p = pipeline("compressed_segmentation", "uint32", 1)
    chunk = sample("compressed_segmentation", "uint32", CHUNK + (1,), rng)
    words = np.frombuffer(p.encode(chunk), "<u4")
    assert words[0] == 1
    np.testing.assert_array_equal(cseg_reference_decode(words[1:], CHUNK, (4, 4, 2), np.dtype(np.uint32)),
                                  chunk[..., 0])


# -- jpeg / png image layout ---------------------------------------------------------------


def image_of(chunk: np.ndarray) -> np.ndarray:
    """The expected 2-D image: width X, height Y*Z, pixel (row y + Y*z, col x) = chunk[x, y, z, :]."""
    x, y, z, c = chunk.shape
    img = np.zeros((y * z, x, c), dtype=chunk.dtype)
    for zz in range(z):
        for yy in range(y):
            img[yy + y * zz, :, :] = chunk[:, yy, zz, :]
    return img


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_layout_width_x_height_yz_interleaved(channels: int) -> None:
    p = pipeline("jpeg", "uint8", channels, jpeg_quality=95)
    chunk = np.zeros((16, 8, 4, channels), dtype=np.uint8, order="F")
    # Flat 8x8 blocks of distinct colours, so JPEG's error stays tiny.
    for zz in range(4):
        for bx in range(2):
            for c in range(channels):
                chunk[bx * 8:(bx + 1) * 8, :, zz, c] = 10 + 30 * zz + 20 * bx + 60 * c
    stored = p.encode(chunk)
    assert stored[:2] == b"\xff\xd8"
    img = Image.open(io.BytesIO(stored))
    assert img.size == (16, 8 * 4)  # width X, height Y*Z
    assert img.mode == ("L" if channels == 1 else "RGB")
    pixels = np.asarray(img).reshape(32, 16, channels)
    diff = np.abs(pixels.astype(int) - image_of(chunk).astype(int))
    assert diff.max() <= 3, diff.max()
    decoded = p.decode(stored, chunk.shape)
    assert np.abs(decoded.astype(int) - chunk.astype(int)).max() <= 3


@pytest.mark.parametrize(("dtype", "channels"), [("uint8", 1), ("uint8", 2), ("uint8", 3), ("uint8", 4),
                                                 ("uint16", 1), ("uint16", 3)])
def test_png_layout_width_x_height_yz_interleaved(dtype: str, channels: int, rng: np.random.Generator) -> None:
    p = pipeline("png", dtype, channels)
    chunk = sample("png", dtype, (7, 5, 3, channels), rng)
    stored = p.encode(chunk)
    assert stored[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = imagecodecs.png_decode(stored)
    assert decoded.shape[:2] == (5 * 3, 7)
    np.testing.assert_array_equal(decoded.reshape(15, 7, channels), image_of(chunk))
    if dtype == "uint8" and channels in (1, 3, 4):
        img = Image.open(io.BytesIO(stored))
        assert img.size == (7, 15)
        np.testing.assert_array_equal(np.asarray(img).reshape(15, 7, channels), image_of(chunk))


def test_png_16_bit_samples_decode_to_native_values_in_other_readers() -> None:
    # PNG stores 16-bit samples most significant byte first; PIL follows the PNG spec.
    p = pipeline("png", "uint16", 1)
    chunk = np.array([0x0102, 0x0304, 0xFF00], dtype=np.uint16).reshape(3, 1, 1, 1)
    img = Image.open(io.BytesIO(p.encode(chunk)))
    assert img.size == (3, 1)
    assert [img.getpixel((x, 0)) for x in range(3)] == [0x0102, 0x0304, 0xFF00]


def test_image_decoders_accept_other_layouts_of_the_same_area(rng: np.random.Generator) -> None:
    # Neuroglancer allows [X*Y, Z] as well as [X, Y*Z]: the pixels are the same row-major sequence.
    chunk = sample("png", "uint8", (6, 4, 3, 3), rng)
    flat = image_of(chunk).reshape(-1, 3)
    other = flat.reshape(3, 24, 3)  # height Z, width X*Y
    stored = imagecodecs.png_encode(other)
    np.testing.assert_array_equal(pipeline("png", "uint8", 3).decode(stored, chunk.shape), chunk)  # type: ignore[arg-type]


# -- magic sniffing ---------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", ["gzip", "zstd"])
def test_compressed_bytes_are_sniffed_when_the_info_records_none(dataset_url: str, wrap: str,
                                                                 rng: np.random.Generator) -> None:
    ba = make(dataset_url, dtype="uint16", size=(32, 16, 16), chunk_size=(16, 16, 16))
    assert ba.compression is None
    chunk = rng.integers(0, 2**16, size=(16, 16, 16, 1), dtype=np.uint16)
    raw = chunk.astype("<u2").tobytes(order="F")
    body = gzip.compress(raw) if wrap == "gzip" else zstandard.ZstdCompressor().compress(raw)
    ba.store.set(f"{ba.key}/16-32_0-16_0-16", body)
    np.testing.assert_array_equal(ba[16:32, 0:16, 0:16], chunk)
    assert (ba[0:16, 0:16, 0:16] == 0).all()


@pytest.mark.parametrize("suffix", [".gz", ".zstd", ".br"])
def test_cloudvolume_suffix_files_are_read(local_url: str, suffix: str, rng: np.random.Generator) -> None:
    ba = make(local_url, dtype="uint8", size=(16, 16, 16), chunk_size=(16, 16, 16))
    chunk = rng.integers(0, 256, size=(16, 16, 16, 1), dtype=np.uint8)
    raw = chunk.tobytes(order="F")
    body = {".gz": gzip.compress, ".zstd": zstandard.ZstdCompressor().compress, ".br": brotli.compress}[suffix](raw)
    path = f"{local_root(local_url)}/{ba.key}/0-16_0-16_0-16{suffix}"
    import os
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)
    np.testing.assert_array_equal(bc.open(local_url)[:, :, :], chunk)


@pytest.mark.parametrize(("compression", "suffix"), [("gzip", ".gz"), ("zstd", ".zstd"), ("blosc", "")])
def test_local_files_follow_the_cloudvolume_suffix_convention(local_url: str, compression: str, suffix: str) -> None:
    ba = make(local_url, dtype="uint8", size=(16, 16, 16), chunk_size=(16, 16, 16), compression=compression)
    ba[:, :, :] = 5
    files = files_under(local_root(local_url))
    assert sorted(files) == sorted(["info", f"{ba.key}/0-16_0-16_0-16{suffix}"])
    assert (bc.open(local_url)[:, :, :] == 5).all()


def test_raw_bytes_that_look_like_gzip_are_not_sniffed(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="uint8", size=(8, 8, 8), chunk_size=(8, 8, 8))
    data = np.zeros((8, 8, 8), dtype=np.uint8, order="F")
    data.flat[:4] = [0x1F, 0x8B, 0x08, 0x00]  # gzip's magic, in a raw chunk of exactly the right size
    data.flat[4:8] = [0x28, 0xB5, 0x2F, 0xFD]
    ba[:, :, :] = data
    np.testing.assert_array_equal(bc.open(dataset_url)[:, :, :, 0], data)


# -- corrupt chunks ----------------------------------------------------------------------------


def corrupt_cases() -> list[Any]:
    """(encoding, dtype, channels, compression, make_bad_bytes(valid_bytes, rng)) rows."""
    def truncated(b: bytes, rng: np.random.Generator) -> bytes:
        return b[: len(b) // 2]

    def garbage(b: bytes, rng: np.random.Generator) -> bytes:
        return b"\xa5" + rng.integers(0, 256, size=333, dtype=np.uint8).tobytes()

    def one_short(b: bytes, rng: np.random.Generator) -> bytes:
        return b[:-1]

    def one_long(b: bytes, rng: np.random.Generator) -> bytes:
        return b + b"\x00"

    def gzip_magic_garbage(b: bytes, rng: np.random.Generator) -> bytes:
        return b"\x1f\x8b\x08" + rng.integers(0, 256, size=100, dtype=np.uint8).tobytes()

    def wrong_image_size(encoding: str, channels: int, dtype: str) -> Any:
        def bad(b: bytes, rng: np.random.Generator) -> bytes:
            img = np.zeros((5, 16) + ((channels,) if channels > 1 else ()), dtype=dtype)
            return bytes(imagecodecs.jpeg8_encode(img) if encoding == "jpeg" else imagecodecs.png_encode(img))
        return bad

    def wrong_channels(encoding: str) -> Any:
        def bad(b: bytes, rng: np.random.Generator) -> bytes:
            img = np.zeros((16 * 16, 16), dtype=np.uint8)  # grayscale, where 3 channels are stored
            return bytes(imagecodecs.jpeg8_encode(img) if encoding == "jpeg" else imagecodecs.png_encode(img))
        return bad

    def png_8_bit(b: bytes, rng: np.random.Generator) -> bytes:
        return bytes(imagecodecs.png_encode(np.zeros((16 * 16, 16), dtype=np.uint8)))

    def cseg_bad_channel_count(b: bytes, rng: np.random.Generator) -> bytes:
        return (2).to_bytes(4, "little") + b[4:]

    def cseg_bad_bits(b: bytes, rng: np.random.Generator) -> bytes:
        words = np.frombuffer(b, "<u4").copy()
        words[1] = (words[1] & 0xFFFFFF) | (3 << 24)  # encodedBits 3 is not a valid width
        return bytes(words.tobytes())

    def cseg_values_past_end(b: bytes, rng: np.random.Generator) -> bytes:
        words = np.frombuffer(b, "<u4").copy()
        words[1] = (words[1] & 0xFFFFFF) | (8 << 24)
        words[2] = len(words) + 10
        return bytes(words.tobytes())

    def cseg_table_past_end(b: bytes, rng: np.random.Generator) -> bytes:
        words = np.frombuffer(b, "<u4").copy()
        words[1] = (words[1] & 0xFF000000) | (len(words) + 50)
        return bytes(words.tobytes())

    def cseg_bad_offsets(b: bytes, rng: np.random.Generator) -> bytes:
        words = np.frombuffer(b, "<u4").copy()
        words[1] = len(words) + 5  # channel 1 would start past the end
        return bytes(words.tobytes())

    def cseg_odd_length(b: bytes, rng: np.random.Generator) -> bytes:
        return b + b"\x00\x00"

    def raw_gzip_wrong_size(b: bytes, rng: np.random.Generator) -> bytes:
        return gzip.compress(gzip.decompress(b)[:-2])

    def blosc_wrong_size(b: bytes, rng: np.random.Generator) -> bytes:
        return bytes(blosc.compress(blosc.decompress(b)[:-4], typesize=1))

    rows: list[Any] = []
    for name, f in [("truncated", truncated), ("garbage", garbage), ("one-short", one_short),
                    ("one-long", one_long), ("gzip-magic-garbage", gzip_magic_garbage)]:
        rows.append(pytest.param("raw", "uint16", 1, None, f, id=f"raw-{name}"))
    for name, f in [("truncated", truncated), ("garbage", gzip_magic_garbage), ("wrong-size", raw_gzip_wrong_size)]:
        rows.append(pytest.param("raw", "uint16", 1, "gzip", f, id=f"raw-gzip-{name}"))
    for name, f in [("truncated", truncated), ("garbage", garbage)]:
        rows.append(pytest.param("raw", "uint16", 1, "zstd", f, id=f"raw-zstd-{name}"))
    for name, f in [("truncated", truncated), ("garbage", garbage), ("wrong-size", blosc_wrong_size)]:
        rows.append(pytest.param("raw", "uint16", 1, "blosc", f, id=f"raw-blosc-{name}"))
    for enc, dt in (("jpeg", "uint8"), ("png", "uint8"), ("png", "uint16")):
        for name, f in [("truncated", truncated), ("garbage", garbage),
                        ("wrong-image-size", wrong_image_size(enc, 3, dt)), ("wrong-channels", wrong_channels(enc))]:
            rows.append(pytest.param(enc, dt, 3, None, f, id=f"{enc}-{dt}-{name}"))
    rows.append(pytest.param("png", "uint16", 1, None, png_8_bit, id="png-uint16-8-bit-samples"))
    rows.append(pytest.param("png", "uint8", 1, "gzip", truncated, id="png-gzip-truncated"))
    for name, f in [("truncated", truncated), ("garbage", garbage), ("bad-channel-count", cseg_bad_channel_count),
                    ("bad-encoded-bits", cseg_bad_bits), ("values-past-end", cseg_values_past_end),
                    ("table-past-end", cseg_table_past_end), ("odd-length", cseg_odd_length)]:
        rows.append(pytest.param("compressed_segmentation", "uint32", 1, None, f, id=f"cseg-{name}"))
    rows.append(pytest.param("compressed_segmentation", "uint64", 2, None, truncated, id="cseg-2ch-truncated"))
    rows.append(pytest.param("compressed_segmentation", "uint64", 2, None, cseg_bad_offsets,
                             id="cseg-2ch-bad-offsets"))
    return rows


@pytest.mark.parametrize(("encoding", "dtype", "channels", "compression", "spoil"), corrupt_cases())
def test_corrupt_chunk_raises_chunk_decode_error_naming_the_key(
    dataset_url: str, encoding: str, dtype: str, channels: int, compression: Any, spoil: Any,
    rng: np.random.Generator,
) -> None:
    ba = make(dataset_url, dtype=dtype, size=(32, 16, 16), chunk_size=(16, 16, 16), num_channels=channels,
              encoding=encoding, compression=compression, compressed_segmentation_block_size=(8, 8, 8))
    data = sample(encoding, dtype, (32, 16, 16, channels), rng)
    ba[:, :, :] = data
    key = f"{ba.key}/16-32_0-16_0-16"
    valid = ba.store.get(key)
    assert valid is not None
    bad = spoil(valid, rng)
    assert bad != valid
    ba.store.set(key, bad)
    with pytest.raises(bc.ChunkDecodeError) as info:
        ba[0:32, 0:16, 0:16]
    err = info.value
    assert isinstance(err, ValueError)
    assert ba.store.describe(key) in str(err)
    assert err.key is not None and key in err.key
    # The intact chunk beside it still reads.
    got = bc.open(dataset_url)[0:16, 0:16, 0:16]
    if encoding == "jpeg":
        assert np.abs(got.astype(int) - data[:16].astype(int)).mean() < 2.5
    else:
        np.testing.assert_array_equal(got, data[:16])


def test_a_valid_chunk_of_the_wrong_shape_is_refused(dataset_url: str) -> None:
    # A full 16^3 chunk stored under the key of the clipped 4x16x16 edge chunk.
    for encoding, dtype in (("raw", "uint8"), ("png", "uint8"), ("jpeg", "uint8")):
        url = f"{dataset_url}-{encoding}"
        ba = make(url, dtype=dtype, size=(20, 16, 16), chunk_size=(16, 16, 16), encoding=encoding)
        ba[:, :, :] = 9
        full = ba.store.get(f"{ba.key}/0-16_0-16_0-16")
        assert full is not None
        edge = f"{ba.key}/16-20_0-16_0-16"
        ba.store.set(edge, full)
        with pytest.raises(bc.ChunkDecodeError, match="16-20_0-16_0-16"):
            ba[16:20, 0:16, 0:16]


@pytest.mark.parametrize("dtype", ["uint32", "uint64"])
def test_a_cseg_chunk_of_a_smaller_shape_is_refused(dataset_url: str, dtype: str, rng: np.random.Generator) -> None:
    # The clipped 4x16x16 edge chunk stored under the key of a full 16^3 chunk: too few block headers.
    # (The other way round cannot always be caught: compressed_segmentation records no shape.)
    ba = make(dataset_url, dtype=dtype, size=(20, 16, 16), chunk_size=(16, 16, 16),
              encoding="compressed_segmentation", compressed_segmentation_block_size=(4, 4, 4))
    ba[:, :, :] = sample("compressed_segmentation", dtype, (20, 16, 16, 1), rng)
    edge = ba.store.get(f"{ba.key}/16-20_0-16_0-16")
    assert edge is not None
    ba.store.set(f"{ba.key}/0-16_0-16_0-16", edge)
    with pytest.raises(bc.ChunkDecodeError, match="0-16_0-16_0-16"):
        ba[0:16, 0:16, 0:16]


def test_zero_byte_chunks_count_as_missing(dataset_url: str) -> None:
    ba = make(dataset_url, size=(16, 16, 16), chunk_size=(16, 16, 16))
    ba.store.set(f"{ba.key}/0-16_0-16_0-16", b"")
    assert (ba[:, :, :] == 0).all()
    with pytest.raises(bc.ChunkNotFoundError, match="0-16_0-16_0-16"):
        bc.open(dataset_url, fill_missing=False)[:, :, :]


def chunk_compressing_to_its_own_size(p: ChunkPipeline, shape: tuple[int, int, int, int]) -> np.ndarray:
    """uint8 chunk data whose compressed form is exactly as long as the raw chunk (zeros + seeded noise)."""
    n = int(np.prod(shape))
    assert p.compressor is not None
    for seed in range(4):
        noise = np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8)
        for k in range(n):
            flat = np.concatenate([np.zeros(k, dtype=np.uint8), noise[k:]])
            if len(p.compressor.encode(flat.tobytes())) == n:
                return flat.reshape(shape, order="F")
    raise AssertionError(f"no zero prefix makes {p.describe()} output {n} bytes")


@pytest.mark.parametrize(("compression", "chunk"), [("gzip", (16, 16, 16)), ("zstd", (4, 4, 4)),
                                                    ({"id": "blosc", "cname": "lz4"}, (8, 4, 4))],
                         ids=["gzip", "zstd", "blosc-lz4"])
def test_compressed_chunk_as_long_as_the_raw_chunk_is_decompressed(dataset_url: str, compression: Any,
                                                                  chunk: tuple[int, int, int]) -> None:
    ba = make(dataset_url, dtype="uint8", size=chunk, chunk_size=chunk, compression=compression)
    data = chunk_compressing_to_its_own_size(pipeline_for(ba.scale, ba.dtype, 1), chunk + (1,))
    ba[:, :, :] = data
    key = f"{ba.key}/" + "_".join(f"0-{n}" for n in chunk)
    assert len(ba.store.get(key) or b"") == data.size
    np.testing.assert_array_equal(bc.open(dataset_url)[:, :, :], data)


def test_jpeg_quality_and_png_level_from_the_info_are_used(rng: np.random.Generator) -> None:
    noisy = np.asfortranarray(rng.integers(0, 256, size=(64, 64, 8, 1), dtype=np.uint8))
    low, high = (len(pipeline("jpeg", "uint8", 1, jpeg_quality=q).encode(noisy)) for q in (10, 95))
    assert low * 2 < high
    levels = np.asfortranarray(noisy // 64)
    stored, packed = (len(pipeline("png", "uint8", 1, png_level=lv).encode(levels)) for lv in (0, 9))
    assert packed * 2 < stored


def test_unencodable_chunk_raises_chunk_encode_error_naming_the_key(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="uint8", size=(8, 9000, 8), chunk_size=(8, 9000, 8), encoding="jpeg")
    with pytest.raises(bc.ChunkEncodeError) as info:
        ba[:, :, :] = 1
    assert ba.store.describe(f"{ba.key}/0-8_0-9000_0-8") in str(info.value)
    assert "65500" in str(info.value)
    assert list(ba.store.list()) == ["info"]
