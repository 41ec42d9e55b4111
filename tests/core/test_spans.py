"""Partial reads of plain raw chunks: only the bytes a cutout needs are read.

``KVStore.iter_values`` with spans returns a slice of a value stored plainly at its expected size
and the whole value otherwise; ``read_box`` uses it for raw scales without compression.
Whatever path a chunk takes, the cutout must equal the whole-chunk decode.
"""

from __future__ import annotations

import gzip
import os
import time

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.codecs.raw import RawCodec
from bigarrays_core.errors import ChunkDecodeError
from bigarrays_core.kvstore.local import LocalStore
from bigarrays_core.kvstore.memory import MemoryStore


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "local":
        return LocalStore(str(tmp_path))
    return MemoryStore(f"memory://spans-{os.getpid()}-{time.monotonic_ns()}")


def test_span_of_a_plain_value_of_the_expected_size(store) -> None:  # type: ignore[no-untyped-def]
    store.set("a", bytes(range(100)))
    [value] = list(store.iter_values(["a"], [(100, 10, 20)]))
    assert value.partial and bytes(value.data) == bytes(range(10, 20)) and value.encoding is None


def test_whole_value_when_the_size_differs_or_no_span(store) -> None:  # type: ignore[no-untyped-def]
    store.set("a", bytes(range(100)))
    got = [(bytes(v.data), v.partial) for v in store.iter_values(["a", "a"], [(99, 10, 20), None])]
    assert got == [(bytes(range(100)), False)] * 2


def test_missing_value_is_none(store) -> None:  # type: ignore[no-untyped-def]
    assert list(store.iter_values(["nope"], [(100, 0, 10)])) == [None]


def test_local_compressed_variant_is_read_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(str(tmp_path))
    payload = bytes(range(100))
    (tmp_path / "a.gz").write_bytes(gzip.compress(payload))
    [value] = list(store.iter_values(["a"], [(100, 10, 20)]))
    assert not value.partial and value.encoding == "gzip" and gzip.decompress(bytes(value.data)) == payload


def test_local_newer_gz_variant_wins_over_plain_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(str(tmp_path))
    (tmp_path / "a").write_bytes(bytes(100))
    os.utime(tmp_path / "a", ns=(1_000_000_000, 1_000_000_000))
    (tmp_path / "a.gz").write_bytes(gzip.compress(bytes(range(100))))
    [value] = list(store.iter_values(["a"], [(100, 10, 20)]))
    assert not value.partial and gzip.decompress(bytes(value.data)) == bytes(range(100))


def test_region_span_covers_exactly_the_region() -> None:
    codec = RawCodec(np.dtype("<u2"), 2)
    shape = (5, 4, 3, 2)
    chunk = np.arange(np.prod(shape), dtype="<u2").reshape(shape, order="F")
    encoded = codec.encode(chunk)
    region = (slice(1, 3), slice(2, 4), slice(0, 2), slice(1, 2))
    start, stop = codec.region_span(shape, region)
    out = np.zeros((2, 2, 2, 1), dtype="<u2", order="F")
    codec.decode_span_into(encoded[start:stop], shape, region, out)
    np.testing.assert_array_equal(out, chunk[region])
    # The span starts at the region's first voxel (x=1, y=2, z=0, c=1) and ends after its last.
    assert start == 2 * (1 + 5 * 2 + 5 * 4 * 0 + 5 * 4 * 3 * 1)
    assert stop == 2 * (2 + 5 * 3 + 5 * 4 * 1 + 5 * 4 * 3 * 1) + 2


def test_span_of_the_wrong_length_is_a_decode_error() -> None:
    codec = RawCodec(np.dtype("u1"), 1)
    region = (slice(0, 2), slice(0, 2), slice(0, 2), slice(0, 1))
    with pytest.raises(ValueError, match="span is 3 bytes"):
        codec.decode_span_into(b"abc", (4, 4, 4, 1), region, np.zeros((2, 2, 2, 1), "u1"))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "int64", "bool"])
