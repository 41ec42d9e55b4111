"""The encodings CloudVolume writes besides the standard four, and brotli compression.

compresso, crackle, jxl, fpzip, kempressed and zfpc through their libraries: round trips of
every dtype and channel count each stores (and a clear refusal of the others), region
decodes equal to whole decodes, damaged chunks refused where the format can tell, and
``br`` (brotli) byte compression with CloudVolume's conventions. Interop with CloudVolume
itself is in tests/interop/test_cloudvolume_codecs.py and tests/cloud/test_codecs_cloudvolume.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import brotli
import crackle
import fpzip
import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.codecs import ChunkPipeline, chunk_codec, pipeline_for
from bigarrays_core.format import DTYPES
from bigarrays_core.kvstore import MemoryStore

from .datasets import files_under, local_root

CHUNK = (16, 12, 8)
EDGE = (5, 12, 3)

#: (encoding, dtype, channels) each codec stores, with settings making it lossless.
LOSSLESS: list[tuple[str, str, int, dict[str, Any]]] = (
    [("compresso", dt, 1, {}) for dt in ("uint8", "uint16", "uint32", "uint64")]
    + [("crackle", dt, 1, {}) for dt in ("uint8", "uint16", "uint32", "uint64")]
    + [("jxl", "uint8", c, {"jxl_quality": 100}) for c in (1, 3, 4)]
    + [("fpzip", dt, c, {}) for dt in ("float32", "float64") for c in (1, 3)]
    + [("fpzip", "float32", 2, {"fpzip_precision": 32}), ("fpzip", "float64", 1, {"fpzip_precision": 64})]
    + [("zfpc", dt, c, {}) for dt in ("float32", "float64", "int32", "int64") for c in (1, 2)]
    + [("zfpc", "float32", 3, {"zfpc_correlated_dims": [True, True, False, False]})]
)


def pipeline(encoding: str, dtype: str, channels: int, compression: Any = None,
             settings: dict[str, Any] | None = None) -> ChunkPipeline:
    info = bc.create_info(dtype=dtype, size=(37, 12, 19), chunk_size=CHUNK, num_channels=channels,
                          encoding=encoding, compression=compression, encoding_settings=settings or {})
    return pipeline_for(info.scales[0], info.dtype, info.num_channels)


def sample(encoding: str, dtype: str, shape: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Data each encoding keeps exactly: labels in patches, smooth images, floats with specials."""
    dt = DTYPES[dtype]
    x, y, z, c = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    if encoding in ("compresso", "crackle"):
        top = np.iinfo(dt).max
        labels = np.array([0, 1, 7, top // 3, top - 1, top], dtype=dt)
        patches = (x // 3 + 2 * (y // 4) + 3 * (z // 2)) % len(labels)
        out = labels[patches]
        out[rng.random(shape) < 0.05] = labels[2]
        return np.asfortranarray(out)
    if encoding == "jxl":
        return np.asfortranarray((rng.integers(0, 256, size=shape)).astype(np.uint8))
    if dt.kind == "f":
        out = (rng.standard_normal(shape) * 1e3).astype(dt)
        if encoding == "fpzip":
            out.flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
        return np.asfortranarray(out)
    info = np.iinfo(dt)
    return np.asfortranarray(rng.integers(info.min // 4, info.max // 4, size=shape, dtype=dt))


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
    if expected.dtype.kind == "f":  # -0.0 and NaN payloads survive too
        assert actual.tobytes(order="F") == expected.tobytes(order="F")


@pytest.mark.parametrize("compression", [None, "gzip", "br", {"id": "br", "level": 11}, "zstd"],
                         ids=["none", "gzip", "br", "br-11", "zstd"])
@pytest.mark.parametrize(("encoding", "dtype", "channels", "settings"), LOSSLESS,
                         ids=[f"{e}-{d}-{c}ch{'-' + '-'.join(map(str, s.values())) if s else ''}"
                              for e, d, c, s in LOSSLESS])
def test_lossless_round_trip(encoding: str, dtype: str, channels: int, settings: dict[str, Any],
                             compression: Any, rng: np.random.Generator) -> None:
    p = pipeline(encoding, dtype, channels, compression, settings)
    for spatial in (CHUNK, EDGE):
        shape = spatial + (channels,)
        chunk = sample(encoding, dtype, shape, rng)
        stored = p.encode(chunk, "test-key")
        assert_same(p.decode(stored, shape, "test-key"), chunk)
        if compression is not None:
            assert stored != p.codec.encode(chunk)
            assert p.compressor is not None and p.compressor.decode(stored) == p.codec.encode(chunk)


@pytest.mark.parametrize(("encoding", "dtype", "channels", "settings"), LOSSLESS[::3])
def test_region_decode_equals_whole_decode(encoding: str, dtype: str, channels: int, settings: dict[str, Any],
                                           rng: np.random.Generator) -> None:
    p = pipeline(encoding, dtype, channels, None, settings)
    shape = CHUNK + (channels,)
    stored = p.encode(sample(encoding, dtype, shape, rng))
    whole = p.decode(stored, shape)
    for region in [(slice(0, 16), slice(0, 12), slice(0, 8), slice(0, channels)),
                   (slice(3, 9), slice(1, 12), slice(2, 5), slice(channels - 1, channels)),
                   (slice(15, 16), slice(0, 1), slice(7, 8), slice(0, 1))]:
        out = np.full(tuple(r.stop - r.start for r in region), 99, dtype=DTYPES[dtype], order="F")
        p.decode_into(stored, shape, region, out)
        assert_same(out, whole[region])


@pytest.mark.parametrize("variant", ["compresso format 0", "crackle markov", "crackle pins"])
def test_other_stream_variants_the_libraries_write_are_read(variant: str, rng: np.random.Generator) -> None:
    """Streams bigarrays does not write itself but other writers may: compresso without its z
    index (format 0: whole decodes only), crackle with a Markov model or with "pins" labels."""
    import compresso

    encoding = variant.split()[0]
    p = pipeline(encoding, "uint32", 1)
    chunk = sample(encoding, "uint32", CHUNK + (1,), rng)
    labels = np.asfortranarray(chunk[..., 0])
    body = {"compresso format 0": lambda: compresso.compress(labels, random_access_z_index=False),
            "crackle markov": lambda: crackle.compress(labels, markov_model_order=3),
            "crackle pins": lambda: crackle.compress(labels, allow_pins=1)}[variant]()
    assert_same(p.decode(body, chunk.shape), chunk)
    out = np.zeros((5, 12, 3, 1), np.uint32, order="F")
    p.decode_into(body, chunk.shape, (slice(2, 7), slice(0, 12), slice(4, 7), slice(0, 1)), out)
    assert_same(out, chunk[2:7, :, 4:7])


def test_kempressed_is_fpzip_of_two_plus_v_with_z_and_channels_swapped(rng: np.random.Generator) -> None:
    import fpzip

    p = pipeline("kempressed", "float32", 3)
    chunk = np.asfortranarray(rng.random(CHUNK + (3,), dtype=np.float32))
    stored = p.encode(chunk)
    inner = fpzip.decompress(stored, order="F")
    assert inner.shape == (16, 12, 3, 8)
    np.testing.assert_array_equal(inner, (chunk + np.float32(2)).swapaxes(2, 3))
    # Lossless on the stored 2 + v; (2 + v) - 2 rounds v to what float32 holds near 2.
    expected = (chunk + np.float32(2)) - np.float32(2)
    assert_same(p.decode(stored, chunk.shape), expected)
    grid = np.asfortranarray(np.round(chunk * 1024) / np.float32(1024))
    assert_same(p.decode(p.encode(grid), grid.shape), grid)
    out = np.zeros((4, 12, 2, 1), np.float32, order="F")
    p.decode_into(stored, chunk.shape, (slice(2, 6), slice(0, 12), slice(5, 7), slice(1, 2)), out)
    assert_same(out, expected[2:6, :, 5:7, 1:2])


@pytest.mark.parametrize(("encoding", "dtype", "settings", "bound"), [
    ("jxl", "uint8", {}, 12),  # quality 85
    ("jxl", "uint8", {"jxl_quality": 50, "jxl_effort": 3, "jxl_decodingspeed": 2}, 40),
    ("fpzip", "float32", {"fpzip_precision": 16}, 2.0**-6),
    ("fpzip", "float64", {"fpzip_precision": 20}, 2.0**-2),
    ("zfpc", "float32", {"zfpc_tolerance": 0.01}, 0.01),
    ("zfpc", "float64", {"zfpc_rate": 4}, 0.5),
    ("zfpc", "float32", {"zfpc_precision": 14}, 0.05),
])
def test_lossy_settings_are_applied(encoding: str, dtype: str, settings: dict[str, Any], bound: float,
                                    rng: np.random.Generator) -> None:
    lossless = pipeline(encoding, dtype, 1, None, {"jxl_quality": 100} if encoding == "jxl" else {})
    lossy = pipeline(encoding, dtype, 1, None, settings)
    x, y, z = np.meshgrid(*[np.arange(n) for n in CHUNK], indexing="ij")
    smooth = (np.sin(x / 3) + np.cos(y / 4) + z / 8)[..., None]
    chunk = np.asfortranarray((smooth * 50 + 120).astype(DTYPES[dtype]) if encoding == "jxl"
                              else (smooth / 3).astype(DTYPES[dtype]))
    small, big = lossy.encode(chunk), lossless.encode(chunk)
    assert len(small) < len(big)
    out = lossy.decode(small, chunk.shape)
    error = np.abs(out.astype(float) - chunk.astype(float)).max()
    assert 0 < error <= bound, error


@pytest.mark.parametrize(("encoding", "dtype", "channels", "message"), [
    ("compresso", "int32", 1, "compresso stores data_type uint8 or uint16 or uint32 or uint64, not int32"),
    ("compresso", "uint32", 2, "compresso stores 1 channel, not 2"),
    ("crackle", "int64", 1, "crackle stores data_type uint8 or uint16 or uint32 or uint64, not int64"),
    ("crackle", "uint8", 3, "crackle stores 1 channel, not 3"),
    ("jxl", "uint16", 1, "jxl stores data_type uint8, not uint16"),
    ("jxl", "uint8", 2, "jxl stores 1 or 3 or 4 channels, not 2"),
    ("fpzip", "uint8", 1, "fpzip stores data_type float32 or float64, not uint8"),
    ("kempressed", "int16", 1, "kempressed stores data_type float32 or float64, not int16"),
    ("zfpc", "uint16", 1, "zfpc stores data_type float32 or float64 or int32 or int64, not uint16"),
])
def test_unsupported_dtype_or_channels_is_refused_up_front(encoding: str, dtype: str, channels: int,
                                                           message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chunk_codec(encoding, DTYPES[dtype], channels)
    with pytest.raises(bc.InfoError, match="info.scales.0..encoding") as err:
        bc.create("memory://refused", dtype=dtype, size=(8, 8, 8), num_channels=channels, encoding=encoding)
    assert message in str(err.value)


def test_settings_for_another_encoding_are_refused() -> None:
    with pytest.raises(bc.InfoError, match="jxl takes .*jxl_quality.* not .*jxl_qualty") as err:
        bc.create_info(dtype="uint8", size=(8, 8, 8), encoding="jxl", encoding_settings={"jxl_qualty": 90})
    assert err.value.field == "encoding_settings"
    with pytest.raises(bc.InfoError, match="compresso takes no settings"):
        bc.create_info(dtype="uint8", size=(8, 8, 8), encoding="compresso", encoding_settings={"fpzip_precision": 8})


def test_settings_are_written_as_cloudvolume_names_them() -> None:
    info = bc.create_info(dtype="float32", size=(8, 8, 8), encoding="zfpc", num_mips=2,
                          encoding_settings={"zfpc_tolerance": 0.5, "zfpc_correlated_dims": [True, True, True, False]})
    for scale in info.to_json()["scales"]:
        assert scale["zfpc_tolerance"] == 0.5 and scale["zfpc_correlated_dims"] == [True, True, True, False]
    codec = pipeline_for(info.scales[1], info.dtype, 1).codec
    assert (codec.tolerance, codec.correlated_dims) == (0.5, (True, True, True, False))  # type: ignore[attr-defined]


def test_compresso_crackle_fpzip_and_kempressed_are_gzipped_by_default() -> None:
    """CloudVolume gzips compresso and crackle; bigarrays gzips fpzip and kempressed too (their
    decoders trust their input, gzip's CRC-32 refuses damage first). compression=None writes plain."""
    for encoding, dtype in (("compresso", "uint32"), ("crackle", "uint32"), ("fpzip", "float32"),
                            ("kempressed", "float32")):
        info = bc.create_info(dtype=dtype, size=(8, 8, 8), encoding=encoding)
        assert info.scales[0].compression == {"id": "gzip", "level": 1}
        assert info.layer_type == ("image" if dtype == "float32" else "segmentation")
        plain = bc.create_info(dtype=dtype, size=(8, 8, 8), encoding=encoding, compression=None)
        assert plain.scales[0].compression is None
    for encoding, dtype in (("raw", "uint8"), ("jxl", "uint8"), ("zfpc", "float32")):
        assert bc.create_info(dtype=dtype, size=(8, 8, 8), encoding=encoding).scales[0].compression is None


# -- damaged chunks ---------------------------------------------------------------------------


def _stored(encoding: str, dtype: str, rng: np.random.Generator, channels: int = 1,
            settings: dict[str, Any] | None = None) -> tuple[ChunkPipeline, np.ndarray, bytes]:
    p = pipeline(encoding, dtype, channels, None, settings)
    chunk = sample(encoding, dtype, CHUNK + (channels,), rng)
    return p, chunk, p.encode(chunk)


@pytest.mark.parametrize(("encoding", "dtype"), [("compresso", "uint32"), ("crackle", "uint64"), ("jxl", "uint8"),
                                                 ("zfpc", "float32"), ("fpzip", "float32")])
def test_a_chunk_of_another_shape_is_refused(encoding: str, dtype: str, rng: np.random.Generator) -> None:
    p, _, stored = _stored(encoding, dtype, rng)
    with pytest.raises(bc.ChunkDecodeError, match="the-key") as err:
        p.decode(stored, (16, 12, 7, 1), "the-key")
    assert err.value.key == "the-key"


@pytest.mark.parametrize(("encoding", "dtype", "cut"), [
    ("compresso", "uint32", 0.5), ("compresso", "uint32", 0.05),
    ("crackle", "uint64", 0.999), ("crackle", "uint64", 0.5),
    ("jxl", "uint8", 0.9), ("zfpc", "float32", 0.999), ("zfpc", "int64", 0.5),
])
def test_a_truncated_chunk_is_refused(encoding: str, dtype: str, cut: float, rng: np.random.Generator) -> None:
    p, _, stored = _stored(encoding, dtype, rng)
    with pytest.raises(bc.ChunkDecodeError, match="key-1"):
        p.decode(stored[:int(len(stored) * cut)], CHUNK + (1,), "key-1")


@pytest.mark.parametrize("encoding", ["crackle", "zfpc"])
def test_padding_after_a_chunk_is_refused(encoding: str, rng: np.random.Generator) -> None:
    p, _, stored = _stored(encoding, "uint32" if encoding == "crackle" else "float64", rng)
    with pytest.raises(bc.ChunkDecodeError, match="key-2"):
        p.decode(stored + b"\0" * 8, CHUNK + (1,), "key-2")


def _crackle_sections(stored: bytes) -> tuple[int, int, int]:
    """Where a crackle stream's labels start and end, and where its trailing CRCs start."""
    header = crackle.header(stored)
    labels = header.header_bytes + header.grid_index_bytes
    return labels, labels + header.num_label_bytes, len(stored) - 4 - 4 * header.sz


def test_crackle_damage_the_library_decodes_silently_is_refused(rng: np.random.Generator) -> None:
    """crackle checks each slice's CRC-32C on worker threads that drop the error, and never
    checks the labels' CRC: the library returns wrong labels for these streams."""
    p, chunk, stored = _stored("crackle", "uint64", rng)
    labels_start, labels_end, crcs = _crackle_sections(stored)
    for position, why in [(labels_start + 8, "labels do not match their CRC-32C"),  # the first unique label
                          (crcs + 4 + 4 * 3, "slice z=3 does not match its CRC-32C")]:
        damaged = bytearray(stored)
        damaged[position] ^= 0x10
        assert not np.array_equal(crackle.decompress(bytes(damaged)), chunk[..., 0])  # the library alone
        with pytest.raises(bc.ChunkDecodeError, match=why):
            p.decode(bytes(damaged), chunk.shape, "k")
        region = (slice(0, 16), slice(0, 12), slice(2, 5), slice(0, 1))
        with pytest.raises(bc.ChunkDecodeError, match=why):
            p.decode_into(bytes(damaged), chunk.shape, region, np.zeros((16, 12, 3, 1), np.uint64, order="F"))


def test_crackle_header_and_index_damage_is_refused(rng: np.random.Generator) -> None:
    p, chunk, stored = _stored("crackle", "uint16", rng)
    for position in (2, 9, crackle.header(stored).header_bytes + 5):
        damaged = bytearray(stored)
        damaged[position] ^= 0x01
        with pytest.raises(bc.ChunkDecodeError):
            p.decode(bytes(damaged), chunk.shape, "k")


def test_zfpc_index_that_does_not_add_up_is_refused(rng: np.random.Generator) -> None:
    p, chunk, stored = _stored("zfpc", "float32", rng, 2, {"zfpc_correlated_dims": [True, True, True, False]})
    damaged = bytearray(stored)
    damaged[23 + 8] += 1  # the first stream's size
    with pytest.raises(bc.ChunkDecodeError, match="index describes"):
        p.decode(bytes(damaged), chunk.shape, "k")


@pytest.mark.parametrize("encoding", ["fpzip", "kempressed"])
def test_junk_after_a_plain_fpzip_stream_is_refused_naming_the_key(encoding: str, rng: np.random.Generator) -> None:
    """fpzip's reader says how many bytes decoding consumed: anything after the stream is refused
    (the package's Python function ignores it)."""
    p, chunk, stored = _stored(encoding, "float32", rng, 2 if encoding == "kempressed" else 1)
    np.testing.assert_array_equal(p.decode(stored, chunk.shape, "k"), p.decode(stored, chunk.shape, "k"))
    with pytest.raises(bc.ChunkDecodeError, match="junk after the stream") as err:
        p.decode(stored + b"\x00junk", chunk.shape, "the-key")
    assert err.value.key == "the-key"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fpzip_streams_are_the_packages_bytes(dtype: str, rng: np.random.Generator) -> None:
    """The C writer gives the bytes ``fpzip.compress`` gives (CloudVolume's), every precision,
    shapes of 1 to 4 dimensions, NaN, infinities and -0.0 included."""
    from bigarrays_core.codecs.fpzip import _WRITER, encode_fpzip
    assert _WRITER is not None
    precisions = (0, 2, 16, 32) if dtype == "float32" else (0, 4, 32, 64)
    for shape in [(32, 32, 16, 1), (17, 9, 5, 3), (16, 8, 4), (7, 3), (5,)]:
        x = np.asfortranarray(rng.standard_normal(shape).astype(dtype))
        x.flat[:3] = [np.nan, np.inf, -0.0]
        for precision in precisions:
            assert encode_fpzip(x, precision) == bytes(fpzip.compress(x, precision=precision, order="F"))


@pytest.mark.parametrize(("dtype", "bits"), [("float32", np.uint32), ("float64", np.uint64)])
def test_fpzip_stores_incompressible_floats(dtype: str, bits: Any, rng: np.random.Generator) -> None:
    """Random bit patterns (NaN payloads included) take more room than the array: the
    package's own ``fpzip.compress`` overflows its buffer on them (it corrupts the heap);
    bigarrays' writer has room for them and they come back bit for bit."""
    from bigarrays_core.codecs.fpzip import decode_fpzip, encode_fpzip
    x = np.asfortranarray(rng.integers(0, np.iinfo(bits).max, (32, 32, 32, 2), dtype=bits).view(dtype))
    stored = encode_fpzip(x)
    assert len(stored) > x.nbytes
    np.testing.assert_array_equal(decode_fpzip(stored, x.shape, np.dtype(dtype)).view(bits), x.view(bits))


def test_fpzip_decodes_on_every_core(rng: np.random.Generator) -> None:
    """The C reader runs without the GIL: two threads decode at once (checked by the result
    only; the speed is the benchmarks' business)."""
    from concurrent.futures import ThreadPoolExecutor

    from bigarrays_core.codecs.fpzip import _READER, decode_fpzip, encode_fpzip
    assert _READER is not None  # the package ships the C reader bigarrays calls
    arrays = [np.asfortranarray(rng.standard_normal((32, 32, 16, 1)).astype("float32")) for _ in range(8)]
    streams = [encode_fpzip(a) for a in arrays]
    with ThreadPoolExecutor(2) as pool:
        decoded = list(pool.map(lambda b: decode_fpzip(b, (32, 32, 16, 1), np.dtype("float32")), streams))
    for a, d in zip(arrays, decoded):
        np.testing.assert_array_equal(a, d)


@pytest.mark.parametrize("encoding", ["fpzip", "kempressed"])
def test_fpzip_chunks_are_gzipped_by_default_and_a_truncated_one_is_refused(encoding: str) -> None:
    """fpzip's decoder trusts its stream: a truncated or damaged one can crash the process (its
    range decoder indexes a table with what the damage gives it). bigarrays gzips fpzip and
    kempressed chunks by default, so the CRC-32 refuses the damage before fpzip sees it.
    Decoded in a child process so that a crash fails this test, not the run."""
    script = textwrap.dedent(f"""
        import numpy as np
        import bigarrays_core as bc
        from bigarrays_core.codecs import pipeline_for
        rng = np.random.default_rng(5)
        for dtype in ("float32", "float64"):
            info = bc.create_info(dtype=dtype, size=(64, 64, 64), chunk_size=(64, 64, 64), encoding={encoding!r})
            assert info.scales[0].compression == {{"id": "gzip"}} or info.scales[0].compression["id"] == "gzip"
            p = pipeline_for(info.scales[0], info.dtype, 1)
            chunk = np.asfortranarray(rng.random((64, 64, 64, 1)).astype(dtype))
            stored = p.encode(chunk)
            for cut in (24, 100, len(stored) // 2, len(stored) - 1):
                try:
                    p.decode(stored[:cut], chunk.shape, "the-key")
                except bc.ChunkDecodeError as err:
                    assert err.key == "the-key"
                else:
                    raise AssertionError(f"{{dtype}}: a stream cut at {{cut}} of {{len(stored)}} decoded")
        print("refused")
    """)
    for _ in range(3):  # a crash depends on memory layout: give it several chances
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "refused" in done.stdout, done.stderr[-2000:]


# -- brotli ------------------------------------------------------------------------------------


def test_br_chunks_are_brotli_streams_at_cloudvolumes_default_level(rng: np.random.Generator) -> None:
    p = pipeline("raw", "uint16", 1, "br")
    assert p.compressor is not None and p.compressor.config() == {"id": "br", "level": 5}
    assert p.write_options.content_encoding == "br"
    chunk = sample("zfpc", "int32", CHUNK + (1,), rng).astype(np.uint16)
    stored = p.encode(chunk)
    assert stored == brotli.compress(chunk.tobytes(order="F"), quality=5)  # what CloudVolume writes


def test_br_is_a_suffix_on_local_disk(local_url: str, rng: np.random.Generator) -> None:
    ba = bc.create(local_url, dtype="uint8", size=(32, 16, 16), chunk_size=(16, 16, 16), compression="br")
    data = rng.integers(0, 4, size=(32, 16, 16, 1), dtype=np.uint8)
    ba[:, :, :] = data
    files = files_under(local_root(local_url))
    assert sorted(files) == ["1_1_1/0-16_0-16_0-16.br", "1_1_1/16-32_0-16_0-16.br", "info"]
    assert brotli.decompress(files["1_1_1/0-16_0-16_0-16.br"]) == data[:16].tobytes(order="F")
    np.testing.assert_array_equal(bc.open(local_url)[:, :, :], data)
    # A chunk rewritten plain replaces the .br file (no stale variant shadows it).
    plain = bc.open(local_url)
    assert plain.compression == {"id": "br", "level": 5}


def test_br_scale_reads_values_a_client_already_decoded(rng: np.random.Generator) -> None:
    """Object stores do not report Content-Encoding: a br scale's value is the brotli stream,
    or its content when an HTTP client undid the encoding on the way."""
    p = pipeline("raw", "uint32", 1, "br")
    chunk = sample("zfpc", "int32", CHUNK + (1,), rng).astype(np.uint32)
    plain = chunk.tobytes(order="F")
    np.testing.assert_array_equal(p.decode(p.encode(chunk), chunk.shape), chunk)
    np.testing.assert_array_equal(p.decode(plain, chunk.shape), chunk)
    with pytest.raises(bc.ChunkDecodeError, match="raw chunk is"):
        p.decode(p.encode(chunk)[:-3], chunk.shape)


@pytest.mark.parametrize(("encoding", "dtype"), [("raw", "uint16"), ("compressed_segmentation", "uint32"),
                                                 ("compresso", "uint64"), ("jxl", "uint8"), ("zfpc", "float32")])
def test_unrecorded_brotli_is_read_as_cloudvolume_stores_it_on_object_stores(encoding: str, dtype: str,
                                                                            rng: np.random.Generator) -> None:
    """CloudVolume's brotli chunks on S3/GCS: Content-Encoding br (which reads do not report),
    nothing in the info. The bytes are decoded as brotli when they do not decode as they are."""
    p = pipeline(encoding, dtype, 1, None, {"jxl_quality": 100} if encoding == "jxl" else {})
    chunk = sample({"raw": "compresso", "compressed_segmentation": "compresso"}.get(encoding, encoding), dtype,
                   CHUNK + (1,), rng)
    body = brotli.compress(p.codec.encode(chunk), quality=5)
    assert_same(np.asarray(p.decode(body, chunk.shape)), chunk)
    out = np.zeros((4, 12, 8, 1), DTYPES[dtype], order="F")
    p.decode_into(body, chunk.shape, (slice(3, 7), slice(0, 12), slice(0, 8), slice(0, 1)), out)
    assert_same(out, chunk[3:7])
    # Damaged: neither the bytes nor their brotli content decode; the first error is reported.
    with pytest.raises(bc.ChunkDecodeError):
        p.decode(body[:-2], chunk.shape)


def test_unrecorded_brotli_raw_chunk_is_unwrapped(rng: np.random.Generator) -> None:
    p = pipeline("raw", "uint8", 1)
    chunk = sample("compresso", "uint8", CHUNK + (1,), rng)
    body = brotli.compress(chunk.tobytes(order="F"))
    assert p.unwrap(body, chunk.shape) == chunk.tobytes(order="F")
    with pytest.raises(bc.ChunkDecodeError, match="raw chunk is"):
        p.unwrap(b"\x07" * 10, chunk.shape)


def test_brotli_with_bytes_after_the_stream_is_refused(rng: np.random.Generator) -> None:
    p = pipeline("raw", "uint8", 1, "br")
    stored = p.encode(sample("compresso", "uint8", CHUNK + (1,), rng))
    with pytest.raises(bc.ChunkDecodeError, match="brotli"):
        p.decode(stored + b"\x00", CHUNK + (1,), encoding="br")


# -- one scale unusable, the rest fine -------------------------------------------------------


def test_a_scale_in_an_unknown_encoding_does_not_block_the_others(rng: np.random.Generator) -> None:
    """CloudVolume opens mip 0 of a dataset whose mip 2 it cannot read; so does bigarrays."""
    store = MemoryStore()
    ba = bc.create(store, dtype="uint32", size=(64, 64, 16), chunk_size=(16, 16, 16), num_mips=3,
                   encoding="compresso")
    data = sample("compresso", "uint32", (64, 64, 16, 1), rng)
    ba[:, :, :] = data
    raw = ba.info
    raw["scales"][2]["encoding"] = "webp2"
    store.set("info", json.dumps(raw).encode())
    ba = bc.open(store)
    np.testing.assert_array_equal(ba[:, :, :], data)
    assert ba.at_mip(1).encoding == "compresso"
    assert [s.usable for s in ba.parsed_info.scales] == [True, True, False]
    with pytest.raises(bc.InfoError, match=r"scales\[2\].encoding: unknown encoding 'webp2'.*scale 2, key '4_4_1'"):
        ba.at_mip(2)


def test_a_scale_whose_package_is_missing_fails_alone(tmp_path: Any, rng: np.random.Generator) -> None:
    """In a process where crackle cannot be imported, a dataset whose mip 1 is crackle opens at
    mip 0, and mip 1 raises an error naming the scale, the encoding and what to install."""
    url = (tmp_path / "ds").as_uri()
    ba = bc.create(url, dtype="uint16", size=(32, 32, 8), chunk_size=(16, 16, 8), num_mips=2)
    ba[:, :, :] = np.arange(32 * 32 * 8, dtype=np.uint16).reshape(32, 32, 8, 1)
    raw = ba.info
    raw["scales"][1]["encoding"] = "crackle"
    with open(os.path.join(local_root(url), "info"), "w") as f:
        json.dump(raw, f)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["crackle"] = None  # as if crackle-codec were not installed
        import numpy as np
        import bigarrays_core as bc
        ba = bc.open({url!r})
        assert (ba[:, :, :][..., 0] == np.arange(32 * 32 * 8).reshape(32, 32, 8)).all()
        problem = ba.parsed_info.scales[1].problem
        print("INSTALL", problem.install)
        try:
            ba.at_mip(1)
        except bc.InfoError as exc:
            print("ERROR", exc.field, "|", exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "INSTALL crackle-codec" in done.stdout
    error = done.stdout.split("ERROR ", 1)[1]
    assert error.startswith("info.scales[1].encoding |")
    for part in ("encoding 'crackle'", "pip install crackle-codec", "scale 1, key '2_2_1'", url):
        assert part in error, (part, error)
