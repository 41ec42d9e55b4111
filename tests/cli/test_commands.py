"""create, info, cutout, missing and --help, end to end on temp directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from bigarrays_cli import COMMANDS

import bigarrays_core as bc
from tests.cli.conftest import run_bigarrays

SUBCOMMANDS = [m.rpartition(".")[2] for m in COMMANDS]


def test_subcommands_listed_in_the_agreed_order() -> None:
    wanted = ["demo", "create", "info", "cutout", "ingest", "missing"]
    assert [c for c in SUBCOMMANDS if c in wanted] == wanted
    assert "serve" in SUBCOMMANDS


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(cli, command: str) -> None:
    r = cli(command, "--help")
    assert r.code == 0
    assert r.out.startswith(f"usage: bigarrays {command}")


def test_top_level_help_lists_every_subcommand(cli) -> None:
    r = cli("--help")
    assert r.code == 0
    for command in SUBCOMMANDS:
        assert command in r.out


def _made(tmp_path: Path) -> tuple[str, np.ndarray]:
    url = str(tmp_path / "vol")
    ba = bc.create(url, dtype="uint16", size=(100, 64, 40), chunk_size=(32, 32, 16), voxel_offset=(-36, 0, 0))
    data = np.random.default_rng(3).integers(0, 60000, size=(100, 64, 40), dtype=np.uint16)
    ba[:, :, :] = data
    return url, data


def test_create_then_info(cli, tmp_path: Path) -> None:
    url = str(tmp_path / "new")
    r = cli("create", url, "--dtype", "uint8", "--size", "128", "128", "64", "--chunk-size", "64", "64", "32",
            "--resolution", "4", "4", "40", "--compression", "gzip", "--mips", "2")
    assert r.code == 0, r.err
    r = cli("info", url)
    assert r.code == 0
    assert "image, uint8, 1 channel(s), 2 scale(s)" in r.out
    assert "mip 0: key '4_4_40'" in r.out and "bounds [0:128,0:128,0:64]" in r.out
    assert "chunks 64x64x32 (2x2x2 grid), raw+gzip" in r.out
    assert "mip 1: key '8_8_40'" in r.out
    r = cli("info", url, "--json")
    assert json.loads(r.out)["scales"][1]["size"] == [64, 64, 64]


def test_create_twice_is_refused_without_overwrite(cli, tmp_path: Path) -> None:
    url = str(tmp_path / "new")
    assert cli("create", url, "--dtype", "uint8", "--size", "8", "8", "8").code == 0
    r = cli("create", url, "--dtype", "uint8", "--size", "8", "8", "8")
    assert r.code == 1 and "already exists" in r.err and "overwrite" in r.err


@pytest.mark.parametrize(("args", "needle"), [
    (["create", "{d}", "--dtype", "complex64", "--size", "8", "8", "8"], "dtype"),
    (["create", "{d}", "--dtype", "uint8", "--size", "8", "8", "0"], "size"),
    (["info", "{d}/nothing"], "nothing"),
    (["cutout", "{d}/nothing", "0:1,0:1,0:1", "-o", "{d}/x.npy"], "nothing"),
    (["missing", "{d}/nothing"], "nothing"),
    (["ingest", "{d}/absent.npy", "{d}/out"], "absent.npy"),
    (["ingest", "{d}/whatever.xyz", "{d}/out"], "whatever.xyz"),
])
def test_bad_arguments_give_one_line_and_status_1(cli, tmp_path: Path, args: list[str], needle: str) -> None:
    r = cli(*[a.format(d=tmp_path) for a in args])
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bigarrays {args[0]}: error:"), r.err
    assert needle in lines[0]


def test_usage_errors_exit_2(cli, tmp_path: Path) -> None:
    assert cli("cutout", str(tmp_path)).code == 2  # no bbox, no -o
    assert cli("demo", "--port", "notaport").code == 2
    assert cli("nosuchcommand").code == 2


def test_errors_in_a_subprocess_have_no_traceback(tmp_path: Path) -> None:
    r = run_bigarrays(["cutout", str(tmp_path / "nope"), "0:8,0:8,0:8", "-o", str(tmp_path / "a.npy")])
    assert r.code == 1
    assert "Traceback" not in r.err and str(tmp_path / "nope") in r.err


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_cutout_saves_the_region(cli, tmp_path: Path, suffix: str) -> None:
    url, data = _made(tmp_path)
    out = tmp_path / f"cut{suffix}"
    r = cli("cutout", url, "-20:30,5:60,3:33", "-o", str(out))
    assert r.code == 0, r.err
    expected = data[16:66, 5:60, 3:33]
    if suffix == ".npy":
        got = np.load(out)
        assert got.shape == (50, 55, 30, 1)
        np.testing.assert_array_equal(got[..., 0], expected)
    else:
        pages = tifffile.imread(out)  # (z, y, x)
        assert pages.shape == (30, 55, 50)
        np.testing.assert_array_equal(pages.transpose(2, 1, 0), expected)


def test_cutout_multichannel_tif_and_mip(cli, tmp_path: Path) -> None:
    url = str(tmp_path / "rgb")
    ba = bc.create(url, dtype="uint8", size=(64, 32, 8), chunk_size=(32, 32, 8), num_channels=3, num_mips=2)
    data = np.random.default_rng(5).integers(0, 255, size=(64, 32, 8, 3), dtype=np.uint8)
    ba[:, :, :] = data
    ba.at_mip(1)[:, :, :] = data[::2, ::2]
    assert cli("cutout", url, "0:32,0:16,0:8", "--mip", "1", "-o", str(tmp_path / "c.tiff")).code == 0
    pages = tifffile.imread(tmp_path / "c.tiff")
    assert pages.shape == (8, 16, 32, 3)
    np.testing.assert_array_equal(pages.transpose(2, 1, 0, 3), data[::2, ::2])


def test_cutout_refuses_other_extensions_before_reading(cli, tmp_path: Path) -> None:
    url, _ = _made(tmp_path)
    r = cli("cutout", url, "0:8,0:8,0:8", "-o", str(tmp_path / "x.png"))
    assert r.code == 1 and "x.png" in r.err and ".tif" in r.err
    assert not (tmp_path / "x.png").exists()


def test_cutout_bad_bbox_names_it(cli, tmp_path: Path) -> None:
    url, _ = _made(tmp_path)
    r = cli("cutout", url, "0:8,0:8", "-o", str(tmp_path / "x.npy"))
    assert r.code == 1 and "0:8,0:8" in r.err


def test_cutout_no_fill_missing_names_the_chunk(cli, tmp_path: Path) -> None:
    url = str(tmp_path / "sparse")
    bc.create(url, dtype="uint8", size=(64, 64, 64), chunk_size=(32, 32, 32))
    r = cli("cutout", url, "0:32,0:32,0:32", "-o", str(tmp_path / "x.npy"), "--no-fill-missing")
    assert r.code == 1 and "0-32_0-32_0-32" in r.err


def test_missing_lists_absent_chunks(cli, tmp_path: Path) -> None:
    url = str(tmp_path / "sparse")
    ba = bc.create(url, dtype="uint8", size=(64, 64, 40), chunk_size=(32, 32, 32), resolution=(4, 4, 40))
    ba[0:32, 0:32, 0:32] = 1
    ba[32:64, 32:64, 32:40] = 2
    r = cli("missing", url)
    assert r.code == 0
    assert r.out.split() == ["4_4_40/32-64_0-32_0-32", "4_4_40/0-32_32-64_0-32", "4_4_40/32-64_32-64_0-32",
                             "4_4_40/0-32_0-32_32-40", "4_4_40/32-64_0-32_32-40", "4_4_40/0-32_32-64_32-40"]
    assert "6 of 8 chunk(s)" in r.err
    r = cli("missing", url, "0:40,0:10,0:10", "--json")
    assert json.loads(r.out) == {"bbox": "0:40,0:10,0:10", "mip": 0, "total": 2,
                                 "missing": ["4_4_40/32-64_0-32_0-32"]}
    assert cli("missing", url, "0:32,0:32,0:32", "--fail-if-missing").code == 0
    assert cli("missing", url, "--fail-if-missing").code == 3


def test_missing_bad_mip_is_one_line(cli, tmp_path: Path) -> None:
    url, _ = _made(tmp_path)
    r = cli("missing", url, "--mip", "4")
    assert r.code == 1 and "4" in r.err and len(r.err.strip().splitlines()) == 1


def test_output_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`bigarrays missing URL | head` must not print a broken-pipe error."""
    url = str(tmp_path / "many")
    bc.create(url, dtype="uint8", size=(1024, 1024, 64), chunk_size=(16, 16, 16))
    shell = f"{sys.executable} -m bigarrays_cli missing {url} | head -1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=120)
    assert done.stdout.count("\n") == 1
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("bbox", ["0:0,0:8,0:8", "0:8,8:4,0:8", "0-8_0-8_3-3"])
def test_cutout_of_an_empty_range_is_an_error_and_writes_nothing(cli, tmp_path: Path, bbox: str) -> None:
    url, _ = _made(tmp_path)
    out = tmp_path / "empty.npy"
    r = cli("cutout", url, bbox, "-o", str(out))
    assert r.code == 1 and bbox in r.err and "empty" in r.err, r.err
    assert not out.exists()


