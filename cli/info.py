"""``bigarrays info``: a readable summary of a dataset."""

from __future__ import annotations

import argparse
import json

from bigarrays_cli.describe import describe

import bigarrays_core as bc


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="summarise a dataset's scales, bounds, chunking and encodings",
                       description="Print a readable summary of a dataset (or its info JSON with --json).")
    p.add_argument("url")
    p.add_argument("--json", action="store_true", help="print the info JSON instead")
    p.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    ba = bc.open(args.url, read_only=True)
    if args.json:
        print(json.dumps(ba.info, indent=2))
    else:
        print(f"{ba.url}\n{describe(ba)}")
    return 0
