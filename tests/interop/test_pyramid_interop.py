"""Pyramids across tools: TensorStore and CloudVolume read the mips bigarrays builds, and
bigarrays' mips of a TensorStore-written volume equal TensorStore's own ``ts.downsample``.

The methods both have (``mean``/``average``, ``mode``, ``min``, ``max``, ``stride``) agree
voxel for voxel, rounding included: both round integer means to the nearest, halves to even,
and both give mode ties to the smallest value. Offsets are not multiples of the factors,
sizes are odd, so partial blocks at both edges are compared too. One difference, in
``stride`` only: TensorStore's coarse voxel ``i`` is fine voxel ``f*i``, so where the fine
voxel offset is not a multiple of ``f`` its domain starts one coarse voxel later (that
partial block has no voxel ``f*i``); bigarrays keeps that voxel (the block's first voxel it
has), as its mips have the bounds ``create`` declares. Everywhere else they are equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts

import bigarrays_core as bc
from tests.pyramid.reference import segmentation

from .peers import cv_read, ts_open, ts_read

pytestmark = pytest.mark.interop

OFFSET = (-13, 7, 3)
SIZE = (75, 61, 10)


def _image(rng: np.random.Generator) -> np.ndarray:
    # Few distinct values with plenty of ties, so half-way means and mode ties really happen.
    return np.asfortranarray(rng.integers(0, 6, size=SIZE + (1,)).astype(np.uint8) * 50)


@pytest.mark.parametrize(("kind", "factor"), [("image", (2, 2, 1)), ("segmentation", (2, 2, 1)),
                                              ("image", (2, 2, 2))])
def test_tensorstore_and_cloudvolume_read_the_mips_bigarrays_builds(tmp_path: Path, rng: np.random.Generator,
                                                                    kind: str, factor: tuple[int, int, int]) -> None:
    path = tmp_path / "ds"
    if kind == "image":
        ba = bc.create(str(path), dtype="uint8", size=SIZE, voxel_offset=OFFSET, chunk_size=(16, 16, 4))
        ba[:, :, :] = _image(rng)
    else:
        ba = bc.create(str(path), dtype="uint64", size=SIZE, voxel_offset=OFFSET, chunk_size=(16, 16, 4),
                       encoding="compressed_segmentation")
        ba[:, :, :] = segmentation(rng, SIZE, cells=10)
    bc.downsample(ba, mips=3, factor=factor)
    for k in range(4):
        ours = bc.open(str(path), mip=k)
        np.testing.assert_array_equal(ts_read(path, k), ours[:, :, :])
        np.testing.assert_array_equal(cv_read(path, k), ours[:, :, :])
        assert ts_open(path, k).domain.inclusive_min[:3] == ours.voxel_offset


def _ts_volume(path: Path, dtype: str, encoding: str, data: np.ndarray) -> None:
    scale: dict[str, object] = {"size": list(SIZE), "voxel_offset": list(OFFSET), "chunk_size": [16, 16, 4],
                                "resolution": [4, 4, 40], "encoding": encoding}
    if encoding == "compressed_segmentation":
        scale["compressed_segmentation_block_size"] = [8, 8, 4]
    store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/", "create": True,
                     "multiscale_metadata": {"type": "image" if dtype == "uint8" else "segmentation",
                                             "data_type": dtype, "num_channels": 1},
                     "scale_metadata": scale}).result()
    store.write(data).result()


@pytest.mark.parametrize(("method", "ts_method"), [("average", "mean"), ("mode", "mode"), ("min", "min"),
                                                   ("max", "max"), ("stride", "stride")])
@pytest.mark.parametrize("kind", ["image", "segmentation"])
def test_bigarrays_mips_of_a_tensorstore_volume_equal_ts_downsample(tmp_path: Path, rng: np.random.Generator,
                                                                    method: str, ts_method: str, kind: str) -> None:
    path = tmp_path / "ts"
    if kind == "image":
        data = _image(rng)
        _ts_volume(path, "uint8", "raw", data)
    else:
        data = segmentation(rng, SIZE, cells=10)[..., None]
        _ts_volume(path, "uint64", "compressed_segmentation", data)
    bc.downsample(bc.open(str(path)), mips=2, factor=(2, 2, 1), method=method)
    view = ts_open(path, 0)
    for k in (1, 2):
        view = ts.downsample(view, [2, 2, 1, 1], ts_method)  # each level from the one below, as a pyramid is built
        theirs = np.asarray(view.read(order="F").result())
        ours = bc.open(str(path), mip=k)
        lo, hi = tuple(view.domain.inclusive_min[:3]), tuple(view.domain.exclusive_max[:3])
        if method == "stride":  # see the module docstring: TensorStore drops partial low-edge blocks
            assert lo == tuple(o + (b % 2 if a < 2 else 0) for a, (o, b) in
                               enumerate(zip(ours.voxel_offset, bc.open(str(path), mip=k - 1).voxel_offset)))
        else:
            assert lo == ours.voxel_offset
        assert hi == ours.bounds.stop
        np.testing.assert_array_equal(ours.read(bc.Box(lo, hi)), theirs, err_msg=f"{method} mip {k}")
