"""Every encoding and byte compression bigarrays writes, from the command line
(``create``/``ingest``/``transfer`` ``--encoding`` and ``--compression``, ``br`` included), and
``bigarrays info`` on a dataset with a scale bigarrays cannot read."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.codecs import COMPRESSIONS, known_encodings

#: encoding -> (dtype, channels) it stores, and whether it keeps the voxels exactly.
WRITES: dict[str, tuple[str, int, bool]] = {
    "raw": ("uint16", 1, True),
    "jpeg": ("uint8", 1, False),
    "png": ("uint8", 1, True),
    "compressed_segmentation": ("uint32", 1, True),
    "compresso": ("uint64", 1, True),
    "crackle": ("uint32", 1, True),
    "jxl": ("uint8", 1, False),
    "fpzip": ("float32", 1, True),
    "kempressed": ("float32", 1, False),
    "zfpc": ("float32", 1, False),
}


def _volume(dtype: str, shape: tuple[int, int, int] = (40, 36, 12)) -> np.ndarray:
    rng = np.random.default_rng(16)
    if np.dtype(dtype).kind == "f":
        x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
        return (np.sin(x / 5.0) + y / 7.0 + z).astype(dtype)
    blocks = rng.integers(0, 200, size=(shape[0] // 4 + 1, shape[1] // 4 + 1, shape[2] // 4 + 1))
    return blocks.repeat(4, 0).repeat(4, 1).repeat(4, 2)[:shape[0], :shape[1], :shape[2]].astype(dtype)


def test_every_known_encoding_is_covered_here() -> None:
    assert sorted(WRITES) == known_encodings()


@pytest.mark.parametrize("encoding", sorted(WRITES))
def test_ingest_writes_each_encoding(cli, tmp_path: Path, encoding: str) -> None:  # type: ignore[no-untyped-def]
    dtype, _, exact = WRITES[encoding]
    vol = _volume(dtype)
    np.save(tmp_path / "v.npy", vol)
    dest = str(tmp_path / "out")
    r = cli("ingest", str(tmp_path / "v.npy"), dest, "--chunk-size", "16", "16", "8", "--encoding", encoding,
            "--quiet")
    assert r.code == 0, r.err
    ba = bc.open(dest)
    assert ba.encoding == encoding
    got = ba[:, :, :, 0]
    if exact:
        np.testing.assert_array_equal(got, vol)
    else:  # lossy: close to the voxels, and exactly what the codec gives back
        assert np.abs(got.astype(np.float64) - vol).mean() < (0.5 if np.dtype(dtype).kind == "f" else 20)
    if encoding in ("compresso", "crackle"):  # as CloudVolume writes them
        assert ba.compression == {"id": "gzip", "level": 1} or ba.compression["id"] == "gzip"


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_ingest_and_transfer_write_each_compression(cli, tmp_path: Path, compression: str) -> None:  # type: ignore[no-untyped-def]
    vol = _volume("uint16")
    np.save(tmp_path / "v.npy", vol)
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    r = cli("ingest", str(tmp_path / "v.npy"), first, "--chunk-size", "16", "16", "8", "--compression", compression,
            "--compression-level", "3", "--quiet")
    assert r.code == 0, r.err
    assert bc.open(first).compression == {"id": compression, "level": 3} or compression == "blosc"
    np.testing.assert_array_equal(bc.open(first)[:, :, :, 0], vol)
    if compression == "br":  # CloudVolume's convention on local disk: a .br suffix
        assert all(name.endswith(".br") for name in os.listdir(tmp_path / "a" / "1_1_1") if "-" in name)
    r = cli("transfer", first, second, "--encoding", "crackle", "--compression", "none", "--quiet")
    assert r.code == 0, r.err
    copy = bc.open(second)
    assert copy.encoding == "crackle" and copy.compression is None
    np.testing.assert_array_equal(copy[:, :, :, 0], vol)


def test_transfer_to_fpzip_and_back_with_brotli(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vol = _volume("float32")
    src = bc.create(str(tmp_path / "src"), dtype="float32", size=vol.shape, chunk_size=(16, 16, 8))
    src[:, :, :] = vol[..., None]
    r = cli("transfer", str(tmp_path / "src"), str(tmp_path / "fp"), "--encoding", "fpzip", "--quiet")
    assert r.code == 0, r.err
    r = cli("transfer", str(tmp_path / "fp"), str(tmp_path / "back"), "--encoding", "raw", "--compression", "br",
            "--quiet")
    assert r.code == 0, r.err
    back = bc.open(str(tmp_path / "back"))
    assert (back.encoding, back.compression["id"]) == ("raw", "br")
    assert bc.open(str(tmp_path / "fp")).encoding == "fpzip"
    np.testing.assert_array_equal(back[:, :, :, 0], vol)


def test_encoding_settings_from_the_command_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vol = _volume("uint8")
    np.save(tmp_path / "v.npy", vol)
    r = cli("create", str(tmp_path / "c"), "--dtype", "uint8", "--size", "32", "32", "8", "--encoding", "jxl",
            "--encoding-setting", "jxl_quality=100", "--encoding-setting", "jxl_effort=3")
    assert r.code == 0, r.err
    scale = bc.open(str(tmp_path / "c")).info["scales"][0]
    assert (scale["jxl_quality"], scale["jxl_effort"]) == (100, 3)
    # Lossless JPEG XL through ingest keeps every voxel; transfer to jpeg drops the jxl settings.
    r = cli("ingest", str(tmp_path / "v.npy"), str(tmp_path / "j"), "--chunk-size", "16", "16", "8",
            "--encoding", "jxl", "--encoding-setting", "jxl_quality=100", "--quiet")
    assert r.code == 0, r.err
    np.testing.assert_array_equal(bc.open(str(tmp_path / "j"))[:, :, :, 0], vol)
    r = cli("transfer", str(tmp_path / "j"), str(tmp_path / "p"), "--encoding", "jpeg",
            "--encoding-setting", "jpeg_quality=95", "--quiet")
    assert r.code == 0, r.err
    scale = bc.open(str(tmp_path / "p")).info["scales"][0]
    assert scale["jpeg_quality"] == 95 and not any(k.startswith("jxl_") for k in scale), scale
    # Ingesting again with another setting is refused, naming it; nothing is written.
    r = cli("ingest", str(tmp_path / "v.npy"), str(tmp_path / "j"), "--encoding-setting", "jxl_quality=80",
            "--quiet")
    assert r.code != 0 and "jxl_quality" in r.err


@pytest.mark.parametrize(("command", "setting", "named"), [
    ("create", "jpeg_quality=90", "jpeg_quality"), ("transfer", "fpzip_precision=16", "fpzip_precision"),
    ("create", "jxl_quality", "NAME=VALUE"), ("create", "jxl_quality=500", "jxl_quality")])
def test_a_wrong_encoding_setting_is_refused_naming_it(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, command: str, setting: str, named: str) -> None:
    src = bc.create(str(tmp_path / "a"), dtype="uint8", size=(16, 16, 8), chunk_size=(16, 16, 8))
    src[:, :, :] = 7
    args = {"create": ["create", str(tmp_path / "x"), "--dtype", "uint8", "--size", "8", "8", "8",
                       "--encoding", "jxl"],
            "transfer": ["transfer", str(tmp_path / "a"), str(tmp_path / "x"), "--encoding", "png"]}[command]
    r = cli(*args, "--encoding-setting", setting)
    assert r.code != 0 and named in r.err, r.err
    assert not (tmp_path / "x" / "info").exists()


@pytest.mark.parametrize("encoding", sorted(WRITES))
def test_create_takes_each_encoding(cli, tmp_path: Path, encoding: str) -> None:  # type: ignore[no-untyped-def]
    dtype, channels, _ = WRITES[encoding]
    r = cli("create", str(tmp_path / "ds"), "--dtype", dtype, "--size", "32", "32", "8", "--encoding", encoding)
    assert r.code == 0, r.err
    assert f", {encoding}" in r.out
    assert bc.open(str(tmp_path / "ds")).encoding == encoding


@pytest.mark.parametrize("command", ["create", "ingest", "transfer"])
@pytest.mark.parametrize(("option", "value", "choices"), [
    ("--encoding", "webp", known_encodings()), ("--compression", "lzma", ["none", *COMPRESSIONS])])
def test_unknown_encoding_or_compression_is_one_line_listing_the_choices(
        cli, tmp_path: Path, command: str, option: str, value: str, choices: list[str]) -> None:  # type: ignore[no-untyped-def]
    args = {"create": ["create", str(tmp_path / "x"), "--dtype", "uint8", "--size", "8", "8", "8"],
            "ingest": ["ingest", str(tmp_path / "v.npy"), str(tmp_path / "x")],
            "transfer": ["transfer", str(tmp_path / "a"), str(tmp_path / "x")]}[command]
    r = cli(*args, option, value)
    assert r.code == 2
    (line,) = [ln for ln in r.err.splitlines() if "error:" in ln]
    assert f"{value!r}" in line and all(c in line for c in choices), line
    assert not (tmp_path / "x").exists()


def test_an_encoding_the_dtype_cannot_have_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("create", str(tmp_path / "x"), "--dtype", "uint16", "--size", "8", "8", "8", "--encoding", "jxl")
    assert r.code == 1 and "jxl" in r.err and "uint16" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "x" / "info").exists()


def _three_mips(tmp_path: Path) -> tuple[str, np.ndarray, dict[str, Any]]:
    url = str(tmp_path / "ds")
    ba = bc.create(url, dtype="uint8", size=(32, 32, 8), chunk_size=(16, 16, 8), num_mips=3)
    data = _volume("uint8", (32, 32, 8))
    ba[:, :, :] = data[..., None]
    with open(tmp_path / "ds" / "info") as f:
        return url, data, json.load(f)


def _write_info(tmp_path: Path, raw: dict[str, Any]) -> None:
    with open(tmp_path / "ds" / "info", "w") as f:
        json.dump(raw, f)


@pytest.mark.parametrize("bad", [0, 2])
def test_info_lists_every_scale_and_marks_the_unreadable_one(cli, tmp_path: Path, bad: int) -> None:  # type: ignore[no-untyped-def]
    url, _, raw = _three_mips(tmp_path)
    raw["scales"][bad]["encoding"] = "webp2"
    _write_info(tmp_path, raw)
    r = cli("info", url)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    mips = [ln for ln in lines if ln.lstrip().startswith("mip ")]
    assert len(mips) == 3 and f"{raw['scales'][bad]['key']!r}" in mips[bad] and "webp2" in mips[bad]
    (mark,) = [ln for ln in lines if "UNREADABLE" in ln]
    assert lines.index(mark) == lines.index(mips[bad]) + 1
    assert f"scales[{bad}].encoding" in mark and "webp2" in mark
    r = cli("info", url, "--json")
    assert r.code == 0 and json.loads(r.out) == raw


def test_info_names_the_package_a_scale_needs(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    url, _, raw = _three_mips(tmp_path)
    raw["scales"][0]["encoding"] = "crackle"  # mip 0 in a codec whose package is "not installed"
    _write_info(tmp_path, raw)
    monkeypatch.setitem(sys.modules, "crackle", None)  # import crackle fails, as when it is not installed
    monkeypatch.delitem(sys.modules, "bigarrays_core.codecs.crackle", raising=False)
    r = cli("info", url)
    assert r.code == 0, r.err
    (mark,) = [ln for ln in r.out.splitlines() if "UNREADABLE" in ln]
    assert "crackle" in mark and "pip install crackle-codec" in mark


def test_open_reads_the_good_scales_when_mip_2_is_unreadable(tmp_path: Path) -> None:
    url, data, raw = _three_mips(tmp_path)
    ba = bc.open(url)
    ba.at_mip(1)[:, :, :] = data[::2, ::2, :, None]
    raw["scales"][2]["encoding"] = "webp2"
    _write_info(tmp_path, raw)
    np.testing.assert_array_equal(bc.open(url, mip=0)[:, :, :, 0], data)
    np.testing.assert_array_equal(bc.open(url, mip=1)[:, :, :, 0], data[::2, ::2])
    with pytest.raises(bc.InfoError, match=r"scales\[2\]\.encoding.*webp2"):
        bc.open(url, mip=2)


def test_a_compression_level_alone_sets_the_default_compressions_level(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # compresso is gzipped by default: the level applies to that gzip (it was silently dropped by create).
    r = cli("create", str(tmp_path / "c"), "--dtype", "uint32", "--size", "16", "16", "8", "--encoding", "compresso",
            "--compression-level", "6")
    assert r.code == 0, r.err
    assert bc.open(str(tmp_path / "c")).compression == {"id": "gzip", "level": 6}
    vol = _volume("uint8")
    np.save(tmp_path / "v.npy", vol)
    # raw is stored without compression by default: a level alone is an error naming the option, nothing written
    # (ingest failed with "unknown compression 'auto'").
    for args in (["create", str(tmp_path / "r"), "--dtype", "uint8", "--size", "8", "8", "8"],
                 ["ingest", str(tmp_path / "v.npy"), str(tmp_path / "r")],
                 ["create", str(tmp_path / "r"), "--dtype", "uint8", "--size", "8", "8", "8", "--compression", "none"]):
        r = cli(*args, "--compression-level", "3")
        assert r.code != 0 and "--compression-level 3" in r.err and "--compression" in r.err, r.err
        assert not (tmp_path / "r" / "info").exists()
    r = cli("ingest", str(tmp_path / "v.npy"), str(tmp_path / "z"), "--compression", "zstd", "--compression-level", "5",
            "--quiet")
    assert r.code == 0, r.err
    assert bc.open(str(tmp_path / "z")).compression == {"id": "zstd", "level": 5}
    r = cli("transfer", str(tmp_path / "z"), str(tmp_path / "t"), "--compression-level", "9", "--quiet")
    assert r.code != 0 and "the source's" in r.err and not (tmp_path / "t" / "info").exists()