@pytest.mark.parametrize("channels", [1, 3])
def test_cutouts_through_spans_equal_the_volume(tmp_path, dtype: str, channels: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    shape = (37, 29, 23, channels)
    if dtype == "bool":
        volume = rng.integers(0, 2, shape).astype(bool)
    else:
        volume = rng.integers(0, 100, shape).astype(dtype)
    ba = bc.create(str(tmp_path / "v"), dtype=dtype, size=shape[:3], chunk_size=(8, 8, 8), voxel_offset=(-5, 3, -9),
                   num_channels=channels)
    ba[:, :, :] = volume
    for _ in range(30):
        lo = rng.integers(0, shape[:3])
        hi = [int(rng.integers(a + 1, s + 1)) for a, s in zip(lo, shape[:3])]
        box = bc.Box(tuple(int(a) + o for a, o in zip(lo, (-5, 3, -9))), tuple(b + o for b, o in zip(hi, (-5, 3, -9))))
        c0 = int(rng.integers(0, channels))
        got = ba.read(box, channels=(c0, channels))
        want = volume[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2], c0:]
        np.testing.assert_array_equal(got, want)


def test_wrong_size_raw_chunk_still_names_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ba = bc.create(str(tmp_path / "v"), dtype="uint8", size=(16, 16, 16), chunk_size=(8, 8, 8))
    ba[:, :, :] = np.ones((16, 16, 16, 1), "uint8")
    key = ba.chunks(bc.Box((0, 0, 0), (8, 8, 8)))[0].key
    (tmp_path / "v" / key).write_bytes(bytes(100))
    with pytest.raises(ChunkDecodeError, match=key.rpartition("/")[2]) as info:
        ba[2:4, 2:4, 2:4]
    assert info.value.key == key
    np.testing.assert_array_equal(ba[8:16, 8:16, 8:16], 1)  # other chunks unaffected


def test_large_object_store_output_is_a_plain_zeroed_array() -> None:
    """Object-store reads of >= 4 MiB use plain (not huge) pages; the result is an ordinary array."""
    from bigarrays_core.kvstore.fsspec_store import FsspecStore

    url = f"memory://bigarrays-spans-{os.getpid()}-{time.monotonic_ns()}/v"
    store = FsspecStore(url)
    assert not store.threaded_io
    ba = bc.create(store, dtype="uint16", size=(256, 256, 64), chunk_size=(64, 64, 64))
    ba[0:64, 0:64, 0:64] = np.full((64, 64, 64), 5, "uint16")
    out = ba[0:256, 0:256, 0:64]
    assert out.nbytes >= 4 << 20
    assert out.flags.f_contiguous and out.flags.writeable and out.dtype == np.dtype("uint16")
    assert (out[:64, :64] == 5).all() and not out[64:].any() and not out[:, 64:].any()
    out[...] = 1  # the caller owns it
    assert ba[0, 0, 0] == 5
    store.fs.rm(store.fs._strip_protocol(url), recursive=True)


def test_local_key_naming_a_directory_is_missing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a" / "b").mkdir(parents=True)
    store = LocalStore(str(tmp_path))
    assert store.get("a") is None
    assert list(store.iter_values(["a"])) == [None]
    assert list(store.iter_values(["a"], [(10, 0, 5)])) == [None]
    assert not store.exists("a")


def test_local_compressed_variant_naming_a_directory_is_skipped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import gzip

    (tmp_path / "k.gz").mkdir()
    store = LocalStore(str(tmp_path))
    assert store.get("k") is None  # the only variant is a directory: missing
    assert list(store.iter_values(["k"])) == [None]
    (tmp_path / "k").write_bytes(b"plain")
    assert store.get("k") == b"plain"  # a directory never wins over a file
    assert bytes(next(store.iter_values(["k"])).data) == b"plain"  # type: ignore[union-attr]
    (tmp_path / "j.zstd").write_bytes(b"old")
    (tmp_path / "j.gz").write_bytes(gzip.compress(b"zipped"))
    os.utime(tmp_path / "j.zstd", ns=(1_000_000_000, 1_000_000_000))
    assert store.get("j") == gzip.compress(b"zipped")  # two variants: the newest is read
    os.utime(tmp_path / "j.gz", ns=(500_000_000, 500_000_000))
    assert store.get("j") == b"old"