def test_cutout_too_big_for_memory_says_how_big(cli, tmp_path: Path) -> None:
    url = str(tmp_path / "huge")
    bc.create(url, dtype="uint16", size=(2**20, 2**20, 2**20), chunk_size=(64, 64, 64))
    out = tmp_path / "huge.npy"
    r = cli("cutout", url, "0:1048576,0:1048576,0:1024", "-o", str(out))
    assert r.code == 1 and "2.00 PiB" in r.err and "memory" in r.err and "--max-bytes" in r.err, r.err
    assert not out.exists()
    r = cli("cutout", url, "0:64,0:64,0:64", "-o", str(out), "--max-bytes", "8KiB")
    assert r.code == 1 and "512.00 KiB" in r.err and "--max-bytes 8KiB" in r.err, r.err
    assert cli("cutout", url, "0:64,0:64,0:64", "-o", str(out), "--max-bytes", "1M").code == 0
    assert np.load(out).shape == (64, 64, 64, 1)
    out.unlink()
    # A limit raised past what the machine has: the allocation fails, in one line, no file.
    r = cli("cutout", url, "0:1048576,0:1048576,0:1024", "-o", str(out), "--max-bytes", "4PiB")
    assert r.code == 1 and "out of memory" in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not out.exists()


def test_create_over_an_existing_dataset_names_the_cli_flag(cli, tmp_path: Path) -> None:
    url = str(tmp_path / "new")
    assert cli("create", url, "--dtype", "uint8", "--size", "8", "8", "8").code == 0
    r = cli("create", url, "--dtype", "uint8", "--size", "8", "8", "8")
    assert r.code == 1 and "--overwrite" in r.err and "overwrite=True" not in r.err


