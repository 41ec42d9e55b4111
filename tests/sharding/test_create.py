"""``bc.create(..., sharding=...)``: the spec chosen for a volume, explicit specs, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

import bigarrays_core as bc
from bigarrays_core.format.sharding import choose_sharding
from bigarrays_core.geometry.morton import MortonCode
from bigarrays_core.kvstore import MemoryStore


@pytest.mark.parametrize(("size", "chunk", "dtype", "encoding", "expected"), [
    # 16 x 16 x 8 chunks of 256 KiB (11 bits): 2048 chunks = 512 MiB, so one shard.
    ((1024, 1024, 512), (64, 64, 64), "uint8", "raw", (9, 2, 0, "gzip")),
    # 4096 chunks (12 bits) of 256 KiB: shards of 2048 chunks (11 bits), two of them.
    ((1024, 1024, 1024), (64, 64, 64), "uint8", "raw", (9, 2, 1, "gzip")),
    # uint64 chunks are 2 MiB: 256 per shard (8 bits).
    ((4096, 4096, 4096), (64, 64, 64), "uint64", "compressed_segmentation", (8, 0, 10, "gzip")),
    # jpeg and png chunks are compressed already: raw chunk data.
    ((2**17, 2**17, 2**14), (128, 128, 64), "uint8", "jpeg", (9, 0, 19, "raw")),
    ((1000, 1000, 100), (100, 100, 100), "uint16", "png", (8, 0, 0, "raw")),  # 100 chunks of 2 MB
    # A tiny volume: one shard, as many within-shard bits as its grid has.
    ((10, 10, 10), (8, 8, 8), "uint8", "raw", (3, 0, 0, "gzip")),
    # A chunk larger than a shard's target: one chunk per shard.
    ((4096, 4096, 64), (4096, 4096, 64), "float64", "raw", (0, 0, 0, "gzip")),
])
def test_the_chosen_spec(size: tuple[int, int, int], chunk: tuple[int, int, int], dtype: str, encoding: str,
                         expected: tuple[int, int, int, str]) -> None:
    spec = choose_sharding(size, chunk, dtype, 1, encoding)
    assert (spec.preshift_bits, spec.minishard_bits, spec.shard_bits, spec.data_encoding) == expected
    assert spec.hash == "identity" and spec.minishard_index_encoding == "gzip"
    code = MortonCode([-(-s // c) for s, c in zip(size, chunk)])
    assert spec.preshift_bits + spec.minishard_bits + spec.shard_bits == code.total_bits
    assert spec.shard_shape_in_chunks(code) is not None  # shards are boxes: writes can be cut on them


def test_create_with_sharding_true_gives_every_scale_its_own_spec() -> None:
    ba = bc.create(MemoryStore(), dtype="uint64", size=(2048, 2048, 256), chunk_size=(64, 64, 64),
                   encoding="compressed_segmentation", num_mips=3, sharding=True)
    specs = [s["sharding"] for s in ba.info["scales"]]
    assert [s["shard_bits"] for s in specs] == [4, 2, 0]  # grids of 12, 10 and 8 bits, 256 chunks a shard
    assert all(s["@type"] == "neuroglancer_uint64_sharded_v1" and s["data_encoding"] == "gzip" for s in specs)
    assert ba.sharding is not None and ba.sharding.to_json() == specs[0]
    assert ba.at_mip(2).sharding is not None and ba.at_mip(2).sharding.to_json() == specs[2]


def test_an_explicit_spec_is_validated_and_written_in_full() -> None:
    given: dict[str, Any] = {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 2,
                             "hash": "MurmurHash3_x86_128", "minishard_bits": 3, "shard_bits": 4}
    ba = bc.create(MemoryStore(), dtype="uint8", size=(100, 100, 100), sharding=given)
    assert ba.info["scales"][0]["sharding"] == {**given, "hash": "murmurhash3_x86_128",
                                                "minishard_index_encoding": "raw", "data_encoding": "raw"}
    with pytest.raises(bc.InfoError) as err:
        bc.create(MemoryStore(), dtype="uint8", size=(100, 100, 100), sharding={**given, "shard_bits": -1})
    assert err.value.field == "sharding.shard_bits"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"sharding": True, "compression": "zstd"}, "compression"),
    ({"sharding": "yes"}, "sharding"),
    ({"sharding": {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 0, "hash": "identity",
                   "minishard_bits": 30, "shard_bits": 0}}, "sharding.minishard_bits"),
    ({"sharding": True, "chunk_size": (0, 1, 1)}, "chunk_size"),
    ({"sharding": True, "size": (2**40, 2**40, 2**40), "chunk_size": (1, 1, 1)}, "sharding (scale 0)"),
])
def test_refused_combinations_name_the_argument_and_write_nothing(kwargs: dict[str, Any], field: str) -> None:
    store = MemoryStore()
    args: dict[str, Any] = {"dtype": "uint8", "size": (100, 100, 100), **kwargs}
    with pytest.raises(bc.InfoError) as err:
        bc.create(store, **args)
    assert err.value.field == field
    assert list(store.list()) == []


def test_sharded_scales_refuse_a_second_chunk_size_or_compression_on_gzip_data() -> None:
    ba = bc.create(MemoryStore(), dtype="uint8", size=(64, 64, 64), sharding=True)
    info = ba.info
    info["scales"][0]["chunk_sizes"].append([32, 32, 32])
    store = MemoryStore()
    bc.format.write_info(store, bc.format.Info(info))
    with pytest.raises(bc.InfoError) as err:
        bc.open(store)
    assert err.value.field == "info.scales[0].chunk_sizes"
    info = ba.info
    info["scales"][0]["compression"] = {"id": "zstd", "level": 3}
    store = MemoryStore()
    bc.format.write_info(store, bc.format.Info(info))
    with pytest.raises(bc.InfoError) as err:
        bc.open(store)
    assert err.value.field == "info.scales[0].compression"
