"""``bigarrays info``: a readable summary of a dataset."""

from __future__ import annotations

import argparse
import json

from bigarrays_cli.describe import describe

from bigarrays_core.format import read_info
from bigarrays_core.kvstore import open_store


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="summarise a dataset's scales, bounds, chunking and encodings",
                       description="Print a readable summary of a dataset (or its info JSON with --json). Every "
                                   "scale is listed; one bigarrays cannot read (an unknown encoding, a codec "
                                   "package not installed, ...) is marked UNREADABLE with what is wrong, and the "
                                   "exit status stays 0. A missing or broken info as a whole exits 1.")
    p.add_argument("url")
    p.add_argument("--json", action="store_true", help="print the info JSON instead")
    p.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    store = open_store(args.url, read_only=True)
    info = read_info(store)  # not a scale: a dataset whose mip 0 cannot be read is still described
    if args.json:
        print(json.dumps(info.to_json(), indent=2))
    else:
        print(f"{store.url}\n{describe(info)}")
    return 0
