"""Pyramids and transfers of sharded scales: the same voxels as unsharded ones, shards written
whole, added scales sharded the way ``bc.create(sharding=...)`` shards them, and TensorStore
reads what bigarrays builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts

import bigarrays_core as bc
from bigarrays_core.format.sharding import choose_sharding
from tests.cli.conftest import run_bigarrays
from tests.core.datasets import random_values

from .reference import pyramid_reference, segmentation

EXPLICIT = {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 1, "hash": "identity", "minishard_bits": 1,
            "shard_bits": 3, "minishard_index_encoding": "raw", "data_encoding": "gzip"}


@pytest.mark.parametrize("sharding", [True, EXPLICIT], ids=["chosen", "explicit"])
@pytest.mark.parametrize("kind", ["image", "segmentation"])
def test_a_sharded_pyramid_has_the_voxels_of_an_unsharded_one(tmp_path: Path, sharding: object, kind: str) -> None:
    rng = np.random.default_rng(5)
    if kind == "image":
        data, dtype, encoding = random_values(rng, (100, 90, 20, 1), "uint8"), "uint8", "raw"
    else:
        data = segmentation(rng, (100, 90, 20), cells=12)[..., None]
        dtype, encoding = "uint64", "compressed_segmentation"
    ba = bc.create(str(tmp_path / "ds"), dtype=dtype, size=(100, 90, 20), chunk_size=(16, 16, 8),
                   voxel_offset=(-16, 8, 0), encoding=encoding, sharding=sharding)
    ba[:, :, :] = data
    bc.downsample(ba, mips=2, max_task_bytes=1 << 20)
    want = pyramid_reference(data, ba.bounds, [(2, 2, 1)] * 2, "average" if kind == "image" else "mode")
    for k in (1, 2):
        level = bc.open(ba.url, mip=k)
        np.testing.assert_array_equal(level[:, :, :], want[k - 1])
        expected = choose_sharding(level.scale.size, level.chunk_size, dtype, 1, encoding).to_json() \
            if sharding is True else EXPLICIT
        assert level.info["scales"][k]["sharding"] == expected
        store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"file://{tmp_path / 'ds'}/",
                         "scale_index": k}).result()
        np.testing.assert_array_equal(np.asarray(store.read(order="F").result()), want[k - 1])
        assert not [f for f in (tmp_path / "ds" / level.key).iterdir() if not f.name.endswith(".shard")]


def test_transfers_shard_and_unshard(tmp_path: Path) -> None:
    data = random_values(np.random.default_rng(6), (80, 70, 16, 1), "uint16")
    src = bc.create(str(tmp_path / "src"), dtype="uint16", size=(80, 70, 16), chunk_size=(16, 16, 8), num_mips=2,
                    compression="zstd")
    src[:, :, :] = data
    bc.downsample(src)
    bc.transfer(src, str(tmp_path / "sharded"), sharding=True, chunk_size=(32, 32, 8), verify=True)
    sharded = bc.open(str(tmp_path / "sharded"))
    assert sharded.sharding is not None and sharded.compression is None
    assert sharded.info["scales"][1]["sharding"] == choose_sharding((40, 35, 16), (32, 32, 8), "uint16", 1,
                                                                    "raw").to_json()
    bc.transfer(sharded, str(tmp_path / "plain"), sharding=False, compression="gzip", verify=True)
    plain = bc.open(str(tmp_path / "plain"))
    assert plain.sharding is None and plain.compression["id"] == "gzip"
    for k in (0, 1):
        np.testing.assert_array_equal(plain.at_mip(k)[:, :, :], src.at_mip(k)[:, :, :])
    with pytest.raises(bc.InfoError, match="compression"):
        bc.transfer(src, str(tmp_path / "bad"), sharding=True, compression="gzip")
    with pytest.raises(bc.InfoError, match="sharding"):
        bc.transfer(src, str(tmp_path / "plain"), sharding=True)  # exists, unsharded


def test_the_transfer_command_shards(tmp_path: Path) -> None:
    src = bc.create(str(tmp_path / "src"), dtype="uint8", size=(64, 64, 16), chunk_size=(16, 16, 8))
    src[:, :, :] = random_values(np.random.default_rng(7), (64, 64, 16, 1), "uint8")
    r = run_bigarrays(["transfer", src.url, str(tmp_path / "dst"), "--sharded", "--verify", "--quiet"])
    assert r.code == 0 and "(verified)" in r.out, r.err
    dst = bc.open(str(tmp_path / "dst"))
    assert dst.sharding is not None
    np.testing.assert_array_equal(dst[:, :, :], src[:, :, :])
