"""Neuroglancer (the PyPI wheel's client) in headless Chromium renders datasets served by bigarrays.

The page loads ``precomputed://http://127.0.0.1:PORT/precomputed/{ds}`` from a real
``bigarrays serve`` process: once stored raw, once zstd-compressed (passed through with
``Content-Encoding: zstd`` to the browser, which accepts it),
once sharded as TensorStore writes it (Neuroglancer reads the shard files with byte ranges).
The dataset is an x-gradient with y-stripes; the screenshot must show it, not a blank
canvas. Skipped only when Chromium is absent and ``CI`` is not set.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))
from server_live import LiveServer, tensorstore_sharded  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium); CI always runs this test",
                allow_module_level=True)
neuroglancer = pytest.importorskip("neuroglancer") if not os.environ.get("CI") else __import__("neuroglancer")

SIZE = (256, 256, 32)


def pattern() -> np.ndarray:
    x = np.arange(SIZE[0])[:, None, None]
    y = np.arange(SIZE[1])[None, :, None]
    vol = (40 + x * 200 // 255) * np.ones(SIZE, dtype=np.int64)
    vol = np.where((y // 32) % 2 == 1, vol // 2, vol)  # darker stripes every 32 rows
    return vol.astype(np.uint8)[..., None]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("ng")
    urls = {}
    for name, compression in (("plain", None), ("zstd", "zstd")):
        url = f"file://{root / name}"
        ba = bc.create(url, dtype="uint8", size=SIZE, chunk_size=(64, 64, 32), resolution=(8, 8, 8),
                       compression=compression, layer_type="image")
        ba[:, :, :] = pattern()
        urls[name] = url
    tensorstore_sharded(str(root / "sharded"), pattern(), chunk_size=(64, 64, 32))
    urls["sharded"] = f"file://{root / 'sharded'}"
    server = LiveServer(urls, str(root / "server.log"))
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def viewer() -> Iterator[object]:
    neuroglancer.set_server_bind_address("127.0.0.1", bind_port=0)
    v = neuroglancer.Viewer()
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"bigarrays-ng-{os.getpid()}"
    chrome = subprocess.Popen(
        [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=800,600", v.get_viewer_url()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield v
    finally:
        os.killpg(chrome.pid, signal.SIGTERM)
        chrome.wait(timeout=15)
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(viewer, source: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    from PIL import Image

    with viewer.txn() as s:
        s.dimensions = neuroglancer.CoordinateSpace(names=["x", "y", "z"], units="nm", scales=[8, 8, 8])
        s.layers.clear()
        s.layers["ds"] = neuroglancer.ImageLayer(source=source)
        s.layout = "xy"
        s.position = [128, 128, 16]
        s.cross_section_scale = 0.25  # zoomed in: the volume covers the whole panel
        s.show_axis_lines = False
        s.show_scale_bar = False
    png = viewer.screenshot(size=[640, 480]).screenshot.image
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)


@pytest.mark.parametrize("name", ["plain", "zstd", "sharded"])
def test_neuroglancer_renders_the_served_dataset(served: str, viewer: object, name: str) -> None:
    img = screenshot(viewer, f"precomputed://{served}/precomputed/{name}")
    assert img.std() > 15, f"blank screenshot (std {img.std():.1f})"
    assert len(np.unique(img.astype(np.uint8))) > 20
    # Brightness grows left to right across the panel, as the data's x gradient does.
    cols = img.mean(axis=0)
    corr = np.corrcoef(np.arange(cols.size), cols)[0, 1]
    assert corr > 0.9, f"column brightness does not follow the x gradient (r={corr:.2f})"
    # The stripes: rows alternate between two brightness levels.
    rows = img.mean(axis=1)
    assert rows.max() - rows.min() > 20
