"""The sharded format to the byte: the published test vectors and the spec's parsing rules.

Vectors: MurmurHash3_x86_128 (TensorStore's murmurhash3_test), compressed Morton codes and
shard locations (CloudVolume's test_sharding), and TensorStore's exact shard encoder
output (uint64_sharded_encoder_test, ShardEncoderTest.Raw).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from isal import igzip

import bigarrays_core as bc
from bigarrays_core.geometry.morton import MortonCode, axis_bits
from bigarrays_core.kvstore.sharding import ShardingSpec, murmurhash3_x86_128_low64
from bigarrays_core.kvstore.sharding.shard_file import (
    decode_minishard_index,
    decode_shard,
    encode_minishard_index,
    encode_shard,
)


def spec_json(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 0, "hash": "identity",
                            "minishard_bits": 0, "shard_bits": 0}
    base.update(fields)
    return base


# -- hashing ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    (0, 0x4772B084E028AE41), (1, 0xE8BD67D616D4CE9A), (42, 0xC20B94F95119F47A)])
def test_murmurhash3_x86_128_low_64_bits(value: int, expected: int) -> None:
    assert int(murmurhash3_x86_128_low64([value])[0]) == expected


def test_murmurhash_is_computed_per_value_in_a_batch() -> None:
    got = murmurhash3_x86_128_low64(np.array([42, 0, 1, 42], dtype=np.uint64))
    assert [int(v) for v in got] == [0xC20B94F95119F47A, 0x4772B084E028AE41, 0xE8BD67D616D4CE9A, 0xC20B94F95119F47A]


# -- compressed Morton codes ------------------------------------------------------------------
@pytest.mark.parametrize(("grid", "cell", "code"), [
    ((3, 3, 3), (1, 0, 0), 1), ((3, 3, 3), (2, 0, 0), 0b1000), ((3, 3, 3), (2, 2, 1), 0b11100),
    ((2, 3, 1), (1, 2, 0), 0b101), ((4, 4, 1), (3, 3, 0), 0b1111), ((8, 8, 2), (5, 5, 0), 0b1100011)])
def test_compressed_morton_vectors(grid: tuple[int, int, int], cell: tuple[int, int, int], code: int) -> None:
    m = MortonCode(grid)
    assert int(m.encode([cell])[0]) == code
    assert tuple(m.decode([code])[0]) == cell


def reference_code(cell: tuple[int, ...], bits: tuple[int, int, int]) -> int:
    """The spec's loop, bit by bit."""
    out, j = 0, 0
    for i in range(max(bits)):
        for d in range(3):
            if i < bits[d]:
                out |= ((cell[d] >> i) & 1) << j
                j += 1
    return out


@pytest.mark.parametrize("grid", [(1, 1, 1), (5, 1, 300), (2000, 3000, 70), (2**21, 2**21, 2**22), (1, 2**40, 7)])
def test_morton_codes_match_the_spec_loop_and_invert(grid: tuple[int, int, int], rng: np.random.Generator) -> None:
    m = MortonCode(grid)
    assert m.bits == tuple((g - 1).bit_length() for g in grid)
    cells = np.stack([rng.integers(0, g, 500) for g in grid], axis=1)
    cells[0] = [g - 1 for g in grid]
    codes = m.encode(cells)
    assert [int(c) for c in codes] == [reference_code(tuple(int(v) for v in c), m.bits) for c in cells]
    np.testing.assert_array_equal(m.decode(codes), cells)
    assert [m.encode_one(tuple(c)) for c in cells[:50]] == codes[:50].tolist()


def test_a_grid_needing_more_than_64_bits_is_refused() -> None:
    with pytest.raises(ValueError, match="65 bits"):
        MortonCode((2**22, 2**21, 2**21 + 1))
    assert axis_bits((1, 2, 3)) == (0, 1, 2)


# -- locations ----------------------------------------------------------------------------
def test_murmurhash_location_vector() -> None:
    spec = ShardingSpec(preshift_bits=6, hash="murmurhash3_x86_128", minishard_bits=11, shard_bits=7)
    shard, minishard = spec.locate([1822975381])
    assert (int(shard[0]), int(minishard[0])) == (0x42, 18)
    assert spec.shard_name(int(shard[0])) == "42.shard"


