"""``bigarrays downsample``: build or refresh the mip pyramid of a dataset (``bc.downsample``).

The work is :func:`bigarrays_core.pyramid.downsample`'s; this module parses the options and
shows progress. The tasks run on this machine's threads or a Dask cluster
(:mod:`bigarrays_cli.cluster`). An interrupted build is resumed by running the same command
again; a finished one leaves no record, so running it again builds again.
"""

from __future__ import annotations

import argparse

from bigarrays_cli.args import ints3
from bigarrays_cli.cluster import add_job_options, base_name, job_client, progress_bar

import bigarrays_core as bc
from bigarrays_core.downsampling import METHODS
from bigarrays_core.geometry import Box
from bigarrays_core.jobs import run_stages
from bigarrays_core.pyramid import plan_downsample
from bigarrays_core.resume import ProgressRecord

__all__ = ["add"]


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "downsample", help="build or refresh the mip pyramid of a dataset (resumable)",
        description="Fill the --mips scales above --mip of the dataset at URL, each made from the one below it "
                    "(blocks aligned in absolute voxel coordinates; partial edge blocks use the voxels they have). "
                    "Scales the info does not declare are added (--factor coarser each). With --bbox only the "
                    "chunks of each scale that the box touches are rebuilt (after an edit). All-zero chunks are "
                    "not stored (--write-empty stores them where data lies below). Run the same command again "
                    "to resume an interrupted build.")
    p.add_argument("url", help="the dataset: a path, file://, memory://, gs://, s3://")
    p.add_argument("--mip", type=int, default=0, help="the scale to build from (default 0)")
    p.add_argument("--mips", type=int, default=None,
                   help="how many scales above --mip to fill (default: every declared one, or 1)")
    p.add_argument("--factor", default=None, **ints3(3, "factor"),
                   help="factor of each scale added to the info (default 2 2 1; declared scales keep theirs)")
    p.add_argument("--method", default="auto", choices=[*METHODS, "mean"],
                   help="average (mean) for images, mode for segmentations (auto, the default, picks by layer "
                        "type), min, max, stride")
    p.add_argument("--ignore-zero", action="store_true", help="with mode: 0 wins only blocks of nothing but 0")
    p.add_argument("--bbox", default=None, help="only refresh this box of --mip voxels (x0:x1,y0:y1,z0:z1)")
    p.add_argument("--write-empty", action="store_true",
                   help="also store all-zero chunks where a chunk below them is stored")
    p.add_argument("--restart", action="store_true",
                   help="forget what an interrupted run of this build finished and build everything")
    add_job_options(p)
    p.set_defaults(run=run_downsample)


def run_downsample(args: argparse.Namespace) -> int:
    ba = bc.open(args.url, mip=args.mip)
    region = Box.parse(args.bbox) if args.bbox else None
    plan = plan_downsample(ba, args.mips, args.factor, args.method, region, ignore_zero=args.ignore_zero,
                           write_empty=args.write_empty)
    record = ProgressRecord(ba.store, plan.job)
    if args.restart:
        record.reset()
    total = sum(stage.total_weight() for stage in plan.stages)
    top = plan.job["scales"][-1]["mip"]
    with job_client(args) as client, progress_bar(args, total, f"downsample {base_name(args.url)}") as update:
        report = run_stages(plan.stages, client=client, record=record, progress=update)
    record.delete()
    print(f"downsampled {ba.url} mip {ba.mip} -> mips {ba.mip + 1}..{top} ({plan.job['method']}): {report}")
    return 0
