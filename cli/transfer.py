"""``bigarrays transfer``: copy a dataset into another, re-chunked, re-encoded or cropped (``bc.transfer``).

The work is :func:`bigarrays_core.transfer.transfer`'s; this module parses the options and
shows progress. The tasks run on this machine's threads or a Dask cluster
(:mod:`bigarrays_cli.cluster`). Running the same command again resumes an interrupted
transfer, and writes nothing after a finished one (``--overwrite`` copies again).
"""

from __future__ import annotations

import argparse

from bigarrays_cli.args import add_codec_options, compression_of, encoding_settings_of, ints3
from bigarrays_cli.cluster import add_job_options, base_name, job_client, progress_bar

import bigarrays_core as bc
from bigarrays_core.jobs import run_stages
from bigarrays_core.resume import ProgressRecord
from bigarrays_core.transfer import KEEP, plan_transfer

__all__ = ["add"]


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "transfer", help="copy a dataset into another: re-chunk, re-encode, re-compress, crop (resumable)",
        description="Copy the scales of SRC from --mip up (--mips of them) into DST, voxel for voxel in the same "
                    "coordinates. A new DST gets SRC's info with --chunk-size, --encoding, --compression and "
                    "--bounds changed; an existing one must agree with them. Chunks SRC does not store are "
                    "skipped, chunks DST holds in part are merged. Run the same command again to resume.")
    p.add_argument("src", help="the dataset to copy (a path or URL)")
    p.add_argument("dst", help="where to copy it (a path or URL)")
    p.add_argument("--mip", type=int, default=0, help="the first scale of SRC to copy (default 0)")
    p.add_argument("--mips", type=int, default=None, help="how many scales to copy (default: all from --mip)")
    p.add_argument("--bbox", default=None, help="copy only this box of --mip voxels (x0:x1,y0:y1,z0:z1)")
    p.add_argument("--bounds", default=None, help="a new DST's bounds at --mip (default: SRC's)")
    p.add_argument("--chunk-size", default=None, **ints3(3, "chunk"), help="a new DST's chunk size")
    add_codec_options(p, encoding_help="a new DST's encoding (default: SRC's)",
                      compression_help="a new DST's byte compression (default: SRC's)")
    shard = p.add_mutually_exclusive_group()
    shard.add_argument("--sharded", dest="sharding", action="store_const", const=True, default=None,
                       help="a new DST's scales are sharded (neuroglancer_uint64_sharded_v1, the spec bigarrays "
                            "picks for each grid); default: as SRC's")
    shard.add_argument("--unsharded", dest="sharding", action="store_const", const=False,
                       help="a new DST's scales are not sharded")
    p.add_argument("--write-empty", action="store_true", help="also store chunks whose voxels are all zeros")
    p.add_argument("--verify", action="store_true", help="compare every copied region of SRC and DST afterwards")
    p.add_argument("--overwrite", action="store_true", help="copy everything again, even what a run finished")
    add_job_options(p)
    p.set_defaults(run=run_transfer)


def run_transfer(args: argparse.Namespace) -> int:
    compression = compression_of(args.compression, args.compression_level, KEEP)
    src = bc.open(args.src, mip=args.mip, read_only=True)
    plan = plan_transfer(src, args.dst, mips=args.mips, region=args.bbox, bounds=args.bounds,
                         chunk_size=args.chunk_size, encoding=args.encoding, compression=compression,
                         encoding_settings=encoding_settings_of(args),
                         sharding=KEEP if args.sharding is None else args.sharding, write_empty=args.write_empty,
                         verify=args.verify)
    record = ProgressRecord(plan.target.store, plan.job)
    if args.overwrite:
        record.reset()
    total = sum(stage.total_weight() for stage in plan.stages)
    with job_client(args) as client:
        with progress_bar(args, total, f"transfer {base_name(args.src)}") as update:
            report = run_stages(plan.stages, client=client, record=record, progress=update)
        if plan.checks:
            run_stages(plan.checks, client=client)
    print(f"copied {src.url} -> {plan.target.url}: {report}" + (" (verified)" if plan.checks else ""))
    return 0
