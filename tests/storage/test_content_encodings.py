"""CloudVolume's five content encodings on local disk: reported by the store, decoded by the codecs.

CloudVolume writes chunks as ``key.gz``, ``key.zstd``, ``key.br``, ``key.xz`` or ``key.bz2``
(``compress=``). :class:`LocalStore` returns the stored bytes and reports the encoding the
suffix records; :class:`ChunkPipeline` decodes by that name, strictly. Checked against
CloudVolume itself (it writes, bigarrays reads every voxel) and against damaged files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.codecs.content_encodings import BrotliCodec, Bz2Codec, XzCodec, content_decoder
from bigarrays_core.kvstore import LocalStore
from bigarrays_core.kvstore.encodings import encoding_of_header

SUFFIX = {"gzip": ".gz", "zstd": ".zstd", "br": ".br", "xz": ".xz", "bz2": ".bz2"}
SIZE, CHUNK = (128, 64, 32), (64, 64, 32)
KEYS = ["4_4_40/0-64_0-64_0-32", "4_4_40/64-128_0-64_0-32"]


def _cloudvolume_dataset(root: Path, compress: str, rng: np.random.Generator) -> np.ndarray:
    from cloudvolume import CloudVolume  # type: ignore[import-untyped]

    info = CloudVolume.create_new_info(
        num_channels=1, layer_type="image", data_type="uint16", encoding="raw", resolution=[4, 4, 40],
        voxel_offset=[0, 0, 0], volume_size=list(SIZE), chunk_size=list(CHUNK),
    )
    cv = CloudVolume(root.as_uri(), info=info, compress=compress, progress=False)
    cv.commit_info()
    data = rng.integers(0, 300, size=(*SIZE, 1), dtype=np.uint16)
    cv[:, :, :] = data
    return data


@pytest.mark.parametrize("compress", list(SUFFIX))
def test_cloudvolume_compressed_chunks_read_identically(tmp_path: Path, compress: str) -> None:
    rng = np.random.default_rng(len(compress))
    data = _cloudvolume_dataset(tmp_path / "ds", compress, rng)
    assert sorted(os.listdir(tmp_path / "ds" / "4_4_40")) == sorted(k.split("/")[1] + SUFFIX[compress] for k in KEYS)

    store = LocalStore(str(tmp_path / "ds"))
    got = [(v.encoding, bytes(v.data)[:0]) for v in store.iter_values(KEYS) if v is not None]
    assert got == [(compress, b"")] * 2
    assert store.exists_many(KEYS + ["4_4_40/nope"]) == [True, True, False]
    assert sorted(store.list("4_4_40/")) == KEYS
    (stored,) = store.get_many(KEYS[:1])
    assert stored == (tmp_path / "ds" / (KEYS[0] + SUFFIX[compress])).read_bytes()  # as stored, not decoded

    ba = bc.open(str(tmp_path / "ds"), fill_missing=False)
    np.testing.assert_array_equal(ba[:, :, :], data)
    np.testing.assert_array_equal(ba[3:100, 7:50, 1:30], data[3:100, 7:50, 1:30])


@pytest.mark.parametrize("compress", ["br", "xz", "bz2"])
@pytest.mark.parametrize("damage", ["junk", "truncated"])
def test_a_damaged_chunk_is_a_decode_error_naming_the_key(tmp_path: Path, compress: str, damage: str) -> None:
    """lzma.decompress and bz2.decompress ignore bytes after the last stream: a chunk with
    junk appended used to read as if intact."""
    data = _cloudvolume_dataset(tmp_path / "ds", compress, np.random.default_rng(5))
    path = tmp_path / "ds" / (KEYS[1] + SUFFIX[compress])
    stored = path.read_bytes()
    path.write_bytes(stored + b"junk!" if damage == "junk" else stored[: len(stored) // 2])
    ba = bc.open(str(tmp_path / "ds"))
    with pytest.raises(bc.ChunkDecodeError) as info:
        ba[:, :, :]
    assert info.value.key == KEYS[1]
    assert KEYS[1] in str(info.value)
    np.testing.assert_array_equal(ba[0:64, :, :], data[0:64])  # the intact chunk still reads


def test_a_plain_file_wins_over_cloudvolume_foreign_suffixes(tmp_path: Path) -> None:
    """``.br`` / ``.xz`` / ``.bz2`` are a last resort: bigarrays never writes them, so beside a
    plain or ``.gz`` value they can only be stale."""
    store = LocalStore(str(tmp_path))
    (tmp_path / "k.br").write_bytes(BrotliCodec().encode(b"old"))
    (tmp_path / "k").write_bytes(b"new")
    (value,) = store.iter_values(["k"])
    assert value is not None and (bytes(value.data), value.encoding) == (b"new", None)
    os.remove(tmp_path / "k")
    (value,) = store.iter_values(["k"])
    assert value is not None and value.encoding == "br" and BrotliCodec().decode(bytes(value.data)) == b"old"


@pytest.mark.parametrize("codec", [BrotliCodec(), XzCodec(), Bz2Codec()], ids=lambda c: c.name)
def test_the_other_codecs_round_trip_and_are_strict(codec: object) -> None:
    from bigarrays_core.codecs.base import ByteCodec

    assert isinstance(codec, ByteCodec)
    payload = os.urandom(2000) + b"\x00" * 5000
    stored = codec.encode(payload)
    assert codec.decode(stored) == payload
    assert content_decoder(codec.name).decode(stored) == payload
    for bad in (stored + b"\x01", stored[:-1], b""):
        with pytest.raises(Exception):  # noqa: B017  (each library has its own error type)
            codec.decode(bad)
    if codec.name != "br":  # xz and bzip2 allow several streams one after another
        assert codec.decode(stored + stored) == payload + payload


def test_xz_stream_padding_follows_the_format() -> None:
    stored = XzCodec().encode(b"abc")
    assert XzCodec().decode(stored + b"\x00" * 8) == b"abc"
    with pytest.raises(ValueError, match="3 bytes after the xz data"):
        XzCodec().decode(stored + b"\x00" * 3)


def test_an_encoding_nobody_decodes_is_named() -> None:
    with pytest.raises(ValueError, match="'compress'"):
        content_decoder("compress")


@pytest.mark.parametrize(
    ("header", "name"),
    [(None, None), ("", None), ("identity", None), ("gzip", "gzip"), ("GZIP", "gzip"), ("x-gzip", "gzip"),
     ("aws-chunked,gzip", "gzip"), ("gzip, aws-chunked", "gzip"), ("bzip2", "bz2"), ("bz2", "bz2"), ("br", "br"),
     ("xz", "xz"), ("zstd", "zstd"), ("gzip, br", "gzip, br")],
)
def test_content_encoding_headers_are_reported_by_one_name(header: str | None, name: str | None) -> None:
    assert encoding_of_header(header) == name
