"""The benchmark datasets (benchmarks/README.md), built once with bigarrays and reused.

Each dataset is a directory under the data root with a ``BUILT.json`` marker written
last, after the data were checked: TensorStore must read the raw, jpeg and
compressed_segmentation volumes identically to bigarrays, and CloudVolume the gzip one
identically to the raw one. A directory whose marker is missing or describes other
parameters is rebuilt from scratch.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import bigarrays_core as bc
from bigarrays_bench.noise import VoronoiLabels, image_lattices, image_slab

__all__ = ["DatasetSizes", "FULL", "IMG_SHARDING", "QUICK", "SEG_SHARDING", "ensure_datasets", "sharding"]

#: Bump when the generators change, so old data are rebuilt.
VERSION = 1
IMAGE_SEED = 20240611
SEG_SEED = 7
CHUNK = (64, 64, 64)


@dataclass(frozen=True)
class DatasetSizes:
    """Volume shapes of one suite flavour (full, or ``--quick``)."""

    name: str
    image: tuple[int, int, int]
    seg: tuple[int, int, int]
    seg_cells: int  # Voronoi seeds per axis: cells**3 segments


FULL = DatasetSizes("full", image=(1024, 1024, 512), seg=(512, 512, 512), seg_cells=23)  # ~12.2k segments
QUICK = DatasetSizes("quick", image=(256, 256, 128), seg=(128, 128, 128), seg_cells=8)

Log = Callable[[str], None]


def _marker(kind: str, sizes: DatasetSizes, shape: tuple[int, int, int]) -> dict[str, object]:
    return {"version": VERSION, "kind": kind, "shape": list(shape), "sizes": asdict(sizes),
            "image_seed": IMAGE_SEED, "seg_seed": SEG_SEED}


def _is_built(path: Path, marker: dict[str, object]) -> bool:
    try:
        # Compare in JSON form: tuples in the marker come back as lists.
        return bool(json.loads((path / "BUILT.json").read_text()) == json.loads(json.dumps(marker)))
    except (OSError, ValueError):
        return False


def _fresh(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def _ts_read(path: Path) -> np.ndarray:
    import tensorstore as ts

    arr = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/"}, read=True).result()
    return np.asarray(arr.read(order="F").result())


def _cv_read(path: Path) -> np.ndarray:
    from cloudvolume import CloudVolume

    vol = CloudVolume(f"file://{path}", parallel=1, fill_missing=True, progress=False)
    return np.asarray(vol[:, :, :])


def _check_same(what: str, a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or not np.array_equal(a, b):
        diff = "shapes differ" if a.shape != b.shape else f"{int(np.count_nonzero(a != b))} voxels differ"
        raise RuntimeError(f"dataset check failed: {what}: {diff}")


def _build_image(root: Path, sizes: DatasetSizes, log: Log) -> None:
    names: dict[str, dict[str, Any]] = {
        "img_raw": {}, "img_gzip": {"compression": "gzip"}, "img_jpeg": {"encoding": "jpeg", "jpeg_quality": 75}}
    shape = sizes.image
    todo = {n: kw for n, kw in names.items() if not _is_built(root / n, _marker(n, sizes, shape))}
    if not todo:
        return
    t0 = time.perf_counter()
    arrays = {}
    for name, kw in todo.items():
        _fresh(root / name)
        arrays[name] = bc.create(str(root / name), dtype="uint8", size=shape, chunk_size=CHUNK,
                                 resolution=(8, 8, 40), layer_type="image", overwrite=True, **kw)
    lattices = image_lattices(shape, IMAGE_SEED)
    for z0 in range(0, shape[2], CHUNK[2]):
        z1 = min(z0 + CHUNK[2], shape[2])
        slab = image_slab(shape, z0, z1, IMAGE_SEED, lattices)
        for ba in arrays.values():
            ba[:, :, z0:z1] = slab
    log(f"  wrote {sorted(todo)} {shape} in {time.perf_counter() - t0:.1f} s; checking")
    _verify_image(root, todo, sizes, shape)


def _verify_image(root: Path, todo: dict[str, dict[str, Any]], sizes: DatasetSizes,
                  shape: tuple[int, int, int]) -> None:
    raw = bc.open(str(root / "img_raw"))[:, :, :]
    for name in todo:
        path = root / name
        mine = bc.open(str(path))[:, :, :]
        if name == "img_gzip":
            _check_same("bigarrays gzip vs raw", mine, raw)
            _check_same("CloudVolume gzip vs raw", _cv_read(path), raw)
        else:
            if name == "img_raw":
                _check_same("CloudVolume raw vs bigarrays", _cv_read(path), mine)
            _check_same(f"TensorStore {name} vs bigarrays", _ts_read(path), mine)
        (path / "BUILT.json").write_text(json.dumps(_marker(name, sizes, shape)))


def _build_seg(root: Path, sizes: DatasetSizes, log: Log) -> None:
    name, shape = "seg_cseg", sizes.seg
    path = root / name
    marker = _marker(name, sizes, shape)
    if _is_built(path, marker):
        return
    t0 = time.perf_counter()
    _fresh(path)
    ba = bc.create(str(path), dtype="uint64", size=shape, chunk_size=CHUNK, resolution=(8, 8, 40),
                   layer_type="segmentation", encoding="compressed_segmentation",
                   compressed_segmentation_block_size=(8, 8, 8), overwrite=True)
    labels = VoronoiLabels(shape, sizes.seg_cells, SEG_SEED)
    coarse, wiggles = labels.coarse_labels(), labels.wiggle_lattices()
    for z0 in range(0, shape[2], CHUNK[2]):
        z1 = min(z0 + CHUNK[2], shape[2])
        ba[:, :, z0:z1] = labels.slab(z0, z1, coarse, wiggles)
    log(f"  wrote {name} {shape} in {time.perf_counter() - t0:.1f} s; checking")
    mine = bc.open(str(path))[:, :, :]
    _check_same("TensorStore seg_cseg vs bigarrays", _ts_read(path), mine)
    (path / "BUILT.json").write_text(json.dumps(marker))


def _build_cv_gzip(root: Path, sizes: DatasetSizes, log: Log) -> None:
    """``img_gzip_cv``: the ``img_raw`` voxels written by CloudVolume itself with its default
    compression (gzip level 9 through libdeflate, ``.gz`` files): the gzip data that exists."""
    name, shape = "img_gzip_cv", sizes.image
    path = root / name
    marker = _marker(name, sizes, shape)
    if _is_built(path, marker):
        return
    from cloudvolume import CloudVolume

    t0 = time.perf_counter()
    _fresh(path)
    # The info only (no "compression" field: CloudVolume records none and compresses by its option).
    bc.create(str(path), dtype="uint8", size=shape, chunk_size=CHUNK, resolution=(8, 8, 40), layer_type="image",
              overwrite=True)
    vol = CloudVolume(f"file://{path}", parallel=1, progress=False, compress="gzip", compress_level=9)
    raw = bc.open(str(root / "img_raw"))
    for z0 in range(0, shape[2], CHUNK[2]):
        z1 = min(z0 + CHUNK[2], shape[2])
        vol[:, :, z0:z1] = raw[:, :, z0:z1]
    log(f"  CloudVolume wrote {name} {shape} (gzip level 9) in {time.perf_counter() - t0:.1f} s; checking")
    scale = bc.open(str(path)).scale.key
    stored = sorted(p.name for p in (path / scale).iterdir())
    if not stored or not all(n.endswith(".gz") for n in stored):
        raise RuntimeError(f"dataset check failed: {name}: expected only .gz chunk files, got {stored[:3]}")
    _check_same("bigarrays CloudVolume-written gzip vs raw", bc.open(str(path))[:, :, :], raw[:, :, :])
    (path / "BUILT.json").write_text(json.dumps(marker))


def sharding(within_bits: int, total_bits: int) -> dict[str, Any]:
    """The spec of shards of ``2**within_bits`` chunks by TensorStore's rule (identity hash,
    ``preshift_bits = min(within, 9)``, the rest minishard bits), gzip'd indexes and chunks."""
    preshift = min(within_bits, 9)
    return {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": preshift, "hash": "identity",
            "minishard_bits": within_bits - preshift, "shard_bits": max(total_bits - within_bits, 0),
            "minishard_index_encoding": "gzip", "data_encoding": "gzip"}


