"""``bigarrays missing``: which chunks of a box are not stored.

Prints the missing chunks' keys, one a line, on stdout (so the output can be piped), and a
one-line count on stderr. ``--json`` prints ``{"bbox", "mip", "total", "missing": [...]}`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys

from bigarrays_cli.cutout import allow_negative_bbox

import bigarrays_core as bc
from bigarrays_core.geometry import Box

__all__ = ["add"]


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("missing", help="list the chunks of a box that are not stored",
                       description="List the chunk keys of BBOX (default: the whole scale) that do not exist, "
                                   "one a line; a count goes to stderr.")
    p.add_argument("url")
    p.add_argument("bbox", nargs="?", default=None,
                   help="x0:x1,y0:y1,z0:z1 or x0-x1_y0-y1_z0-z1 (default: the scale's bounds)")
    p.add_argument("--mip", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print a JSON object instead of keys")
    p.add_argument("--fail-if-missing", action="store_true", help="exit with status 3 if any chunk is missing")
    allow_negative_bbox(p)
    p.set_defaults(run=run_missing)


def run_missing(args: argparse.Namespace) -> int:
    ba = bc.open(args.url, mip=args.mip, read_only=True)
    box = Box.parse(args.bbox) if args.bbox else ba.bounds
    refs = ba.chunks(box)
    missing = ba.missing_chunks(box)
    if args.json:
        print(json.dumps({"bbox": box.to_colon(), "mip": args.mip, "total": len(refs),
                          "missing": [r.key for r in missing]}, indent=2))
    else:
        for ref in missing:
            print(ref.key)
        print(f"{len(missing)} of {len(refs)} chunk(s) of {box} (mip {args.mip}) missing", file=sys.stderr)
    return 3 if args.fail_if_missing and missing else 0
