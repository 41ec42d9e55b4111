"""The info JSON (docs/format.md, "The `info`"): validation of every field, preservation, create_info."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.format import Info, create_info, read_info, scale_key_for, write_info
from bigarrays_core.kvstore import LocalStore, MemoryStore


def base_info() -> dict[str, Any]:
    """A valid two-scale uint32 segmentation info (scale 1 is the one most cases break)."""
    return {
        "@type": "neuroglancer_multiscale_volume",
        "type": "segmentation",
        "data_type": "uint32",
        "num_channels": 1,
        "scales": [
            {"key": "8_8_40", "size": [100, 80, 30], "voxel_offset": [-10, 0, 5], "resolution": [8, 8, 40],
             "chunk_sizes": [[32, 32, 16]], "encoding": "raw"},
            {"key": "16_16_40", "size": [50, 40, 30], "voxel_offset": [-5, 0, 5], "resolution": [16, 16, 40],
             "chunk_sizes": [[32, 32, 16]], "encoding": "compressed_segmentation",
             "compressed_segmentation_block_size": [8, 8, 8]},
        ],
    }


def top(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(info: dict[str, Any]) -> None:
        info[name] = value
    return edit


def drop(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(info: dict[str, Any]) -> None:
        del info[name]
    return edit


def s1(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(info: dict[str, Any]) -> None:
        info["scales"][1][name] = value
    return edit


def s1_drop(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(info: dict[str, Any]) -> None:
        del info["scales"][1][name]
    return edit


def s1_many(**values: Any) -> Callable[[dict[str, Any]], None]:
    def edit(info: dict[str, Any]) -> None:
        info["scales"][1].update(values)
    return edit


def as_image(data_type: str, num_channels: int, **scale1: Any) -> Callable[[dict[str, Any]], None]:
    """An image info whose scale 1 uses ``scale1`` (e.g. another encoding)."""
    def edit(info: dict[str, Any]) -> None:
        info.update(type="image", data_type=data_type, num_channels=num_channels)
        info["scales"][1].pop("compressed_segmentation_block_size")
        info["scales"][1].update(scale1)
    return edit


S1 = "info.scales[1]"
BAD = [
    # top level
    ("missing type", drop("type"), "info.type"),
    ("missing data_type", drop("data_type"), "info.data_type"),
    ("missing num_channels", drop("num_channels"), "info.num_channels"),
    ("missing scales", drop("scales"), "info.scales"),
    ("bad @type", top("@type", "neuroglancer_skeletons"), "info.@type"),
    ("type not a string", top("type", 3), "info.type"),
    ("unknown data_type", top("data_type", "complex64"), "info.data_type"),
    ("data_type not a string", top("data_type", 8), "info.data_type"),
    ("num_channels 0", top("num_channels", 0), "info.num_channels"),
    ("num_channels string", top("num_channels", "1"), "info.num_channels"),
    ("num_channels bool", top("num_channels", True), "info.num_channels"),
    ("num_channels float", top("num_channels", 1.0), "info.num_channels"),
    ("empty scales", top("scales", []), "info.scales"),
    ("scales not a list", top("scales", {"key": "a"}), "info.scales"),
    ("duplicate scale keys", s1("key", "8_8_40"), "info.scales"),
    # one scale
    ("scale not an object", lambda i: i["scales"].__setitem__(1, ["16_16_40"]), S1),
    ("missing key", s1_drop("key"), f"{S1}.key"),
    ("missing size", s1_drop("size"), f"{S1}.size"),
    ("missing resolution", s1_drop("resolution"), f"{S1}.resolution"),
    ("missing chunk_sizes", s1_drop("chunk_sizes"), f"{S1}.chunk_sizes"),
    ("missing encoding", s1_drop("encoding"), f"{S1}.encoding"),
    ("key with ..", s1("key", "../other"), f"{S1}.key"),
    ("key with inner ..", s1("key", "a/../../b"), f"{S1}.key"),
    ("key with .", s1("key", "./a"), f"{S1}.key"),
    ("key with backslash", s1("key", "a\\b"), f"{S1}.key"),
    ("key empty", s1("key", ""), f"{S1}.key"),
    ("key not a string", s1("key", 16), f"{S1}.key"),
    ("size of 2 entries", s1("size", [50, 40]), f"{S1}.size"),
    ("size of 4 entries", s1("size", [50, 40, 30, 1]), f"{S1}.size"),
    ("size negative", s1("size", [50, -1, 30]), f"{S1}.size"),
    ("size float", s1("size", [50.0, 40, 30]), f"{S1}.size"),
    ("size null", s1("size", None), f"{S1}.size"),
    ("voxel_offset float", s1("voxel_offset", [0.5, 0, 0]), f"{S1}.voxel_offset"),
    ("voxel_offset string", s1("voxel_offset", ["0", 0, 0]), f"{S1}.voxel_offset"),
    ("voxel_offset bool", s1("voxel_offset", [False, 0, 0]), f"{S1}.voxel_offset"),
    ("resolution 0", s1("resolution", [16, 0, 40]), f"{S1}.resolution"),
    ("resolution negative", s1("resolution", [16, 16, -40]), f"{S1}.resolution"),
    ("resolution NaN", s1("resolution", [math.nan, 16, 40]), f"{S1}.resolution"),
    ("resolution inf", s1("resolution", [math.inf, 16, 40]), f"{S1}.resolution"),
    ("resolution string", s1("resolution", ["16", 16, 40]), f"{S1}.resolution"),
    ("resolution of 2", s1("resolution", [16, 16]), f"{S1}.resolution"),
    ("chunk_sizes empty", s1("chunk_sizes", []), f"{S1}.chunk_sizes"),
    ("chunk_sizes zero", s1("chunk_sizes", [[32, 0, 16]]), f"{S1}.chunk_sizes"),
    ("chunk_sizes flat", s1("chunk_sizes", [32, 32, 16]), f"{S1}.chunk_sizes"),
    ("chunk_sizes second entry bad", s1("chunk_sizes", [[32, 32, 16], [1, 2]]), f"{S1}.chunk_sizes"),
    ("sharding not an object", s1("sharding", "yes"), f"{S1}.sharding"),
    ("sharding list", s1("sharding", []), f"{S1}.sharding"),
    ("sharding wrong @type", s1("sharding", {"@type": "neuroglancer_uint64_sharded_v2"}), f"{S1}.sharding"),
    ("offset + size overflows", s1_many(voxel_offset=[2**62 - 1, 0, 0], size=[2**62 - 1, 40, 30]), f"{S1}.size"),
    ("size beyond 64 bits", s1("size", [2**63, 40, 30]), f"{S1}.size"),
]

#: What is wrong with how one scale is encoded: only that scale is unusable.
SCALE_BAD = [
    ("unknown encoding", s1("encoding", "webp"), f"{S1}.encoding"),
    ("encoding not a string", s1("encoding", 1), f"{S1}.encoding"),
    ("npz (CloudVolume's historical encoding)", s1("encoding", "npz"), f"{S1}.encoding"),
    ("compresso with float32", as_image("float32", 1, encoding="compresso"), f"{S1}.encoding"),
    ("compresso with 2 channels", as_image("uint32", 2, encoding="compresso"), f"{S1}.encoding"),
    ("crackle with int32", as_image("int32", 1, encoding="crackle"), f"{S1}.encoding"),
    ("jxl with uint32", s1("encoding", "jxl"), f"{S1}.encoding"),
    ("jxl with 2 channels", as_image("uint8", 2, encoding="jxl"), f"{S1}.encoding"),
    ("jxl_quality 101", as_image("uint8", 1, encoding="jxl", jxl_quality=101), f"{S1}.jxl_quality"),
    ("jxl_effort 0", as_image("uint8", 1, encoding="jxl", jxl_effort=0), f"{S1}.jxl_effort"),
    ("jxl_decodingspeed 5", as_image("uint8", 1, encoding="jxl", jxl_decodingspeed=5), f"{S1}.jxl_decodingspeed"),
    ("fpzip with uint16", as_image("uint16", 1, encoding="fpzip"), f"{S1}.encoding"),
    ("fpzip_precision 1", as_image("float32", 1, encoding="fpzip", fpzip_precision=1), f"{S1}.fpzip_precision"),
    ("fpzip_precision 33", as_image("float32", 1, encoding="fpzip", fpzip_precision=33), f"{S1}.fpzip_precision"),
    ("fpzip_precision odd for float64", as_image("float64", 1, encoding="fpzip", fpzip_precision=31),
     f"{S1}.fpzip_precision"),
    ("kempressed with int32", as_image("int32", 1, encoding="kempressed"), f"{S1}.encoding"),
    ("zfpc with uint8", as_image("uint8", 1, encoding="zfpc"), f"{S1}.encoding"),
    ("zfpc two modes", as_image("float32", 1, encoding="zfpc", zfpc_rate=8, zfpc_tolerance=0.1),
     f"{S1}.zfpc_tolerance"),
    ("zfpc rate negative", as_image("float32", 1, encoding="zfpc", zfpc_rate=-2), f"{S1}.zfpc_rate"),
    ("zfpc rate string", as_image("float32", 1, encoding="zfpc", zfpc_rate="8"), f"{S1}.zfpc_rate"),
    ("zfpc dims none correlated", as_image("float32", 1, encoding="zfpc", zfpc_correlated_dims=[False] * 4),
     f"{S1}.zfpc_correlated_dims"),
    ("zfpc dims of 3", as_image("float32", 1, encoding="zfpc", zfpc_correlated_dims=[True] * 3),
     f"{S1}.zfpc_correlated_dims"),
    ("jpeg with uint16", as_image("uint16", 1, encoding="jpeg"), f"{S1}.encoding"),
    ("jpeg with 2 channels", as_image("uint8", 2, encoding="jpeg"), f"{S1}.encoding"),
    ("png with 5 channels", as_image("uint8", 5, encoding="png"), f"{S1}.encoding"),
    ("png with int16", as_image("int16", 1, encoding="png"), f"{S1}.encoding"),
    ("cseg with float32", top("data_type", "float32"), f"{S1}.encoding"),
    ("cseg without block size", s1_drop("compressed_segmentation_block_size"),
     f"{S1}.compressed_segmentation_block_size"),
    ("cseg block size zero", s1("compressed_segmentation_block_size", [8, 0, 8]),
     f"{S1}.compressed_segmentation_block_size"),
    ("jpeg_quality 101", as_image("uint8", 3, encoding="jpeg", jpeg_quality=101), f"{S1}.jpeg_quality"),
    ("jpeg_quality -1", as_image("uint8", 1, encoding="jpeg", jpeg_quality=-1), f"{S1}.jpeg_quality"),
    ("jpeg_quality string", as_image("uint8", 1, encoding="jpeg", jpeg_quality="80"), f"{S1}.jpeg_quality"),
    ("png_level 10", as_image("uint16", 4, encoding="png", png_level=10), f"{S1}.png_level"),
    ("png_level -1", as_image("uint8", 1, encoding="png", png_level=-1), f"{S1}.png_level"),
    ("compression unknown id", s1("compression", {"id": "lzma"}), f"{S1}.compression"),
    ("compression unknown name", s1("compression", "brotli"), f"{S1}.compression"),
    ("br level 12", s1("compression", {"id": "br", "level": 12}), f"{S1}.compression"),
    ("compression without id", s1("compression", {"level": 3}), f"{S1}.compression"),
    ("compression not an object", s1("compression", 5), f"{S1}.compression"),
    ("gzip level 0", s1("compression", {"id": "gzip", "level": 0}), f"{S1}.compression"),
    ("gzip level 10", s1("compression", {"id": "gzip", "level": 10}), f"{S1}.compression"),
    ("gzip level string", s1("compression", {"id": "gzip", "level": "1"}), f"{S1}.compression"),
    ("zstd level 23", s1("compression", {"id": "zstd", "level": 23}), f"{S1}.compression"),
    ("zstd unknown param", s1("compression", {"id": "zstd", "level": 3, "window": 10}), f"{S1}.compression"),
    ("blosc bad cname", s1("compression", {"id": "blosc", "cname": "snappyish"}), f"{S1}.compression"),
    ("blosc bad shuffle", s1("compression", {"id": "blosc", "shuffle": 3}), f"{S1}.compression"),
    ("blosc level 10", s1("compression", {"id": "blosc", "level": 10}), f"{S1}.compression"),
    ("blosc unknown param", s1("compression", {"id": "blosc", "typesize": 4}), f"{S1}.compression"),
]


def _cases(rows: list[Any]) -> list[Any]:
    """``(id, edit, field)`` rows (or pytest.param of them, for marks) as params with ids."""
    out = []
    for row in rows:
        if hasattr(row, "marks"):  # already a pytest.param (a NamedTuple too)
            out.append(pytest.param(*row.values[1:], id=row.values[0], marks=row.marks))
        else:
            out.append(pytest.param(row[1], row[2], id=row[0]))
    return out


@pytest.mark.parametrize(("edit", "field"), _cases(BAD))
def test_malformed_field_names_its_path(edit: Callable[[dict[str, Any]], None], field: str) -> None:
    raw = base_info()
    edit(raw)
    with pytest.raises(bc.InfoError) as info:
        Info(raw)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.field is not None and err.field.startswith(field), (err.field, field)
    assert err.field in str(err)


@pytest.mark.parametrize(("edit", "field"), _cases(SCALE_BAD))
def test_a_badly_encoded_scale_fails_alone(edit: Callable[[dict[str, Any]], None], field: str) -> None:
    """Scale 1's encoding, settings or compression are unusable: the info parses, scale 0
    opens, reads and writes, and opening scale 1 raises an error naming its field, index and key."""
    raw = base_info()
    edit(raw)
    info = Info(raw)
    assert info.scales[0].usable and info.scales[0].problem is None
    problem = info.scales[1].problem
    assert problem is not None and not info.scales[1].usable
    assert problem.field.startswith(field), (problem.field, field)
    assert problem.field in problem.message
    assert "scale 1" in problem.message and "'16_16_40'" in problem.message
    assert info.problems == {1: problem}
    assert info.to_json() == raw  # the bad scale is kept as it is, for the tools that can read it

    store = MemoryStore()
    store.set("info", json.dumps(raw).encode())
    ba = bc.open(store)
    ba[-10:22, 0:32, 5:21] = np.ones((32, 32, 16, ba.num_channels), dtype=ba.dtype)
    np.testing.assert_array_equal(ba[-10:22, 0:32, 5:21], 1)
    assert ba.num_mips == 2 and ba.parsed_info.scales[1].problem == problem
    for opening in (lambda: bc.open(store, mip=1), lambda: ba.at_mip(1)):
        with pytest.raises(bc.InfoError) as err:
            opening()
        assert err.value.field == problem.field
        assert store.url in str(err.value) and problem.message in str(err.value)


@pytest.mark.parametrize(("edit", "field"), _cases(BAD[:3] + BAD[16:21]))
def test_open_reports_the_info_url_and_field(edit: Callable[[dict[str, Any]], None], field: str) -> None:
    store = MemoryStore()
    raw = base_info()
    edit(raw)
    store.set("info", json.dumps(raw).encode())
    with pytest.raises(bc.InfoError) as info:
        bc.open(store)
    assert info.value.field is not None and info.value.field.startswith(field)
    assert store.describe("info") in str(info.value)
    assert info.value.field in str(info.value)


def test_info_must_be_an_object_and_json(tmp_path: Any) -> None:
    with pytest.raises(bc.InfoError) as info:
        Info([1, 2])  # type: ignore[arg-type]
    assert info.value.field == "info"
    store = LocalStore(str(tmp_path))
    store.set("info", b"{not json")
    with pytest.raises(bc.InfoError) as info:
        read_info(store)
    assert info.value.field == "info"
    assert f"{store.url}/info" in str(info.value)
    assert "not valid JSON" in str(info.value)


def test_valid_info_parses_every_field() -> None:
    raw = base_info()
    raw["scales"][0].update(chunk_sizes=[[32, 32, 16], [100, 80, 1]], compression={"id": "zstd", "level": 5})
    info = Info(raw)
    assert info.layer_type == "segmentation"
    assert info.data_type == "uint32"
    assert info.num_channels == 1
    assert info.dtype.str == "<u4"
    s0, s1_ = info.scales
    assert (s0.index, s0.key, s0.size, s0.voxel_offset) == (0, "8_8_40", (100, 80, 30), (-10, 0, 5))
    assert s0.resolution == (8.0, 8.0, 40.0)
    assert s0.chunk_sizes == ((32, 32, 16), (100, 80, 1))
    assert s0.chunk_size == (32, 32, 16)
    assert s0.encoding == "raw"
    assert s0.compression == {"id": "zstd", "level": 5}
    assert s0.sharding is None and s0.compressed_segmentation_block_size is None
    assert s1_.encoding == "compressed_segmentation"
    assert s1_.compressed_segmentation_block_size == (8, 8, 8)
    assert info.scale(1) is s1_


def test_voxel_offset_defaults_to_zero_and_size_zero_is_allowed() -> None:
    raw = base_info()
    del raw["scales"][0]["voxel_offset"]
    raw["scales"][1]["size"] = [0, 40, 30]
    info = Info(raw)
    assert info.scales[0].voxel_offset == (0, 0, 0)
    assert info.scales[1].size == (0, 40, 30)


@pytest.mark.parametrize("mip", [-1, 2, "0", 1.0, True])
def test_missing_mip_is_an_info_error(mip: Any) -> None:
    info = Info(base_info())
    with pytest.raises(bc.InfoError, match="mip") as err:
        info.scale(mip)
    assert err.value.field == "info.scales"
    store = MemoryStore()
    write_info(store, info)
    with pytest.raises(bc.InfoError, match="does not exist"):
        bc.open(store, mip=mip)


def test_enums_are_read_case_insensitively() -> None:
    raw = base_info()
    raw.update(type="Segmentation", data_type="UINT32")
    raw["scales"][0]["encoding"] = "RAW"
    raw["scales"][1]["encoding"] = "Compressed_Segmentation"
    raw["scales"][0]["compression"] = {"id": "GZIP", "level": 2}
    info = Info(raw)
    assert info.layer_type == "segmentation"
    assert info.data_type == "uint32"
    assert [s.encoding for s in info.scales] == ["raw", "compressed_segmentation"]
    assert info.scales[0].compression == {"id": "gzip", "level": 2}
    image = base_info()
    image.update(type="IMAGE", data_type="Uint8", num_channels=3)
    image["scales"] = [dict(image["scales"][0], encoding="JPEG")]
    assert Info(image).scales[0].encoding == "jpeg"


def test_any_type_string_is_accepted() -> None:
    raw = base_info()
    raw["type"] = "unknown"  # Neuroglancer knows it; TensorStore accepts any string
    assert Info(raw).layer_type == "unknown"


@pytest.mark.parametrize("make_store", [lambda p: MemoryStore(), lambda p: LocalStore(str(p))])
def test_unknown_fields_survive_a_rewrite(make_store: Callable[[Any], Any], tmp_path: Any) -> None:
    store = make_store(tmp_path)
    raw = base_info()
    raw["mesh"] = "mesh"
    raw["x_provenance"] = {"by": ["core-tests", 1], "nested": {"a": None}}
    raw["scales"][0]["locked"] = True
    raw["scales"][0]["rois"] = [[0, 0, 0, 10, 10, 10]]
    raw["scales"][1]["hidden"] = True
    store.set("info", json.dumps(raw).encode())
    info = read_info(store)
    write_info(store, info)
    again = json.loads(store.get("info"))
    assert again == raw
    assert read_info(store) == info
    assert bc.open(store).info == raw


def test_sharding_null_is_read_as_unsharded_and_never_written() -> None:
    raw = base_info()
    raw["scales"][0]["sharding"] = None
    raw["scales"][1]["sharding"] = None
    info = Info(raw)
    assert all(s.sharding is None for s in info.scales)
    out = info.to_json()
    assert all("sharding" not in s for s in out["scales"])
    store = MemoryStore()
    write_info(store, info)
    assert b"sharding" not in (store.get("info") or b"")
    ba = bc.open(store)
    assert "sharding" not in ba.info["scales"][0]


def test_a_sharded_scale_is_kept_as_given_and_parsed_when_opened() -> None:
    raw = base_info()
    raw["scales"][0]["sharding"] = {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 9, "hash": "identity",
                                    "minishard_bits": 6, "shard_bits": 15, "minishard_index_encoding": "gzip",
                                    "data_encoding": "gzip"}
    info = Info(raw)
    assert info.scales[0].sharding is not None and info.scales[0].sharding["shard_bits"] == 15
    assert info.to_json()["scales"][0]["sharding"] == raw["scales"][0]["sharding"]
    store = MemoryStore()
    write_info(store, info)
    ba = bc.open(store)
    assert ba.sharding is not None and ba.sharding.shard_bits == 15 and ba.sharding.hash == "identity"
    assert bc.open(store, mip=1).sharding is None


def test_a_bad_sharding_spec_fails_only_its_scale() -> None:
    raw = base_info()
    raw["scales"][0]["sharding"] = {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 9, "hash": "md5",
                                    "minishard_bits": 6, "shard_bits": 15}
    store = MemoryStore()
    write_info(store, Info(raw))  # the info itself is readable
    with pytest.raises(bc.InfoError, match="hash") as err:
        bc.open(store)
    assert err.value.field == "info.scales[0].sharding.hash"
    assert bc.open(store, mip=1).mip == 1


def test_to_json_is_a_deep_copy() -> None:
    raw = base_info()
    info = Info(raw)
    raw["scales"][0]["size"][0] = 1  # the caller's dict no longer matters
    out = info.to_json()
    out["scales"][0]["key"] = "changed"
    assert info.to_json()["scales"][0] == dict(base_info()["scales"][0])


# -- create_info ---------------------------------------------------------------------------


def test_create_info_multiscale_floor_and_ceil() -> None:
    info = create_info(dtype="uint16", size=(101, 50, 7), voxel_offset=(-3, 5, 1), resolution=(4.5, 4.5, 40),
                       chunk_size=(32, 32, 8), num_mips=3, downsample_factor=(2, 2, 1))
    raw = info.to_json()
    assert raw["@type"] == "neuroglancer_multiscale_volume"
    assert raw["type"] == "image"
    assert raw["data_type"] == "uint16"
    assert raw["num_channels"] == 1
    got = [(s["key"], s["voxel_offset"], s["size"], s["resolution"]) for s in raw["scales"]]
    assert got == [
        ("4.5_4.5_40", [-3, 5, 1], [101, 50, 7], [4.5, 4.5, 40]),
        # offset floor(-3/2) = -2 .. ceil(98/2) = 49; floor(5/2) = 2 .. ceil(55/2) = 28
        ("9_9_40", [-2, 2, 1], [51, 26, 7], [9, 9, 40]),
        # floor(-3/4) = -1 .. ceil(98/4) = 25; floor(5/4) = 1 .. ceil(55/4) = 14
        ("18_18_40", [-1, 1, 1], [26, 13, 7], [18, 18, 40]),
    ]
    for s in raw["scales"]:
        assert s["chunk_sizes"] == [[32, 32, 8]]
        assert s["encoding"] == "raw"
        assert "sharding" not in s and "compression" not in s
    # Every scale covers the finer one.
    for fine, coarse in zip(info.scales, info.scales[1:], strict=False):
        lo = [o // 2 if i < 2 else o for i, o in enumerate(fine.voxel_offset)]
        assert list(coarse.voxel_offset) == lo


def test_create_info_keys_and_encoding_extras() -> None:
    assert scale_key_for((8, 8, 40)) == "8_8_40"
    assert scale_key_for((4.5, 4.5, 40.0)) == "4.5_4.5_40"
    assert scale_key_for((0.25, 1, 3)) == "0.25_1_3"
    seg = create_info(dtype="uint64", size=(64, 64, 64), encoding="Compressed_Segmentation",
                      compressed_segmentation_block_size=(4, 4, 2), compression="gzip",
                      resolution=(8, 8, 40)).to_json()
    assert seg["type"] == "segmentation"
    (scale,) = seg["scales"]
    assert scale["key"] == "8_8_40"
    assert scale["encoding"] == "compressed_segmentation"
    assert scale["compressed_segmentation_block_size"] == [4, 4, 2]
    assert scale["compression"] == {"id": "gzip", "level": 1}
    jpeg = create_info(dtype="uint8", size=(8, 8, 8), encoding="jpeg", num_channels=3, jpeg_quality=90,
                       layer_type="image").to_json()
    assert jpeg["scales"][0]["jpeg_quality"] == 90
    assert jpeg["num_channels"] == 3
    png = create_info(dtype="uint16", size=(8, 8, 8), encoding="png", png_level=1).to_json()
    assert png["scales"][0]["png_level"] == 1
    blosc = create_info(dtype="uint16", size=(8, 8, 8),
                        compression={"id": "blosc", "cname": "lz4", "level": 5, "shuffle": 2}).to_json()
    assert blosc["scales"][0]["compression"] == {"id": "blosc", "level": 5, "cname": "lz4", "shuffle": 2}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dtype": "complex64"}, "dtype"),
        ({"dtype": "not-a-dtype"}, "dtype"),
        ({"num_mips": 0}, "num_mips"),
        ({"size": (0, 8, 8)}, "size"),
        ({"size": (8, 8)}, "size"),
        ({"voxel_offset": (0.5, 0, 0)}, "voxel_offset"),
        ({"downsample_factor": (0, 2, 1)}, "downsample_factor"),
        ({"resolution": (1, 1)}, "resolution"),
        ({"chunk_size": (8, 0, 8)}, "info.scales[0].chunk_sizes"),
        ({"encoding": "jpeg", "dtype": "uint16"}, "info.scales[0].encoding"),
        ({"encoding": "webp"}, "info.scales[0].encoding"),
        ({"compression": "lz77"}, "compression"),
        ({"compression": {"id": "gzip", "level": 12}}, "compression"),
        ({"encoding": "jpeg", "jpeg_quality": 101}, "info.scales[0].jpeg_quality"),
        ({"encoding": "png", "png_level": 10}, "info.scales[0].png_level"),
        ({"num_channels": 0}, "info.num_channels"),
    ],
)
def test_create_info_names_the_bad_argument(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"dtype": "uint8", "size": (8, 8, 8)}
    args.update(kwargs)
    with pytest.raises(bc.InfoError) as info:
        create_info(**args)
    assert info.value.field is not None and info.value.field.startswith(field)
    assert field in str(info.value)


def test_info_equality_follows_the_json() -> None:
    a = Info(base_info())
    b = Info(copy.deepcopy(base_info()))
    assert a == b
    c = base_info()
    c["extra"] = 1
    assert a != Info(c)


def test_a_gzipped_info_is_read() -> None:
    import gzip

    store = MemoryStore()
    store.set("info", gzip.compress(json.dumps(base_info()).encode()))
    assert read_info(store) == Info(base_info())
