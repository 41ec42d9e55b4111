"""Corruption that used to decode silently (issue 11, item 4).

zstd's one-shot decoder ignores whatever follows the first frame and ``gzip.decompress``
ignores zero padding after the last member, so a chunk with junk appended (or two values run
together) read as if nothing were wrong. An info whose chunks could never fit in memory was
accepted and every read gave zeros. Each now raises an error naming the key or the field.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import numpy as np
import pytest
import zstandard

import bigarrays_core as bc
from bigarrays_core.codecs.gzip import GzipCodec
from bigarrays_core.codecs.zstd import ZstdCodec
from bigarrays_core.kvstore import WriteOptions, open_store

from .datasets import make

JUNK = {
    "text": b"junk",
    "zeros": bytes(8),
    "one-zero": b"\x00",
    "magic-only": b"\x1f\x8b\x08\x00",
    "zstd-magic-only": b"\x28\xb5\x2f\xfd",
}


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
@pytest.mark.parametrize("junk", list(JUNK), ids=list(JUNK))
def test_junk_after_the_compressed_stream_is_a_decode_error_naming_the_key(
    dataset_url: str, compression: str, junk: str, rng: np.random.Generator
) -> None:
    ba = make(dataset_url, size=(32, 16, 16), chunk_size=(16, 16, 16), compression=compression)
    data = rng.integers(0, 4, (32, 16, 16, 1), dtype=np.uint8)
    ba[:, :, :] = data
    key = f"{ba.key}/16-32_0-16_0-16"
    valid = ba.store.get(key)
    assert valid is not None
    ba.store.set(key, valid + JUNK[junk], WriteOptions(content_encoding=compression))
    with pytest.raises(bc.ChunkDecodeError) as info:
        ba[0:32, 0:16, 0:16]
    assert ba.store.describe(key) in str(info.value)
    assert info.value.key == key
    # The chunk beside it is intact and still reads.
    np.testing.assert_array_equal(bc.open(dataset_url)[0:16, 0:16, 0:16], data[:16])


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_junk_is_refused_when_the_store_records_no_encoding(dataset_url: str, compression: str) -> None:
    """The same chunk under its plain key (as a tool that records nothing leaves it): the
    magic bytes say it is compressed, and the junk is refused all the same."""
    ba = make(dataset_url, size=(16, 16, 16), chunk_size=(16, 16, 16), compression=compression)
    ba[:, :, :] = 3
    key = f"{ba.key}/0-16_0-16_0-16"
    valid = ba.store.get(key)
    assert valid is not None
    ba.store.set(key, valid + b"junk")
    with pytest.raises(bc.ChunkDecodeError, match="0-16_0-16_0-16"):
        ba[:, :, :]


def test_several_gzip_members_and_zstd_frames_still_decode() -> None:
    a, b = b"first part " * 50, b"second part " * 70
    assert GzipCodec().decode(gzip.compress(a) + gzip.compress(b)) == a + b
    sized = zstandard.ZstdCompressor(write_content_size=True).compress(a)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(b)
    skippable = b"\x50\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"xyz"
    assert ZstdCodec().decode(sized + unsized) == a + b
    assert ZstdCodec().decode(unsized) == b
    assert ZstdCodec().decode(sized + skippable + sized) == a + a


@pytest.mark.parametrize(
    ("codec", "data", "message"),
    [
        (GzipCodec(), gzip.compress(b"x" * 100) + b"\x00\x00", "2 bytes after the gzip data"),
        (GzipCodec(), gzip.compress(b"x" * 100)[:-3], "truncated"),
        (GzipCodec(), b"plain bytes", "does not start with a gzip member"),
        (ZstdCodec(), zstandard.ZstdCompressor().compress(b"x" * 100) + b"junk", "4 bytes after the zstd data"),
        (ZstdCodec(), zstandard.ZstdCompressor(write_content_size=False).compress(b"x" * 100) + b"j",
         "1 bytes after the zstd data"),
        (ZstdCodec(), zstandard.ZstdCompressor().compress(b"x" * 100)[:-2], "truncated"),
        (ZstdCodec(), b"", "does not start with a zstd frame"),
    ],
)
def test_the_codecs_say_what_is_wrong(codec: Any, data: bytes, message: str) -> None:
    with pytest.raises(Exception, match=message):
        codec.decode(data)


# -- info bounds -----------------------------------------------------------------------------


def _info(**scale: Any) -> dict[str, Any]:
    base = {"key": "s0", "size": [64, 64, 64], "voxel_offset": [0, 0, 0], "resolution": [1, 1, 1],
            "chunk_sizes": [[64, 64, 64]], "encoding": "raw"}
    base.update(scale)
    return {"type": "image", "data_type": "uint16", "num_channels": 1, "scales": [base]}


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"chunk_sizes": [[2**40, 2**40, 2**40]]}, "info.scales[0].chunk_sizes[0]"),
        ({"chunk_sizes": [[64, 64, 64], [2048, 2048, 512]]}, "info.scales[0].chunk_sizes[1]"),
        ({"encoding": "compressed_segmentation", "compressed_segmentation_block_size": [2**20, 2**20, 1]},
         "info.scales[0].compressed_segmentation_block_size"),
    ],
)
def test_an_info_whose_chunks_cannot_fit_in_memory_is_refused(
    dataset_url: str, edit: dict[str, Any], field: str
) -> None:
    info = _info(**edit)
    if edit.get("encoding") == "compressed_segmentation":
        info["data_type"] = "uint32"
    open_store(dataset_url).set("info", json.dumps(info).encode())
    with pytest.raises(bc.InfoError) as err:
        bc.open(dataset_url)
    assert err.value.field == field
    assert field in str(err.value)


def test_channels_that_cannot_fit_in_memory_name_num_channels(dataset_url: str) -> None:
    info = _info()
    info["num_channels"] = 2**40
    open_store(dataset_url).set("info", json.dumps(info).encode())
    with pytest.raises(bc.InfoError) as err:
        bc.open(dataset_url)
    assert err.value.field == "info.num_channels"


def test_create_refuses_a_chunk_too_large_and_writes_nothing(dataset_url: str) -> None:
    with pytest.raises(bc.InfoError, match=r"chunk_sizes\[0\].*2 GiB"):
        bc.create(dataset_url, dtype="uint64", size=(4096, 4096, 4096), chunk_size=(1024, 1024, 1024))
    assert open_store(dataset_url).get("info") is None


def test_the_largest_chunk_that_fits_is_accepted(dataset_url: str) -> None:
    # 1024^3 voxels x 2 channels of uint8 = 2 GiB exactly: declared, never allocated here.
    info = _info(size=[2048, 2048, 2048], chunk_sizes=[[1024, 1024, 1024]])
    info["data_type"] = "uint8"
    info["num_channels"] = 2
    open_store(dataset_url).set("info", json.dumps(info).encode())
    assert bc.open(dataset_url).chunk_size == (1024, 1024, 1024)