#: Shards of 8 x 8 x 4 chunks (512 x 512 x 256 voxels, 64 MiB of uint8) for the image (11 Morton bits)...
IMG_SHARDING = sharding(8, 11)
#: ... and of 4 x 4 x 4 chunks (256³ voxels, 128 MiB of uint64) for the segmentation (9 bits).
SEG_SHARDING = sharding(6, 9)


def _shard_boxes(shape: tuple[int, int, int], spec: dict[str, Any]) -> list[bc.Box]:
    """The shard-aligned boxes of a volume of ``shape`` in CHUNK chunks with ``spec``."""
    probe = bc.create("memory://bench-shard-boxes", dtype="uint8", size=shape, chunk_size=CHUNK, sharding=spec,
                      overwrite=True)
    return probe.write_boxes()


def _build_sharded(root: Path, sizes: DatasetSizes, log: Log) -> None:
    """Sharded copies, written by TensorStore: ``img_sharded`` (uint8 raw chunks, gzip chunk
    data) from ``img_raw`` and ``seg_sharded`` (compressed_segmentation) from ``seg_cseg``."""
    import tensorstore as ts

    jobs = [("img_sharded", "img_raw", sizes.image, "uint8", "raw", IMG_SHARDING),
            ("seg_sharded", "seg_cseg", sizes.seg, "uint64", "compressed_segmentation", SEG_SHARDING)]
    for name, source, shape, dtype, encoding, spec in jobs:
        path = root / name
        marker = {**_marker(name, sizes, shape), "sharding": spec}
        if _is_built(path, marker):
            continue
        t0 = time.perf_counter()
        _fresh(path)
        scale: dict[str, Any] = {"size": list(shape), "voxel_offset": [0, 0, 0], "chunk_size": list(CHUNK),
                                 "resolution": [8, 8, 40], "encoding": encoding, "sharding": spec}
        if encoding == "compressed_segmentation":
            scale["compressed_segmentation_block_size"] = [8, 8, 8]
        layer = "segmentation" if encoding == "compressed_segmentation" else "image"
        store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/", "create": True,
                         "multiscale_metadata": {"type": layer, "data_type": dtype, "num_channels": 1},
                         "scale_metadata": scale}).result()
        src = bc.open(str(root / source))
        boxes = _shard_boxes(shape, spec)
        for box in boxes:  # one whole shard at a time
            (x0, y0, z0), (x1, y1, z1) = box.start, box.stop
            store[x0:x1, y0:y1, z0:z1].write(src.read(box)).result()
        log(f"  TensorStore wrote {name} {shape} in {time.perf_counter() - t0:.1f} s; checking")
        mine = bc.open(str(path), fill_missing=False)
        for box in boxes:
            (x0, y0, z0), (x1, y1, z1) = box.start, box.stop
            expected = src.read(box)
            _check_same(f"bigarrays {name} vs {source}", mine.read(box), expected)
            _check_same(f"TensorStore {name} vs {source}",
                        np.asarray(store[x0:x1, y0:y1, z0:z1].read(order="F").result()), expected)
        (path / "BUILT.json").write_text(json.dumps(marker))


def ensure_datasets(root: Path, sizes: DatasetSizes, log: Log = print) -> dict[str, Path]:
    """Build (or reuse) the image and segmentation datasets; return their directories by name.

    Names: ``img_raw``, ``img_gzip`` (bigarrays ``compression="gzip"``, level 1, CloudVolume's
    ``.gz`` files), ``img_gzip_cv`` (the same voxels written by CloudVolume, gzip level 9),
    ``img_jpeg`` (quality 75), ``seg_cseg`` (uint64, 8³ blocks), and the
    sharded copies TensorStore writes, ``img_sharded`` (:data:`IMG_SHARDING`) and
    ``seg_sharded`` (:data:`SEG_SHARDING`). Raises ``RuntimeError`` naming the check when a
    peer reads a dataset differently.
    """
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    _build_image(root, sizes, log)
    _build_cv_gzip(root, sizes, log)
    _build_seg(root, sizes, log)
    _build_sharded(root, sizes, log)
    return {n: root / n for n in ("img_raw", "img_gzip", "img_gzip_cv", "img_jpeg", "seg_cseg", "img_sharded",
                                  "seg_sharded")}
