"""``bigarrays verify``: check that every stored chunk of a region decodes, and find what killed writers left.

Bad chunks print as ``bad KEY: ERROR`` and leftover temporary files as ``leftover PATH (age)``
on stdout, one a line; a summary goes to stderr. Exit status 0 when all is well, 3 when a
chunk is bad or a stale temporary remains (1 for errors such as a missing dataset).
"""

from __future__ import annotations

import argparse
import sys

from bigarrays_cli.cutout import allow_negative_bbox

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from bigarrays_core.kvstore import LocalStore
from bigarrays_core.verify import verify

__all__ = ["add"]


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "verify", help="check that every stored chunk decodes; find (--fix: remove) stale temporary files",
        description="Read and decode every stored chunk of BBOX (default: the whole scale), printing each bad chunk "
                    "with its error, and list the temporary files (.bigarrays-tmp-*) that writers killed mid-write "
                    "left on local disk. Temporaries untouched for --stale-after seconds (default "
                    f"{LocalStore.STALE_TEMPORARY_AGE:g}: an hour) are stale; --fix removes those, never a chunk. "
                    "Exit status 3 when something is wrong.")
    p.add_argument("url")
    p.add_argument("bbox", nargs="?", default=None,
                   help="x0:x1,y0:y1,z0:z1 or x0-x1_y0-y1_z0-z1 (default: the scale's bounds)")
    p.add_argument("--mip", type=int, default=0)
    p.add_argument("--fix", action="store_true", help="remove stale temporary files (never chunks)")
    p.add_argument("--stale-after", type=float, default=None, metavar="SECONDS",
                   help=f"age that makes a temporary stale (default {LocalStore.STALE_TEMPORARY_AGE:g})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    allow_negative_bbox(p)
    p.set_defaults(run=run_verify)


def _age(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.0f} s"


def run_verify(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.stale_after is not None and args.stale_after < 0:
        raise bc.BigArraysError(f"--stale-after {args.stale_after:g}: expected a number of seconds >= 0")
    ba = bc.open(args.url, mip=args.mip, read_only=not args.fix)
    box = Box.parse(args.bbox) if args.bbox else ba.bounds
    with tqdm(total=len(ba.chunks(box)), unit="chunk", desc="verify", disable=args.quiet) as bar:
        report = verify(ba, box, fix=args.fix, stale_after=args.stale_after, progress=bar.update)
    for bad in report.bad:
        print(f"bad {bad.key}: {bad.error}")
    for t in report.leftovers:
        state = ("removed" if t.path in report.removed else "stale" if t.stale
                 else "recent, may belong to a running writer: left alone")
        print(f"leftover {t.path} ({_age(t.age)} old, {state})")
    stale = sum(t.stale and t.path not in report.removed for t in report.leftovers)
    print(f"{report.stored} stored chunk(s) of {report.chunks} in {box} (mip {ba.mip}) checked: {len(report.bad)} bad; "
          f"{len(report.leftovers)} leftover temporary file(s), {len(report.removed)} removed, {stale} stale"
          + ("" if not stale or args.fix else " (--fix removes them)"), file=sys.stderr)
    return 0 if report.ok else 3
