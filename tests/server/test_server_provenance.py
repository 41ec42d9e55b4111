"""Whether stored bytes are compressed is decided by where they came from (issue: a ``.gz``
chunk read as raw voxels).

A CloudVolume-style ``key.gz`` file whose gzip stream happens to be exactly as long as the
raw chunk used to be taken as raw bytes; and a plain raw chunk whose first voxels happen to
be gzip's magic bytes used to be served to Neuroglancer as ``Content-Encoding: gzip``.
Both through the library, the REST cutout and the ``/precomputed`` tree.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from bigarrays_server import Settings, create_app
from server_live import InProcess

import bigarrays_core as bc

SHAPE = (64, 64, 16)
RAW_SIZE = 64 * 64 * 16


def _gzip_of_raw_size() -> tuple[np.ndarray, bytes]:
    """A uint8 chunk whose ``gzip -9`` stream is exactly as long as the raw chunk."""
    noise = np.random.default_rng(0).integers(0, 256, RAW_SIZE, dtype=np.uint8).tobytes()
    for k in range(RAW_SIZE - 1000, RAW_SIZE):
        raw = noise[:k] + bytes(RAW_SIZE - k)
        stream = gzip.compress(raw, 9, mtime=0)
        if len(stream) == RAW_SIZE:
            return np.frombuffer(raw, np.uint8).reshape(SHAPE, order="F"), stream
    raise AssertionError("no noise length gives a gzip stream of the raw size")


def _dataset(root: Path) -> Path:
    root.mkdir()
    info = {"type": "image", "data_type": "uint8", "num_channels": 1,
            "scales": [{"key": "s0", "size": list(SHAPE), "voxel_offset": [0, 0, 0], "resolution": [1, 1, 1],
                        "chunk_sizes": [list(SHAPE)], "encoding": "raw"}]}
    (root / "info").write_text(json.dumps(info))
    (root / "s0").mkdir()
    return root


@pytest.fixture
def gz_dataset(tmp_path: Path) -> tuple[Path, np.ndarray]:
    chunk, stream = _gzip_of_raw_size()
    root = _dataset(tmp_path / "gz")
    (root / "s0" / "0-64_0-64_0-16.gz").write_bytes(stream)
    return root, chunk


@pytest.fixture
def magic_dataset(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A plain raw chunk whose first voxels are 31, 139, 8 (gzip's magic bytes)."""
    chunk = np.random.default_rng(1).integers(0, 256, SHAPE, dtype=np.uint8)
    chunk[0:3, 0, 0] = (0x1F, 0x8B, 0x08)
    root = _dataset(tmp_path / "magic")
    (root / "s0" / "0-64_0-64_0-16").write_bytes(chunk.tobytes(order="F"))
    return root, chunk


@pytest.mark.parametrize("cache_mb", [0, 64])
def test_a_gz_chunk_of_the_raw_size_is_gunzipped_everywhere(gz_dataset: tuple[Path, np.ndarray],
                                                             cache_mb: int) -> None:
    root, chunk = gz_dataset
    ba = bc.open(str(root))
    assert (ba[0:64, 0:64, 0:16][..., 0] == chunk).all()
    assert (ba[3:40, 1:64, 2:9][..., 0] == chunk[3:40, 1:64, 2:9]).all()
    api = InProcess(create_app(Settings(datasets={"gz": str(root)}, cache_mb=cache_mb)))
    try:
        cut = api.get("/v1/gz/cutout/0/0:64,0:64,0:16")
        assert cut.status_code == 200 and cut.content == chunk.tobytes(order="F")
        one = api.get("/v1/gz/chunks/0/0-64_0-64_0-16")
        assert one.status_code == 200 and one.content == chunk.tobytes(order="F")
        plain = api.get("/precomputed/gz/s0/0-64_0-64_0-16", headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and plain.content == chunk.tobytes(order="F")
        zipped = api.get("/precomputed/gz/s0/0-64_0-64_0-16", headers={"Accept-Encoding": "gzip"})
        assert zipped.status_code == 200 and zipped.content == chunk.tobytes(order="F")  # httpx decodes
    finally:
        api.close()


def test_a_raw_chunk_starting_with_gzip_magic_is_raw_everywhere(magic_dataset: tuple[Path, np.ndarray]) -> None:
    root, chunk = magic_dataset
    assert (bc.open(str(root))[0:64, 0:64, 0:16][..., 0] == chunk).all()
    api = InProcess(create_app(Settings(datasets={"m": str(root)}, cache_mb=64)))
    try:
        assert api.get("/v1/m/cutout/0/0:64,0:64,0:16").content == chunk.tobytes(order="F")
        for accept in ("gzip", "identity"):
            got = api.get("/precomputed/m/s0/0-64_0-64_0-16", headers={"Accept-Encoding": accept})
            assert got.status_code == 200 and got.content == chunk.tobytes(order="F"), accept
    finally:
        api.close()


def test_unaligned_write_into_a_gz_chunk_of_the_raw_size_keeps_its_voxels(
        gz_dataset: tuple[Path, np.ndarray]) -> None:
    root, chunk = gz_dataset
    ba = bc.open(str(root), non_aligned_writes=True)
    ba[0:2, 0:2, 0:2] = 7
    expected = chunk.copy()
    expected[0:2, 0:2, 0:2] = 7
    assert (ba[0:64, 0:64, 0:16][..., 0] == expected).all()
