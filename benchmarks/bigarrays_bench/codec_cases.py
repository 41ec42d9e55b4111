"""The codec cases: each encoding CloudVolume writes besides the standard four, and brotli.

For every codec a 256³ region (64³ in ``--quick``) of the suite's data is read from and
written to a dataset in that encoding, in 64³ chunks, by bigarrays and by CloudVolume
(``parallel=1``), with no byte compression on top (``br`` is itself the byte compression
of a raw dataset): both call the same library per chunk, so the ratio measures everything
around it. TensorStore reads none of these encodings. The read datasets are written by
bigarrays, whose chunks are the ones CloudVolume writes (tests/interop prove it).

:func:`size_table` is the table beside it: what each encoding (and gzip or brotli on top)
stores for the same data, so users can choose.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import bigarrays_core as bc
from bigarrays_bench.cases import Case, Env, Subject, Target
from bigarrays_bench.datasets import CHUNK
from bigarrays_core.codecs import pipeline_for

__all__ = ["CODEC_CASES", "CodecSpec", "size_table"]


@dataclass(frozen=True)
class CodecSpec:
    """One codec case: the encoding, its settings, the data it is made for."""

    name: str
    encoding: str
    source: str  # "seg" (uint64 labels), "img" (uint8), "float" (float32 in [0, 1])
    settings: dict[str, Any] = field(default_factory=dict)
    compression: str | None = None  # bigarrays' and CloudVolume's byte compression

    @property
    def dtype(self) -> str:
        return {"seg": "uint64", "img": "uint8", "float": "float32"}[self.source]


SPECS = [
    CodecSpec("compresso", "compresso", "seg"),
    CodecSpec("crackle", "crackle", "seg"),
    CodecSpec("jxl", "jxl", "img"),  # quality 85, CloudVolume's default
    CodecSpec("fpzip", "fpzip", "float"),
    CodecSpec("kempressed", "kempressed", "float"),
    CodecSpec("zfpc", "zfpc", "float"),  # lossless (zfp's reversible mode)
    CodecSpec("br", "raw", "img", compression="br"),
]


def _region(env: Env) -> tuple[int, int, int]:
    side = 64 if env.quick else 256
    return (side, side, side)


def source_data(env: Env, source: str) -> np.ndarray:
    """The region's voxels: a corner of the suite's segmentation or image, or that image as
    floats in [0, 1) with every mantissa bit used (measured values, such as affinities: what
    fpzip, kempressed and zfpc are for), seeded."""
    shape = _region(env)
    if source == "seg":
        return np.asfortranarray(bc.open(str(env.data["seg_cseg"]))[: shape[0], : shape[1], : shape[2]])
    img = np.asfortranarray(bc.open(str(env.data["img_raw"]))[: shape[0], : shape[1], : shape[2]])
    if source == "img":
        return img
    jitter = np.random.default_rng(env.seed).random(img.shape, dtype=np.float32)
    return np.asfortranarray((img.astype(np.float32) + jitter) / np.float32(256))


def _create(path: Path, spec: CodecSpec, shape: tuple[int, int, int]) -> bc.BigArray:
    if path.exists():
        shutil.rmtree(path)
    return bc.create(str(path), dtype=spec.dtype, size=shape, chunk_size=CHUNK, resolution=(8, 8, 40),
                     encoding=spec.encoding, compression=spec.compression, encoding_settings=spec.settings)


def _cloudvolume(path: Path, spec: CodecSpec) -> Any:
    from cloudvolume import CloudVolume

    return CloudVolume(f"file://{path.resolve()}", mip=0, parallel=1, fill_missing=True, progress=False,
                       compress=spec.compression or False)


def _read_case(spec: CodecSpec) -> Callable[[Env], list[Subject]]:
    def prepare(env: Env) -> list[Subject]:
        shape = _region(env)
        data = source_data(env, spec.source)
        path = env.scratch / f"codec_{spec.name}"
        _create(path, spec, shape)[:, :, :] = data
        ba, vol = bc.open(str(path)), _cloudvolume(path, spec)
        x, y, z = shape
        if not np.array_equal(ba[:, :, :], np.asarray(vol[0:x, 0:y, 0:z])):  # checked once, untimed
            raise RuntimeError(f"{spec.name}: CloudVolume and bigarrays read the dataset differently")

        def ours() -> float:
            return float(ba[0:x, 0:y, 0:z].nbytes)

        def theirs() -> float:
            return float(np.asarray(vol[0:x, 0:y, 0:z]).nbytes)

        return [Subject("bigarrays", "bigarrays", ours), Subject("cloudvolume", "cloudvolume", theirs),
                Subject("tensorstore", "tensorstore", None, cant=f"TensorStore reads no {spec.name} chunks")]
    return prepare


def _write_case(spec: CodecSpec) -> Callable[[Env], list[Subject]]:
    def prepare(env: Env) -> list[Subject]:
        shape = _region(env)
        data = source_data(env, spec.source)
        x, y, z = shape
        ba = _create(env.scratch / f"codec_{spec.name}_write_bigarrays", spec, shape)
        path = env.scratch / f"codec_{spec.name}_write_cloudvolume"
        _create(path, spec, shape)
        vol = _cloudvolume(path, spec)

        def ours() -> float:
            ba[0:x, 0:y, 0:z] = data
            return float(data.nbytes)

        def theirs() -> float:
            vol[0:x, 0:y, 0:z] = data
            return float(data.nbytes)

        return [Subject("bigarrays", "bigarrays", ours), Subject("cloudvolume", "cloudvolume", theirs),
                Subject("tensorstore", "tensorstore", None, cant=f"TensorStore writes no {spec.name} chunks")]
    return prepare


def _what(spec: CodecSpec, action: str) -> str:
    data = {"seg": "uint64 labels", "img": "uint8 image", "float": "float32 in [0,1)"}[spec.source]
    how = "raw + brotli 5" if spec.compression == "br" else spec.encoding
    return f"{action} 256^3 (--quick: 64^3) {data}, {how}, 64^3 chunks"


CODEC_CASES: list[Case] = [
    case
    for spec in SPECS
    for case in (
        Case(f"codec_{spec.name}_read", "codecs", "MB/s", _what(spec, "read"), Target("cloudvolume", 1.0),
             _read_case(spec)),
        Case(f"codec_{spec.name}_write", "codecs", "MB/s", _what(spec, "write"), Target("cloudvolume", 1.0),
             _write_case(spec)),
    )
]

#: The encodings (with byte compression) of the size table, by kind of data.
SIZE_ROWS: dict[str, list[tuple[str, str, dict[str, Any], str | None]]] = {
    "seg": [("raw", "raw", {}, None), ("raw + gzip", "raw", {}, "gzip"),
            ("compressed_segmentation", "compressed_segmentation", {}, None),
            ("compressed_segmentation + gzip", "compressed_segmentation", {}, "gzip"),
            ("compresso", "compresso", {}, None), ("compresso + gzip", "compresso", {}, "gzip"),
            ("compresso + br", "compresso", {}, "br"),
            ("crackle", "crackle", {}, None), ("crackle + gzip", "crackle", {}, "gzip")],
    "img": [("raw", "raw", {}, None), ("raw + gzip", "raw", {}, "gzip"), ("raw + zstd", "raw", {}, "zstd"),
            ("raw + br", "raw", {}, "br"), ("png", "png", {}, None),
            ("jxl lossless", "jxl", {"jxl_quality": 100}, None),
            ("jpeg q75 (lossy)", "jpeg", {}, None), ("jxl q85 (lossy)", "jxl", {}, None)],
    "float": [("raw", "raw", {}, None), ("raw + gzip", "raw", {}, "gzip"), ("raw + br", "raw", {}, "br"),
              ("fpzip", "fpzip", {}, None), ("kempressed", "kempressed", {}, None),
              ("zfpc lossless", "zfpc", {}, None),
              # One channel: zfp's 4-D blocks pad the channel axis from 1 to 4 unless it is uncorrelated.
              ("zfpc lossless, channels uncorrelated", "zfpc", {"zfpc_correlated_dims": [True, True, True, False]},
               None),
              ("fpzip 16 bits (lossy)", "fpzip", {"fpzip_precision": 16}, None),
              ("zfpc tolerance 1e-3 (lossy)", "zfpc", {"zfpc_tolerance": 0.001}, None),
              ("zfpc tolerance 1e-3, channels uncorrelated (lossy)", "zfpc",
               {"zfpc_tolerance": 0.001, "zfpc_correlated_dims": [True, True, True, False]}, None)],
}


def size_table(env: Env) -> list[dict[str, Any]]:
    """Stored bytes of the region's 64³ chunks in each encoding of :data:`SIZE_ROWS`, as a
    fraction of the raw bytes (rows ``{"type": "size", ...}``)."""
    rows = []
    for source, encodings in SIZE_ROWS.items():
        data = source_data(env, source)
        for label, encoding, settings, compression in encodings:
            info = bc.create_info(dtype=data.dtype, size=data.shape[:3], chunk_size=CHUNK, encoding=encoding,
                                  compression=compression, encoding_settings=settings)
            pipeline = pipeline_for(info.scales[0], info.dtype, 1)
            stored = 0
            for x0 in range(0, data.shape[0], CHUNK[0]):
                for y0 in range(0, data.shape[1], CHUNK[1]):
                    for z0 in range(0, data.shape[2], CHUNK[2]):
                        chunk = data[x0:x0 + CHUNK[0], y0:y0 + CHUNK[1], z0:z0 + CHUNK[2]]
                        stored += len(pipeline.encode(np.asfortranarray(chunk)))
            rows.append({"type": "size", "data": source, "dtype": str(data.dtype), "shape": list(data.shape[:3]),
                         "encoding": label, "raw_bytes": int(data.nbytes), "stored_bytes": stored,
                         "ratio": stored / data.nbytes})
    return rows


def format_size_table(rows: list[dict[str, Any]]) -> str:
    lines = ["stored size of the codec cases' data in 64^3 chunks (fraction of raw; lower is smaller):"]
    names = {"seg": "uint64 labels", "img": "uint8 image", "float": "float32 in [0,1]"}
    for source in SIZE_ROWS:
        part = [r for r in rows if r["data"] == source]
        if not part:
            continue
        shape = "x".join(map(str, part[0]["shape"]))
        lines.append(f"  {names[source]} ({shape}, {part[0]['raw_bytes'] / 1e6:.1f} MB raw)")
        for r in part:
            lines.append(f"    {r['encoding']:52s} {r['stored_bytes'] / 1e6:9.2f} MB  {r['ratio']:7.4f}")
    return "\n".join(lines)
