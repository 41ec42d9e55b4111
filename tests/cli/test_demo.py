"""``bigarrays demo``: the synthetic data, the build/reuse/rebuild cycle, and the served lines working."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bigarrays_cli.demo import MARKER, DemoSpec, build_demo, default_demo_dir

import bigarrays_core as bc
from bigarrays_core.demo_data import make_demo_volume
from bigarrays_core.downsampling import downsample_block
from tests.cli.conftest import BIGARRAYS, run_bigarrays
from tests.services import free_port, stop_process, wait_for_http

SMALL = DemoSpec(size=(96, 80, 24), chunk_size=(32, 32, 16))


def test_demo_volume_looks_like_em() -> None:
    vol = make_demo_volume((96, 96, 32), seed=1)
    img, seg = vol.image, vol.segmentation
    assert img.dtype == np.uint8 and seg.dtype == np.uint64 and img.shape == seg.shape == (96, 96, 32)
    membrane = seg == 0
    assert 0.03 < membrane.mean() < 0.35
    assert img[membrane].mean() < img[~membrane].mean() - 40  # dark membranes on bright cytoplasm
    cells = np.unique(seg[~membrane])
    assert 10 < cells.size < 500 and cells.min() > 2**40  # many cells, ids that need 64 bits
    # Neighbouring voxels mostly agree: the texture is smooth, not noise.
    assert np.mean(seg[1:] == seg[:-1]) > 0.85
    np.testing.assert_array_equal(make_demo_volume((96, 96, 32), seed=1).image, img)  # deterministic
    assert not np.array_equal(make_demo_volume((96, 96, 32), seed=2).image, img)


def test_demo_volume_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        make_demo_volume((0, 4, 4))


def test_build_reuse_and_rebuild_after_interruption(tmp_path: Path) -> None:
    urls, built = build_demo(tmp_path, SMALL, log=False)
    assert built and set(urls) == {"em", "seg"}
    em, seg = bc.open(urls["em"]), bc.open(urls["seg"])
    assert em.num_mips == seg.num_mips == 3 and seg.encoding == "compressed_segmentation"
    assert em.compression["id"] == "gzip" and em.resolution == (8, 8, 40)
    for k in range(3):
        assert em.at_mip(k).missing_chunks() == [] and seg.at_mip(k).missing_chunks() == []
    img = em[:, :, :, 0]
    m1 = em.at_mip(1)[:, :, :, 0]
    np.testing.assert_array_equal(m1, np.rint(img.reshape(48, 2, 40, 2, 24).mean(axis=(1, 3))).astype(np.uint8))
    mode1, box1 = downsample_block(seg[:, :, :], seg.bounds, (2, 2, 1), "mode")  # checked against numpy elsewhere
    np.testing.assert_array_equal(seg.at_mip(2)[:, :, :], downsample_block(mode1, box1, (2, 2, 1), "mode")[0])
    chunk = tmp_path / "em" / "8_8_40" / "0-32_0-32_0-16.gz"
    stamp = chunk.stat().st_mtime_ns

    assert build_demo(tmp_path, SMALL, log=False) == (urls, False)  # reused
    assert chunk.stat().st_mtime_ns == stamp

    (tmp_path / MARKER).unlink()  # as if the build had been interrupted before finishing
    (tmp_path / "seg" / "8_8_40" / "0-32_0-32_0-16").unlink()
    assert build_demo(tmp_path, SMALL, log=False) == (urls, True)
    assert bc.open(urls["seg"]).missing_chunks() == []
    np.testing.assert_array_equal(bc.open(urls["em"])[:, :, :, 0], img)  # same seed, same data

    assert build_demo(tmp_path, DemoSpec(size=(64, 64, 16), chunk_size=(32, 32, 16)), log=False)[1]  # new spec


def test_default_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BIGARRAYS_DEMO_DIR", str(tmp_path / "d"))
    assert default_demo_dir() == tmp_path / "d"
    monkeypatch.delenv("BIGARRAYS_DEMO_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_demo_dir() == tmp_path / "cache" / "bigarrays" / "demo"


def test_demo_refuses_a_busy_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_bigarrays(["demo", "--dir", str(tmp_path), "--port", str(port)])
    assert r.code == 1 and str(port) in r.err and "--port" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "em").exists()  # checked before building anything


def _printed(out: str, prefix: str) -> str:
    lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith(prefix)]
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``bigarrays demo`` in a subprocess on a free port: (its stdout so far, base URL, demo dir)."""
    root = tmp_path_factory.mktemp("demo")
    port = free_port()
    log = open(root / "demo.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([BIGARRAYS, "demo", "--port", str(port), "--dir", str(root / "data")],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=90, proc=proc)
        yield (root / "demo.log").read_text(), f"http://127.0.0.1:{port}", root
    finally:
        stop_process(proc, signal.SIGINT, timeout=15)
        log.close()


def test_demo_curl_line_returns_the_library_bytes(demo_server) -> None:  # type: ignore[no-untyped-def]
    out, base, root = demo_server
    line = _printed(out, "curl ")
    assert base in line
    subprocess.run(line, shell=True, check=True, cwd=root, timeout=60)
    expected = bc.open(str(root / "data" / "em"))[0:64, 0:64, 0:64]
    assert (root / "em.raw").read_bytes() == expected.tobytes(order="F")
    assert expected.std() > 10  # real content, not zeros


def test_demo_python_line_runs(demo_server) -> None:  # type: ignore[no-untyped-def]
    out, base, root = demo_server
    line = _printed(out, "python -c ")
    argv = shlex.split(line)
    argv[0] = sys.executable
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=root)
    assert r.returncode == 0, r.stderr
    expected = bc.open(str(root / "data" / "em"))[0:64, 0:64, 0:64].mean()
    assert float(r.stdout) == pytest.approx(expected)


def test_demo_neuroglancer_url_points_at_served_layers(demo_server) -> None:  # type: ignore[no-untyped-def]
    import urllib.request

    out, base, _ = demo_server
    line = _printed(out, "https://neuroglancer")
    state = json.loads(urllib.parse.unquote(line.partition("#!")[2]))
    sources = {layer["name"]: (layer["type"], layer["source"]) for layer in state["layers"]}
    assert sources == {"em": ("image", f"precomputed://{base}/precomputed/em"),
                       "seg": ("segmentation", f"precomputed://{base}/precomputed/seg")}
    for _, src in sources.values():
        with urllib.request.urlopen(src.removeprefix("precomputed://") + "/info", timeout=10) as r:
            assert json.load(r)["@type"] == "neuroglancer_multiscale_volume"
    assert state["dimensions"]["z"] == [4e-08, "m"]


def test_demo_rerun_reuses_the_dataset(demo_server) -> None:  # type: ignore[no-untyped-def]
    out, _, root = demo_server
    assert "built demo datasets" in out
    r = run_bigarrays(["demo", "--dir", str(root / "data"), "--no-serve"])
    assert r.code == 0 and "reusing demo datasets" in r.out
