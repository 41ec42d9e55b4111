"""``bigarrays downsample`` and ``bigarrays transfer`` end to end, in a real subprocess: options,
errors on one line, resuming after a failure, and a local Dask cluster (``--workers``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import bigarrays_core as bc
from tests.cli.conftest import run_bigarrays
from tests.core.datasets import make, random_values

from .reference import pyramid_reference


def _image(tmp_path: Path, name: str = "img", **kwargs: object) -> tuple[bc.BigArray, np.ndarray]:
    data = random_values(np.random.default_rng(2), (96, 80, 16, 1), "uint8")
    ba = make(str(tmp_path / name), size=(96, 80, 16), chunk_size=(16, 16, 8), **kwargs)
    ba[:, :, :] = data
    return ba, data


def test_downsample_builds_added_scales_and_resumes_after_a_failure(tmp_path: Path) -> None:
    ba, data = _image(tmp_path)
    obstacle = tmp_path / "img" / "4_4_1" / "0-16_0-16_0-8"  # a directory where a mip-2 chunk goes
    obstacle.mkdir(parents=True)
    args = ["downsample", str(tmp_path / "img"), "--mips", "2", "--method", "max", "--quiet"]
    r = run_bigarrays(args + ["--factor", "2", "2", "1"])
    assert r.code == 1 and "0-16_0-16_0-8" in r.err and "Traceback" not in r.err
    assert bc.open(ba.url).num_mips == 3  # the scales were added before the failure
    obstacle.rmdir()
    r = run_bigarrays(args)
    assert r.code == 0, r.err
    assert "mips 1..2 (max)" in r.out and "done by an earlier run" in r.out
    want = pyramid_reference(data, ba.bounds, [(2, 2, 1)] * 2, "max")
    for k in (1, 2):
        np.testing.assert_array_equal(bc.open(ba.url, mip=k)[:, :, :], want[k - 1])
    r = run_bigarrays(args)  # finished builds are not remembered: the whole pyramid again
    assert r.code == 0 and "0 done by an earlier run" in r.out


def test_downsample_a_region_on_local_dask_workers(tmp_path: Path) -> None:
    ba, data = _image(tmp_path, num_mips=2)
    r = run_bigarrays(["downsample", ba.url, "--workers", "2"])
    assert r.code == 0, r.err
    assert "on 2 local Dask workers" in r.err and "18/18" in r.err  # tqdm's bar, 18 mip-1 chunks
    ba[0:16, 0:16, 0:8] = 0
    r = run_bigarrays(["downsample", ba.url, "--bbox", "0:16,0:16,0:8", "--quiet"])
    assert r.code == 0 and "1 chunk(s) written" in r.out
    data[0:16, 0:16, 0:8] = 0
    want = pyramid_reference(data, ba.bounds, [(2, 2, 1)], "average")[0]
    np.testing.assert_array_equal(bc.open(ba.url, mip=1)[:, :, :], want)


def test_downsample_errors_are_one_line(tmp_path: Path) -> None:
    ba, _ = _image(tmp_path, num_mips=2)
    for args, words in ((["--method", "mode", "--ignore-zero", "--factor", "2", "2", "2"], "coarser"),
                        (["--bbox", "500:600,0:1,0:1"], "outside the volume"),
                        (["--ignore-zero"], "ignore_zero goes with method 'mode'"),
                        (["--scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler")):
        r = run_bigarrays(["downsample", ba.url, "--quiet", *args])
        assert r.code == 1 and words in r.err and "Traceback" not in r.err, (args, r.err)


def test_transfer_rechunks_recompresses_verifies_and_resumes(tmp_path: Path) -> None:
    ba, data = _image(tmp_path, num_mips=2)
    bc.downsample(ba)
    dst = tmp_path / "copy"
    obstacle = dst / "2_2_1" / "32-48_0-32_0-16.gz"  # a directory where a mip-1 chunk goes
    obstacle.mkdir(parents=True)
    args = ["transfer", ba.url, str(dst), "--chunk-size", "32", "32", "16", "--compression", "gzip",
            "--compression-level", "6", "--verify", "--quiet"]
    r = run_bigarrays(args)
    assert r.code == 1 and "32-48_0-32_0-16" in r.err and "Traceback" not in r.err
    obstacle.rmdir()
    r = run_bigarrays(args)
    assert r.code == 0, r.err
    assert "(verified)" in r.out and "9 done by an earlier run" in r.out  # mip 0: 3 x 3 x 1 chunks
    out = bc.open(str(dst))
    assert out.compression == {"id": "gzip", "level": 6} and out.chunk_size == (32, 32, 16)
    np.testing.assert_array_equal(out[:, :, :], data)
    np.testing.assert_array_equal(bc.open(str(dst), mip=1)[:, :, :], ba.at_mip(1)[:, :, :])
    r = run_bigarrays(["transfer", ba.url, str(dst), "--quiet"])
    assert r.code == 0 and "0 chunk(s) written" in r.out


def test_transfer_a_crop_of_one_scale_on_workers(tmp_path: Path) -> None:
    ba, data = _image(tmp_path, num_mips=2)
    bc.downsample(ba)
    r = run_bigarrays(["transfer", ba.url, str(tmp_path / "crop"), "--mip", "1", "--bbox", "5:40,0:30,0:16",
                       "--bounds", "0:48,0:40,0:16", "--encoding", "raw", "--compression", "none", "--workers", "2",
                       "--quiet"])
    assert r.code == 0, r.err
    crop = bc.open(str(tmp_path / "crop"))
    assert crop.num_mips == 1 and crop.resolution == (2, 2, 1) and crop.bounds == bc.Box((0, 0, 0), (48, 40, 16))
    want = np.zeros((48, 40, 16, 1), np.uint8)
    want[5:40, 0:30] = ba.at_mip(1)[5:40, 0:30, 0:16]
    np.testing.assert_array_equal(crop[:, :, :], want)
    r = run_bigarrays(["transfer", ba.url, str(tmp_path / "crop"), "--mip", "1", "--chunk-size", "8", "8", "8",
                       "--quiet"])
    assert r.code == 1 and "chunk size" in r.err and "Traceback" not in r.err
