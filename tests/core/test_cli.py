"""``bigarrays create | info | cutout``: run in-process through ``main`` and once as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bigarrays_cli import main

import bigarrays_core as bc
from bigarrays_core.geometry import Box

from .datasets import make


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` -> (exit status, stdout, stderr); argparse's SystemExit becomes a status."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def filled(tmp_path: Path) -> tuple[str, np.ndarray]:
    """A uint16 2-channel dataset at a negative offset with seeded data in part of it."""
    url = str(tmp_path / "ds")
    ba = make(url, dtype="uint16", size=(48, 40, 20), voxel_offset=(-16, -8, 4), chunk_size=(16, 16, 8),
              num_channels=2, resolution=(8, 8, 40), num_mips=2)
    rng = np.random.default_rng(11)
    data = rng.integers(1, 2**16, size=(32, 32, 16, 2), dtype=np.uint16)
    ba[-16:16, -8:24, 4:20] = data
    return url, data


def one_error_line(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("bigarrays ") and "error" in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


# -- create ----------------------------------------------------------------------------------


def test_create_writes_the_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"file://{tmp_path / 'new'}"
    code, out, err = run(capsys, "create", url, "--dtype", "uint16", "--size", "100", "80", "30",
                         "--chunk-size", "32", "32", "16", "--voxel-offset", "-10", "0", "5",
                         "--resolution", "4.5", "4.5", "40", "--channels", "2", "--compression", "gzip",
                         "--compression-level", "5", "--mips", "2", "--layer-type", "image")
    assert code == 0, err
    assert err == ""
    assert out.startswith(f"created {url}")
    assert "uint16" in out and "2 channel(s)" in out and "2 scale(s)" in out
    ba = bc.open(url)
    assert ba.shape == (100, 80, 30, 2)
    assert ba.voxel_offset == (-10, 0, 5)
    assert ba.chunk_size == (32, 32, 16)
    assert ba.resolution == (4.5, 4.5, 40.0)
    assert ba.compression == {"id": "gzip", "level": 5}
    assert ba.key == "4.5_4.5_40"
    assert ba.num_mips == 2
    assert ba.at_mip(1).voxel_offset == (-5, 0, 5) and ba.at_mip(1).shape == (50, 40, 30, 2)
    assert ba.info["type"] == "image"
    assert sorted(os.listdir(tmp_path / "new")) == ["info"]


@pytest.mark.parametrize(("encoding", "dtype", "extra"), [
    ("compressed_segmentation", "uint32", []), ("jpeg", "uint8", ["--channels", "3"]), ("png", "uint16", []),
])
def test_create_other_encodings(tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str, dtype: str,
                                extra: list[str]) -> None:
    url = str(tmp_path / encoding)
    code, out, err = run(capsys, "create", url, "--dtype", dtype, "--size", "16", "16", "16", "--encoding", encoding,
                         *extra)
    assert code == 0, err
    ba = bc.open(url)
    assert ba.encoding == encoding and ba.dtype == np.dtype(dtype)
    assert ba.info["type"] == ("segmentation" if encoding == "compressed_segmentation" else "image")


def test_create_over_an_existing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "ds")
    assert run(capsys, "create", url, "--dtype", "uint8", "--size", "8", "8", "8")[0] == 0
    before = (tmp_path / "ds" / "info").read_bytes()
    code, out, err = run(capsys, "create", url, "--dtype", "uint16", "--size", "8", "8", "8")
    assert code == 1 and out == ""
    one_error_line(err, "already exists", "overwrite")
    assert (tmp_path / "ds" / "info").read_bytes() == before
    code, out, err = run(capsys, "create", url, "--dtype", "uint16", "--size", "8", "8", "8", "--overwrite")
    assert code == 0, err
    assert bc.open(url).dtype == np.uint16


@pytest.mark.parametrize(("args", "words"), [
    (["--dtype", "complex64", "--size", "8", "8", "8"], ["complex64"]),
    (["--dtype", "uint16", "--size", "8", "8", "8", "--encoding", "jpeg"], ["info.scales[0].encoding", "jpeg"]),
    (["--dtype", "uint8", "--size", "0", "8", "8"], ["size"]),
    (["--dtype", "uint8", "--size", "8", "8", "8", "--chunk-size", "8", "0", "8"], ["chunk_sizes"]),
    (["--dtype", "uint8", "--size", "8", "8", "8", "--compression", "gzip", "--compression-level", "12"],
     ["compression", "12"]),
    (["--dtype", "uint8", "--size", "8", "8", "8", "--channels", "0"], ["num_channels"]),
    (["--dtype", "uint8", "--size", "8", "8", "8", "--mips", "0"], ["num_mips"]),
])
def test_create_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                           words: list[str]) -> None:
    code, out, err = run(capsys, "create", str(tmp_path / "ds"), *args)
    assert code == 1
    one_error_line(err, *words)
    assert not (tmp_path / "ds" / "info").exists()


@pytest.mark.parametrize(("args", "words"), [
    (["--dtype", "uint8", "--size", "8", "8"], ["--size"]),
    (["--dtype", "uint8", "--size", "8", "8", "x"], ["--size", "'x'"]),
    (["--size", "8", "8", "8"], ["--dtype"]),
    (["--dtype", "uint8", "--size", "8", "8", "8", "--encoding", "webp"], ["--encoding", "webp"]),
    (["--dtype", "uint8", "--size", "8", "8", "8", "--compression", "lzma"], ["--compression", "lzma"]),
    (["--dtype", "uint8", "--size", "8", "8", "8", "--bogus"], ["--bogus"]),
])
def test_create_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                          words: list[str]) -> None:
    code, out, err = run(capsys, "create", str(tmp_path / "ds"), *args)
    assert code == 2
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("bigarrays") and "error:" in last  # unknown options are the top parser's
    for w in words:
        assert w in last
    assert not (tmp_path / "ds").exists()


# -- info --------------------------------------------------------------------------------------


def test_info_summary(filled: tuple[str, np.ndarray], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = filled
    code, out, err = run(capsys, "info", url)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0] == bc.open(url).url
    assert "uint16" in lines[1] and "2 channel(s)" in lines[1] and "2 scale(s)" in lines[1]
    assert "mip 0" in lines[2] and "'8_8_40'" in lines[2] and "[-16:32,-8:32,4:24]" in lines[2]
    assert "16x16x8" in lines[2] and "raw" in lines[2]
    assert "mip 1" in lines[3] and "'16_16_40'" in lines[3] and "[-8:16,-4:16,4:24]" in lines[3]


def test_info_json(filled: tuple[str, np.ndarray], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = filled
    code, out, err = run(capsys, "info", url, "--json")
    assert code == 0, err
    assert json.loads(out) == bc.open(url).info


def test_info_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "info", str(tmp_path / "nothing"))
    assert code == 1 and out == ""
    one_error_line(err, "no dataset", str(tmp_path / "nothing"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "info").write_text(json.dumps({"type": "image", "data_type": "uint8", "num_channels": 1, "scales": [
        {"key": "a", "size": [8, 8], "resolution": [1, 1, 1], "chunk_sizes": [[8, 8, 8]], "encoding": "raw"}]}))
    code, out, err = run(capsys, "info", str(bad))
    assert code == 1
    one_error_line(err, "info.scales[0].size")
    code, out, err = run(capsys, "info", "nosuchscheme://bucket/x")
    assert code == 1
    one_error_line(err, "nosuchscheme")


# -- cutout ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bbox", ["-16:16,-8:24,4:20", "-10:5,-3:2,6:7", "-16--10_0-8_4-12", "20:40,30:50,0:30"])
def test_cutout_saves_what_ba_reads(filled: tuple[str, np.ndarray], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str], bbox: str) -> None:
    url, _ = filled
    target = tmp_path / "cut.npy"
    code, out, err = run(capsys, "cutout", url, bbox, "-o", str(target))
    assert code == 0, err
    saved = np.load(target)
    expected = bc.open(url).read(Box.parse(bbox))
    assert saved.dtype == np.uint16
    assert saved.shape == Box.parse(bbox).shape + (2,)
    np.testing.assert_array_equal(saved, expected)
    assert str(Box.parse(bbox)) in out and str(target) in out


def test_cutout_values_and_mip(filled: tuple[str, np.ndarray], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    url, data = filled
    target = tmp_path / "cut.npy"
    assert run(capsys, "cutout", url, "-16:16,-8:24,4:20", "--output", str(target))[0] == 0
    np.testing.assert_array_equal(np.load(target), data)
    ba1 = bc.open(url, mip=1)
    ba1[-8:8, -4:12, 4:12] = 77
    assert run(capsys, "cutout", url, "-8:8,-4:12,4:12", "-o", str(target), "--mip", "1")[0] == 0
    assert (np.load(target) == 77).all()


def test_cutout_tiff(filled: tuple[str, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tifffile = pytest.importorskip("tifffile")
    url, data = filled
    target = tmp_path / "cut.tif"
    code, _, err = run(capsys, "cutout", url, "-16:16,-8:24,4:20", "-o", str(target))
    assert code == 0, err
    pages = tifffile.imread(str(target))
    np.testing.assert_array_equal(pages, data.transpose(2, 1, 0, 3))  # (z, y, x, c)


@pytest.mark.parametrize(("extra", "words"), [
    (["0:10,0:10", "-o", "{out}"], ["bad bbox", "'0:10,0:10'"]),
    (["a:b,0:1,0:1", "-o", "{out}"], ["bad bbox", "'a:b,0:1,0:1'"]),
    (["0:8,0:8,4:8", "-o", "{dir}/cut.txt"], ["cut.txt"]),
    (["-20:0,0:8,4:8", "-o", "{out}", "--bounded"], ["[-20:0,0:8,4:8]", "outside"]),
    (["16:32,24:32,4:12", "-o", "{out}", "--no-fill-missing"], ["16-32_24-32_4-12", "missing"]),
    (["0:8,0:8,4:8", "-o", "{out}", "--mip", "5"], ["mip 5"]),
    (["0:8,0:8,4:8", "-o", "{dir}/no/such/dir/cut.npy"], ["no/such/dir"]),
])
def test_cutout_errors(filled: tuple[str, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       extra: list[str], words: list[str]) -> None:
    url, _ = filled
    argv = [a.format(out=tmp_path / "cut.npy", dir=tmp_path) for a in extra]
    code, out, err = run(capsys, "cutout", url, *argv)
    assert code == 1, (out, err)
    one_error_line(err, *words)
    assert not (tmp_path / "cut.npy").exists()


def test_cutout_of_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "cutout", str(tmp_path / "none"), "0:1,0:1,0:1", "-o", str(tmp_path / "c.npy"))
    assert code == 1
    one_error_line(err, "no dataset", str(tmp_path / "none"))


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 2 and "Traceback" not in err
    assert "COMMAND" in err or "command" in err


# -- a real process ------------------------------------------------------------------------------


def bigarrays_exe() -> list[str]:
    exe = Path(sys.executable).with_name("bigarrays")
    assert exe.exists(), f"the console script {exe} is not installed"
    return [str(exe)]


def test_console_script(filled: tuple[str, np.ndarray], tmp_path: Path) -> None:
    url, data = filled
    env: dict[str, Any] = dict(os.environ)
    target = tmp_path / "proc.npy"
    done = subprocess.run(bigarrays_exe() + ["cutout", url, "-16:16,-8:24,4:20", "-o", str(target)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(target), data)
    done = subprocess.run(bigarrays_exe() + ["info", url, "--json"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0 and json.loads(done.stdout) == bc.open(url).info
    done = subprocess.run(bigarrays_exe() + ["cutout", url, "0:10,0:10", "-o", str(tmp_path / "x.npy")],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 1
    one_error_line(done.stderr, "bad bbox")
    assert done.stdout == ""
