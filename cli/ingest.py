"""``bigarrays ingest``: copy a TIFF stack, a ``.npy`` or another precomputed dataset into a dataset.

The work is the library's (:mod:`bigarrays_core.sources`, :mod:`bigarrays_core.ingest`,
:mod:`bigarrays_core.pyramid`); this module parses the options, creates or checks the
destination, and shows progress. One progress record covers the ingest and the mips it
builds, so an interrupted run is resumed by running the same command again. The tasks run
on this machine's threads or a Dask cluster (:mod:`bigarrays_cli.cluster`).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from bigarrays_cli.args import (
    add_codec_options,
    add_sharding_options,
    compression_of,
    encoding_settings_of,
    ints3,
    sharding_of,
)
from bigarrays_cli.cluster import add_job_options, base_name, job_client, progress_bar

import bigarrays_core as bc
from bigarrays_core.downsampling import METHODS
from bigarrays_core.geometry import Box
from bigarrays_core.ingest import ingest_job, ingest_stage
from bigarrays_core.jobs import Stage, run_stages
from bigarrays_core.pyramid import plan_downsample
from bigarrays_core.resume import ProgressRecord
from bigarrays_core.sources import Source, open_source

__all__ = ["add"]


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ingest", help="copy a TIFF stack, a .npy or a precomputed dataset into a dataset (resumable)",
        description="Copy SOURCE into the precomputed dataset DEST, creating it if needed, then build --mips scales. "
                    "SOURCE is a multi-page .tif, a directory of single-page .tif files (in natural name order: "
                    "img_2 before img_10; pages are y, x), a .npy of shape (x, y, z[, c]) or a precomputed "
                    "URL/directory. A chunk SOURCE covers in part is merged with what DEST holds there; chunks "
                    "that would be all zeros, and chunks where a precomputed SOURCE has none, are not stored "
                    "(--write-empty stores the zeros). Progress is recorded in DEST: run the same command again "
                    "to resume an interrupted ingest (a finished one then writes nothing).")
    p.add_argument("source")
    p.add_argument("dest", help="a path, file://, memory://, gs://, s3://")
    p.add_argument("--dtype", default=None, help="destination dtype (default: the source's)")
    p.add_argument("--chunk-size", default=None, **ints3(3, "chunk"), help="default 64 64 64 (or the source's)")
    p.add_argument("--resolution", nargs=3, type=float, default=None, metavar=("X", "Y", "Z"),
                   help="voxel size in nm (default 1 1 1 or the source's)")
    p.add_argument("--voxel-offset", default=None, **ints3(3, "offset"),
                   help="where the source's first voxel goes (default: the dataset's voxel offset)")
    add_codec_options(p, encoding_help="a new DEST's encoding (default raw, or a precomputed SOURCE's)",
                      compression_help="a new DEST's byte compression (default: a precomputed SOURCE's; else gzip "
                                       "for compresso, crackle, fpzip and kempressed, none otherwise)")
    p.add_argument("--layer-type", default=None, choices=["image", "segmentation"])
    p.add_argument("--mips", type=int, default=1,
                   help="scales to fill, mip 0 included (declared when creating; default 1)")
    p.add_argument("--downsample", default=[2, 2, 1], **ints3(3, "factor"), help="factor between scales (2 2 1)")
    p.add_argument("--method", default="auto", choices=[*METHODS, "mean"],
                   help="downsampling: average (or mean) for images, mode for segmentations (auto, the default, "
                        "picks by layer type); also min, max, stride")
    add_sharding_options(p, "a new DEST's scales")
    p.add_argument("--write-empty", action="store_true",
                   help="also store chunks whose voxels are all zeros (missing source chunks stay missing)")
    p.add_argument("--overwrite", action="store_true",
                   help="write every chunk again, even those an earlier run of this ingest finished")
    add_job_options(p)
    p.set_defaults(run=run_ingest)


def _open_or_create(args: argparse.Namespace, source: Source) -> bc.BigArray:
    d = source.defaults
    try:
        ba = bc.open(args.dest)
    except bc.DatasetNotFoundError:
        compression = compression_of(args.compression, args.compression_level, d.get("compression", "auto"),
                                     args.encoding or d.get("encoding", "raw"), sharding_of(args) is not None)
        return bc.create(
            args.dest, dtype=args.dtype or source.dtype.name,
            size=source.shape[:3], num_channels=source.shape[3],
            chunk_size=args.chunk_size or d.get("chunk_size", (64, 64, 64)),
            resolution=args.resolution or d.get("resolution", (1, 1, 1)),
            voxel_offset=args.voxel_offset or d.get("voxel_offset", (0, 0, 0)),
            encoding=args.encoding or d.get("encoding", "raw"), encoding_settings=encoding_settings_of(args),
            compression=compression,
            layer_type=args.layer_type or d.get("layer_type"), num_mips=args.mips,
            downsample_factor=args.downsample, sharding=sharding_of(args))
    checks = [("dtype", args.dtype and np.dtype(args.dtype), ba.dtype),
              ("chunk_size", args.chunk_size and tuple(args.chunk_size), ba.chunk_size),
              ("resolution", args.resolution and tuple(args.resolution), tuple(float(r) for r in ba.resolution)),
              ("encoding", args.encoding, ba.encoding)]
    stored_spec = ba.scale.sharding
    if sharding_of(args) is not None and stored_spec is None:
        raise bc.InfoError(f"{args.dest} exists with unsharded scales, but --sharded/--sharding asks for sharded "
                           "ones; ingest into a new DEST, or reshard with bigarrays transfer --sharded",
                           field="sharding")
    if args.sharding is not None and stored_spec is not None and dict(args.sharding) != stored_spec:
        raise bc.InfoError(f"{args.dest} exists with sharding {stored_spec}, but --sharding asks for "
                           f"{args.sharding}; ingest into a new DEST or drop the option", field="sharding")
    stored_scale = ba.info["scales"][ba.mip]
    for name, value in (encoding_settings_of(args) or {}).items():
        if stored_scale.get(name) != value:
            raise bc.InfoError(f"{args.dest} exists with {name} {stored_scale.get(name)!r}, but --encoding-setting "
                               f"asks for {value!r}; ingest into a new DEST or drop the option", field=name)
    for field, wanted, have in checks:
        if wanted and wanted != have:
            raise bc.InfoError(f"{args.dest} exists with {field} {have}, but --{field.replace('_', '-')} "
                               f"asks for {wanted}; ingest into a new DEST or drop the option", field=field)
    return ba


def run_ingest(args: argparse.Namespace) -> int:
    if args.mips < 1:
        raise bc.BigArraysError(f"--mips {args.mips}: expected 1 or more (the number of scales, mip 0 included)")
    source = open_source(args.source)
    ba = _open_or_create(args, source)
    offset = tuple(args.voxel_offset) if args.voxel_offset else ba.voxel_offset
    region = Box.from_shape(offset, source.shape[:3])
    stages: list[Stage[Any, Any]] = [ingest_stage(source, ba, offset, write_empty=args.write_empty)]
    pyramid = None
    if args.mips > 1:  # scales the dataset lacks are added to its info first
        plan = plan_downsample(ba, mips=args.mips - 1, method=args.method, region=region,
                               write_empty=args.write_empty)
        ba = bc.BigArray(ba.store, plan.info, ba.mip)
        stages += plan.stages
        pyramid = plan.job
    job = ingest_job(source, ba, offset, write_empty=args.write_empty, mips=args.mips - 1, pyramid=pyramid)
    record = ProgressRecord(ba.store, job) if job is not None else None
    if record is not None and args.overwrite:
        record.reset()
    total = sum(stage.total_weight() for stage in stages)
    with job_client(args) as client, progress_bar(args, total, f"ingest {base_name(args.source)}") as update:
        report = run_stages(stages, client=client, record=record, progress=update)
    print(f"ingested {source.name} -> {ba.url}: {report}")
    return 0