def test_identity_location_vector() -> None:
    spec = ShardingSpec(preshift_bits=9, hash="identity", minishard_bits=6, shard_bits=16)
    grid = [math.ceil(s / c) for s, c in zip((248832, 134144, 7063), (128, 128, 16))]
    code = MortonCode(grid).encode([(1131, 411, 177)])
    shard, _ = spec.locate(code)
    assert spec.shard_name(int(shard[0])) == "458d.shard"


@pytest.mark.parametrize(("bits", "shard", "name"), [(0, 0, "0.shard"), (1, 1, "1.shard"), (4, 0xA, "a.shard"),
                                                     (5, 0x1F, "1f.shard"), (15, 0xA3F, "0a3f.shard"),
                                                     (64, 2**64 - 1, "ffffffffffffffff.shard")])
def test_shard_file_names(bits: int, shard: int, name: str) -> None:
    assert ShardingSpec(0, "identity", 0, bits).shard_name(shard) == name


def test_full_width_bits_do_not_overflow() -> None:
    ids = np.array([0, 1, 2**64 - 1], dtype=np.uint64)
    shard, minishard = ShardingSpec(64, "identity", 0, 0).locate(ids)
    assert shard.tolist() == [0, 0, 0] and minishard.tolist() == [0, 0, 0]
    shard, minishard = ShardingSpec(0, "identity", 64, 0).locate(ids)
    assert shard.tolist() == [0, 0, 0] and minishard.tolist() == ids.tolist()
    shard, minishard = ShardingSpec(0, "identity", 0, 64).locate(ids)
    assert shard.tolist() == ids.tolist() and minishard.tolist() == [0, 0, 0]


@pytest.mark.parametrize("spec", [ShardingSpec(3, "murmurhash3_x86_128", 5, 7), ShardingSpec(64, "identity", 0, 3),
                                  ShardingSpec(2, "identity", 64, 0), ShardingSpec(0, "identity", 0, 64),
                                  ShardingSpec(9, "identity", 6, 15)])
def test_locating_one_id_agrees_with_the_batch(spec: ShardingSpec, rng: np.random.Generator) -> None:
    ids = np.concatenate([rng.integers(0, 2**63, 200, dtype=np.uint64), np.array([0, 2**64 - 1], dtype=np.uint64)])
    shards, minishards = spec.locate(ids)
    assert [spec.locate_one(int(i)) for i in ids] == list(zip(shards.tolist(), minishards.tolist()))


# -- the shard file ---------------------------------------------------------------------------
def test_tensorstore_shard_encoder_vector() -> None:
    spec = ShardingSpec(preshift_bits=0, hash="identity", minishard_bits=1, shard_bits=0)
    shard = encode_shard({2: bytes([1, 2, 3, 4]), 8: bytes([6, 7, 8]), 3: bytes([9, 10])}, spec)

    def u64(*values: int) -> bytes:
        return np.array(values, dtype="<u8").tobytes()

    expected = (u64(7, 55, 57, 81)  # shard index: minishard 0 at [7, 55), minishard 1 at [57, 81)
                + bytes([1, 2, 3, 4]) + bytes([6, 7, 8])  # minishard 0: chunks 2 and 8
                + u64(2, 6, 0, 0, 4, 3)  # its index: ids 2, 8 (delta), offsets 0, 0 (delta), sizes 4, 3
                + bytes([9, 10])  # minishard 1: chunk 3
                + u64(3, 55, 2))  # its index
    assert shard == expected
    assert {k: bytes(v) for k, v in decode_shard(shard, spec, "test", "k").items()} == {
        2: bytes([1, 2, 3, 4]), 8: bytes([6, 7, 8]), 3: bytes([9, 10])}


def test_gzip_minishard_indexes_round_trip_and_unsorted_ids_are_read() -> None:
    spec = ShardingSpec(0, "identity", 0, 0, minishard_index_encoding="gzip")
    ids = np.array([5, 9, 1000], dtype=np.uint64)
    starts = np.array([16, 30, 31], dtype=np.int64)
    sizes = np.array([14, 1, 0], dtype=np.int64)
    stored = encode_minishard_index(ids, starts, sizes, spec)
    assert stored[:2] == b"\x1f\x8b"
    ms = decode_minishard_index(stored, spec, "test", "k")
    assert ms.ids.tolist() == [5, 9, 1000] and ms.starts.tolist() == [16, 30, 31] and ms.stops.tolist() == [30, 31, 31]
    # Neuroglancer scans minishard indexes, so writers need not sort them: ids 9, 5 (delta 2**64 - 4).
    raw_spec = ShardingSpec(0, "identity", 0, 0)
    rows = np.array([[9, 2**64 - 4], [0, 0], [3, 4]], dtype="<u8")
    ms = decode_minishard_index(rows.tobytes(), raw_spec, "test", "k")
    assert ms.ids.tolist() == [5, 9] and ms.starts.tolist() == [19, 16] and ms.stops.tolist() == [23, 19]
    assert ms.find(np.array([5, 9, 7], dtype=np.uint64)).tolist() == [0, 1, -1]
    assert igzip.decompress(stored) == encode_minishard_index(ids, starts, sizes, raw_spec)


