"""Sharded scales exchanged with TensorStore and CloudVolume on local directories, voxel-exact.

TensorStore writes sharded volumes (raw uint8 with gzip chunk data, uint64
compressed_segmentation with murmurhash and gzip minishard indexes, identity hashes,
non-zero ``preshift_bits``, grids that are not powers of two, several channels, png) and
bigarrays reads every voxel as TensorStore reads it; bigarrays writes sharded volumes
(its chosen spec and explicit ones) and TensorStore and CloudVolume read them as bigarrays
does. CloudVolume-written whole shards are read too. The S3 and GCS directions are in
``tests/cloud/test_sharded_cloud.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorstore as ts

import bigarrays_core as bc

from .cases import Codec, sample
from .peers import box_of, cv_open, ts_read

pytestmark = pytest.mark.interop


def sharding(preshift: int, hash: str, minishard: int, shard: int, index: str, data: str) -> dict[str, Any]:
    return {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": preshift, "hash": hash,
            "minishard_bits": minishard, "shard_bits": shard, "minishard_index_encoding": index,
            "data_encoding": data}


@dataclass(frozen=True)
class Case:
    name: str
    codec: Codec
    spec: dict[str, Any]
    size: tuple[int, int, int] = (70, 45, 11)
    chunk: tuple[int, int, int] = (16, 16, 4)
    offset: tuple[int, int, int] = (-37, 5, -4)

    def __str__(self) -> str:
        return self.name


CASES = [
    # Grid 5 x 3 x 3 (not a power of two on any axis; 3 + 2 + 2 Morton bits).
    Case("raw-u8-gzip-data-identity", Codec("raw", "uint8", 1), sharding(2, "identity", 2, 3, "raw", "gzip")),
    Case("cseg-u64-murmur-gzip-index", Codec("compressed_segmentation", "uint64", 1),
         sharding(1, "murmurhash3_x86_128", 2, 2, "gzip", "gzip")),
    Case("raw-u16-c3-preshift", Codec("raw", "uint16", 3), sharding(4, "identity", 1, 2, "gzip", "raw")),
    Case("png-u8-one-shard", Codec("png", "uint8", 1), sharding(0, "identity", 0, 0, "raw", "raw")),
    Case("cseg-u32-c2-identity", Codec("compressed_segmentation", "uint32", 2),
         sharding(0, "identity", 3, 4, "gzip", "gzip")),
    Case("jpeg-u8-murmur", Codec("jpeg", "uint8", 1), sharding(3, "murmurhash3_x86_128", 0, 3, "gzip", "raw")),
    # Too few bits for the grid: shard numbers repeat across the volume (shards are not boxes).
    Case("raw-f32-few-bits", Codec("raw", "float32", 1), sharding(1, "identity", 1, 1, "raw", "gzip")),
    # A larger grid of odd shape: 9 x 5 x 7 chunks.
    Case("raw-u8-odd-grid", Codec("raw", "uint8", 1), sharding(3, "identity", 2, 3, "gzip", "gzip"),
         size=(137, 75, 50), chunk=(16, 16, 8), offset=(3, -20, 0)),
]


def bounds_of(case: Case) -> bc.Box:
    return box_of(case.offset, (o + s for o, s in zip(case.offset, case.size)))


def ts_create_sharded(path: Path, case: Case) -> ts.TensorStore:
    scale: dict[str, Any] = {"size": list(case.size), "voxel_offset": list(case.offset),
                             "chunk_size": list(case.chunk), "resolution": [4, 4, 40],
                             "encoding": case.codec.encoding, "sharding": case.spec}
    if case.codec.encoding == "compressed_segmentation":
        scale["compressed_segmentation_block_size"] = [8, 8, 4]
    return ts.open({
        "driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/", "create": True,
        "multiscale_metadata": {"type": case.codec.layer_type, "data_type": case.codec.dtype,
                                "num_channels": case.codec.channels},
        "scale_metadata": scale,
    }).result()


def inner_boxes(bounds: bc.Box) -> list[bc.Box]:
    """Boxes crossing chunk and shard borders, one partly outside the volume."""
    (x0, y0, z0), (x1, y1, z1) = bounds.start, bounds.stop
    return [box_of((x0 + 3, y0 + 5, z0 + 1), (x1 - 2, y1 - 7, z1 - 1)),
            box_of((x0 + 17, y0 + 1, z0), (x0 + 50, y0 + 40, z0 + 7)),
            box_of((x1 - 5, y1 - 5, z1 - 3), (x1 + 10, y1 + 10, z1 + 10))]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bigarrays_reads_what_tensorstore_writes(dataset: Path, rng: np.random.Generator, case: Case) -> None:
    bounds = bounds_of(case)
    data = sample(rng, case.codec, bounds.shape)
    ts_create_sharded(dataset, case).write(data).result()
    theirs = ts_read(dataset, 0)
    assert any(p.suffix == ".shard" for p in (dataset / "4_4_40").iterdir())
    ba = bc.open(str(dataset), fill_missing=False)
    assert ba.sharding is not None and ba.sharding.to_json() == case.spec
    np.testing.assert_array_equal(ba[:, :, :], theirs)
    for box in inner_boxes(bounds):
        inside = box.intersect(bounds)
        np.testing.assert_array_equal(bc.open(str(dataset)).read(inside), ts_read(dataset, 0, inside))
    assert not ba.missing_chunks()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_tensorstore_and_cloudvolume_read_what_bigarrays_writes(dataset: Path, rng: np.random.Generator,
                                                                 case: Case) -> None:
    ba = bc.create(str(dataset), dtype=case.codec.dtype, size=case.size, chunk_size=case.chunk,
                   voxel_offset=case.offset, resolution=(4, 4, 40), num_channels=case.codec.channels,
                   encoding=case.codec.encoding, compressed_segmentation_block_size=(8, 8, 4), sharding=case.spec)
    bounds = bounds_of(case)
    data = sample(rng, case.codec, bounds.shape)
    # Written shard by shard where shards are boxes, else in one go.
    for box in ba.write_boxes():
        ba.write(box, data[box.slices_in(bounds)])
    ours = bc.open(str(dataset))[:, :, :]
    np.testing.assert_array_equal(ts_read(dataset, 0), ours)
    for box in inner_boxes(bounds):
        inside = box.intersect(bounds)
        np.testing.assert_array_equal(ts_read(dataset, 0, inside), ours[inside.slices_in(bounds)])
    if case.codec.image and case.codec.channels > 1:
        return  # CloudVolume decodes multi-channel images planar (tests/interop/cases.py: cv_scrambled)
    if case.codec.encoding == "compressed_segmentation" and case.codec.channels > 1:
        return  # CloudVolume reads one channel of compressed_segmentation only
    cv = cv_open(dataset, 0, fill_missing=False)
    (x0, y0, z0), (x1, y1, z1) = bounds.start, bounds.stop
    np.testing.assert_array_equal(np.asarray(cv[x0:x1, y0:y1, z0:z1]), ours)


@pytest.mark.parametrize("encoding", ["raw", "compressed_segmentation"])
def test_tensorstore_reads_the_spec_bigarrays_chooses(dataset: Path, rng: np.random.Generator, encoding: str) -> None:
    codec = Codec(encoding, "uint64" if encoding == "compressed_segmentation" else "uint8", 1)
    size, chunk = (200, 130, 90), (32, 32, 16)
    ba = bc.create(str(dataset), dtype=codec.dtype, size=size, chunk_size=chunk, encoding=encoding,
                   compressed_segmentation_block_size=(8, 8, 4), num_mips=2, sharding=True)
    for mip in range(2):
        level = ba.at_mip(mip)
        data = sample(rng, codec, level.bounds.shape)
        level[:, :, :] = data
        np.testing.assert_array_equal(ts_read(dataset, mip), data)
        np.testing.assert_array_equal(np.asarray(cv_open(dataset, mip)[:, :, :]), data)


def test_bigarrays_reads_shards_cloudvolume_writes(dataset: Path, rng: np.random.Generator) -> None:
    """CloudVolume writes whole shards (its synthesize_shard_file layout: all chunk data, then
    every minishard index) when a write covers them."""
    from cloudvolume import CloudVolume  # type: ignore[import-untyped]

    size, chunk = (128, 128, 64), (32, 32, 16)
    info = CloudVolume.create_new_info(num_channels=1, layer_type="segmentation", data_type="uint64",
                                       encoding="compressed_segmentation", resolution=[4, 4, 40],
                                       voxel_offset=[0, 0, 0], volume_size=list(size), chunk_size=list(chunk),
                                       compressed_segmentation_block_size=(8, 8, 4))
    info["scales"][0]["sharding"] = sharding(3, "identity", 3, 0, "gzip", "gzip")  # one shard, 64 chunks
    cv = cv_open(dataset, 0, info=info)
    cv.commit_info()
    data = sample(rng, Codec("compressed_segmentation", "uint64", 1), size)
    cv[0:128, 0:128, 0:64] = data
    ba = bc.open(str(dataset), fill_missing=False)
    np.testing.assert_array_equal(ba[:, :, :], data)
    np.testing.assert_array_equal(ba[5:100, 17:128, 3:50], data[5:100, 17:128, 3:50])
