"""Neuroglancer (the PyPI wheel's client) in headless Chromium renders datasets served by bigarrays.

The page loads ``precomputed://http://127.0.0.1:PORT/precomputed/{ds}`` from a real
``bigarrays serve`` process: once stored raw, once zstd-compressed (passed through with
``Content-Encoding: zstd`` to the browser, which accepts it),
once sharded as TensorStore writes it (Neuroglancer reads the shard files with byte ranges),
once in JPEG XL (passed through: Neuroglancer decodes it). The dataset is an x-gradient with
y-stripes; the screenshot must show it, not a blank canvas. A crackle segmentation (which
Neuroglancer cannot decode; the server transcodes it to compressed_segmentation) must show
its 16 labelled blocks in 16 colours. Skipped only when Chromium is absent and ``CI`` is not set.
"""

from __future__ import annotations

import concurrent.futures
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
#: The longest a screenshot may take (it takes a few seconds).
SCREENSHOT_WAIT = 120


def pattern() -> np.ndarray:
    x = np.arange(SIZE[0])[:, None, None]
    y = np.arange(SIZE[1])[None, :, None]
    vol = (40 + x * 200 // 255) * np.ones(SIZE, dtype=np.int64)
    vol = np.where((y // 32) % 2 == 1, vol // 2, vol)  # darker stripes every 32 rows
    return vol.astype(np.uint8)[..., None]


def labels() -> np.ndarray:
    """4 x 4 blocks of 64 x 64 voxels, each its own label (large, to test 64-bit ids)."""
    x = np.arange(SIZE[0])[:, None, None] // 64
    y = np.arange(SIZE[1])[None, :, None] // 64
    ids = np.broadcast_to(1 + x + 4 * y, SIZE).astype(np.uint64)
    return (ids * np.uint64(2**33 + 1))[..., None]


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
    url = f"file://{root / 'jxl'}"
    ba = bc.create(url, dtype="uint8", size=SIZE, chunk_size=(64, 64, 32), resolution=(8, 8, 8), encoding="jxl",
                   layer_type="image")
    ba[:, :, :] = pattern()
    urls["jxl"] = url
    url = f"file://{root / 'crackle'}"
    ba = bc.create(url, dtype="uint64", size=SIZE, chunk_size=(64, 64, 32), resolution=(8, 8, 8),
                   encoding="crackle", layer_type="segmentation")
    ba[:, :, :] = labels()
    urls["crackle"] = url
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


def screenshot(viewer, source: str, mode: str = "L", layer: type | None = None,  # type: ignore[no-untyped-def]
               scale: float = 0.25) -> np.ndarray:
    from PIL import Image

    with viewer.txn() as s:
        s.dimensions = neuroglancer.CoordinateSpace(names=["x", "y", "z"], units="nm", scales=[8, 8, 8])
        s.layers.clear()
        s.layers["ds"] = (layer or neuroglancer.ImageLayer)(source=source)
        s.layout = "xy"
        s.position = [128, 128, 16]
        s.cross_section_scale = scale  # 0.25, zoomed in: the volume covers the whole panel
        s.show_axis_lines = False
        s.show_scale_bar = False
    # Neuroglancer answers a screenshot request once every chunk in view has loaded; a layer
    # it cannot load would leave the request unanswered, so it is bounded (a hang guard).
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        png = pool.submit(viewer.screenshot, size=[640, 480]).result(timeout=SCREENSHOT_WAIT).screenshot.image
    except concurrent.futures.TimeoutError:
        pytest.fail(f"Neuroglancer did not finish drawing {source} within {SCREENSHOT_WAIT} s (a layer it cannot load)")
    finally:
        pool.shutdown(wait=False)
    return np.asarray(Image.open(io.BytesIO(png)).convert(mode), dtype=np.float64)


@pytest.mark.parametrize("name", ["plain", "zstd", "sharded", "jxl"])
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


def test_neuroglancer_renders_a_served_crackle_segmentation(served: str, viewer: object) -> None:
    img = screenshot(viewer, f"precomputed://{served}/precomputed/crackle", "RGB", neuroglancer.SegmentationLayer,
                     scale=0.6)
    # The panel shows the whole slice: 16 blocks, each a flat colour of its own.
    assert img.std() > 15, f"blank screenshot (std {img.std():.1f})"
    pixels = img.reshape(-1, 3).astype(np.uint8)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    big = colours[counts > 0.01 * len(pixels)]
    assert len(big) >= 15, f"{len(big)} colours cover more than 1% of the panel each, expected one per block"