@pytest.mark.parametrize(("data", "message"), [
    (b"abc", "not a multiple of 24"),
    (np.array([[1], [2**64 - 1], [5]], dtype="<u8").tobytes(), "overflow"),
    (np.array([[1, 1], [0, 2**63], [5, 2**63]], dtype="<u8").tobytes(), "overflow"),
])
def test_malformed_minishard_indexes_are_errors(data: bytes, message: str) -> None:
    with pytest.raises(bc.ChunkDecodeError, match=message):
        decode_minishard_index(data, ShardingSpec(0, "identity", 0, 0), "test", "k")
    with pytest.raises(bc.ChunkDecodeError, match="gunzip"):
        decode_minishard_index(data, ShardingSpec(0, "identity", 0, 0, minishard_index_encoding="gzip"), "t", "k")


# -- the spec ------------------------------------------------------------------------------------
def test_spec_parses_case_insensitively_with_raw_defaults_and_writes_canonical_json() -> None:
    spec = ShardingSpec.from_json(spec_json(hash="Identity", preshift_bits=3), "info.scales[0].sharding")
    assert spec == ShardingSpec(3, "identity", 0, 0, "raw", "raw")
    assert spec.to_json() == spec_json(preshift_bits=3, minishard_index_encoding="raw", data_encoding="raw")
    assert ShardingSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(("change", "field"), [
    ({"@type": "neuroglancer_uint64_sharded_v2"}, "@type"),
    ({"hash": "md5"}, "hash"),
    ({"hash": None}, "hash"),
    ({"preshift_bits": 65}, "preshift_bits"),
    ({"preshift_bits": -1}, "preshift_bits"),
    ({"minishard_bits": 1.5}, "minishard_bits"),
    ({"minishard_bits": True}, "minishard_bits"),
    ({"shard_bits": "3"}, "shard_bits"),
    ({"minishard_bits": 40, "shard_bits": 30}, "shard_bits"),
    ({"data_encoding": "zstd"}, "data_encoding"),
    ({"minishard_index_encoding": "br"}, "minishard_index_encoding"),
])
def test_bad_specs_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(bc.InfoError) as err:
        ShardingSpec.from_json(spec_json(**change), "info.scales[2].sharding")
    assert err.value.field == f"info.scales[2].sharding.{field}"
    assert f"info.scales[2].sharding.{field}" in str(err.value)


@pytest.mark.parametrize("missing", ["preshift_bits", "hash", "minishard_bits", "shard_bits"])
def test_required_spec_fields(missing: str) -> None:
    raw = spec_json()
    del raw[missing]
    with pytest.raises(bc.InfoError, match="missing") as err:
        ShardingSpec.from_json(raw, "info.scales[0].sharding")
    assert err.value.field == f"info.scales[0].sharding.{missing}"


@pytest.mark.parametrize(("spec", "grid", "shape"), [
    (ShardingSpec(3, "identity", 0, 20), (16, 16, 8), (2, 2, 2)),
    (ShardingSpec(2, "identity", 2, 20), (16, 16, 8), (4, 2, 2)),  # x, y, z, x
    (ShardingSpec(4, "identity", 0, 20), (16, 2, 1), (8, 2, 1)),  # y has one bit, z none
    (ShardingSpec(9, "identity", 6, 0), (7, 5, 5), (7, 5, 5)),  # everything in one shard, clipped
    (ShardingSpec(1, "identity", 1, 1), (16, 16, 8), None),  # too few bits: shards repeat
    (ShardingSpec(3, "murmurhash3_x86_128", 0, 20), (16, 16, 8), None),
])
def test_shard_shapes(spec: ShardingSpec, grid: tuple[int, int, int], shape: tuple[int, int, int] | None) -> None:
    assert spec.shard_shape_in_chunks(MortonCode(grid)) == shape
