"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_sharding_options", "ints3", "sharding_of"]


def ints3(n: int, name: str) -> dict[str, Any]:
    return {"nargs": n, "type": int, "metavar": tuple(f"{a}" for a in "XYZ"[:n]) if n == 3 else name}


def _sharding_json(text: str) -> dict[str, Any]:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--sharding is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise argparse.ArgumentTypeError(f"--sharding must be a JSON object, got {text!r}")
    return spec


def add_sharding_options(p: argparse.ArgumentParser, what: str = "every scale") -> None:
    """``--sharded`` (a spec bigarrays chooses for the volume) or ``--sharding JSON`` (yours)."""
    shard = p.add_mutually_exclusive_group()
    shard.add_argument("--sharded", action="store_true",
                       help=f"store {what} sharded, with a spec chosen for the volume (see docs/format.md)")
    shard.add_argument("--sharding", type=_sharding_json, default=None, metavar="JSON",
                       help=f'store {what} sharded with this spec, e.g. \'{{"@type": '
                            '"neuroglancer_uint64_sharded_v1", "preshift_bits": 9, "hash": "identity", '
                            '"minishard_bits": 6, "shard_bits": 15, "minishard_index_encoding": "gzip", '
                            '"data_encoding": "gzip"}\'')


def sharding_of(args: argparse.Namespace) -> dict[str, Any] | bool | None:
    """What ``bc.create(sharding=...)`` takes for the options :func:`add_sharding_options` added."""
    if args.sharding is not None:
        return dict(args.sharding)
    return True if args.sharded else None