def test_create_sharded_and_info_show_the_spec(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = str(tmp_path / "sh")
    r = cli("create", url, "--dtype", "uint64", "--size", "256", "256", "64", "--encoding",
            "compressed_segmentation", "--sharded")
    assert r.code == 0, r.err
    info = cli("info", url)
    assert "sharded (2^0 shard files" in info.out and "identity hash" in info.out, info.out
    spec = ('{"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 2, "hash": "murmurhash3_x86_128", '
            '"minishard_bits": 1, "shard_bits": 1, "minishard_index_encoding": "gzip", "data_encoding": "raw"}')
    r = cli("create", str(tmp_path / "sh2"), "--dtype", "uint8", "--size", "256", "256", "64", "--sharding", spec)
    assert r.code == 0, r.err
    assert bc.open(str(tmp_path / "sh2")).sharding.hash == "murmurhash3_x86_128"  # type: ignore[union-attr]
    bad = cli("create", str(tmp_path / "sh3"), "--dtype", "uint8", "--size", "8", "8", "8", "--sharding",
              spec.replace('"raw"', '"zip"'))
    assert bad.code == 1 and "data_encoding" in bad.err and not (tmp_path / "sh3" / "info").exists()


def test_missing_and_ingest_on_a_sharded_scale(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = str(tmp_path / "sh")
    ba = bc.create(url, dtype="uint8", size=(128, 64, 64), chunk_size=(64, 64, 64), sharding=True)
    ba[0:64, 0:64, 0:64] = 5
    r = cli("missing", url)
    assert r.out.split() == [f"{ba.key}/64-128_0-64_0-64"], r.out
    # A sparse copy of a sharded dataset into a sharded one: missing stays missing.
    dst = str(tmp_path / "copy")
    bc.create(dst, dtype="uint8", size=(128, 64, 64), chunk_size=(64, 64, 64), sharding=True)
    r = cli("ingest", url, dst, "--quiet")
    assert r.code == 0, r.err
    copy = bc.open(dst)
    assert [c.key for c in copy.missing_chunks()] == [f"{copy.key}/64-128_0-64_0-64"]
    assert (copy[0:64, 0:64, 0:64] == 5).all()
