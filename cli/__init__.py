"""The ``bigarrays`` command line: one tool, one module per subcommand.

Each subcommand module has ``add(subparsers)`` registering its parser with a ``run``
function. Errors print one line naming what was wrong and exit with status 1 (2 for
bad usage), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import bigarrays_core as bc

__all__ = ["COMMANDS", "build_parser", "main"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = [
    "bigarrays_cli.serve",
    "bigarrays_cli.demo",
    "bigarrays_cli.create",
    "bigarrays_cli.info",
    "bigarrays_cli.cutout",
    "bigarrays_cli.ingest",
    "bigarrays_cli.downsample",
    "bigarrays_cli.transfer",
    "bigarrays_cli.missing",
    "bigarrays_cli.verify",
]


def build_parser() -> argparse.ArgumentParser:
    """The ``bigarrays`` parser with every subcommand of :data:`COMMANDS` registered."""
    parser = argparse.ArgumentParser(
        prog="bigarrays", description="Cut out and save regions of Neuroglancer precomputed volumes.")
    parser.add_argument("--version", action="version", version=f"bigarrays {bc.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # e.g. `bigarrays missing ... | head`: the reader left, say nothing
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (bc.BigArraysError, OSError, ValueError) as exc:
        print(f"bigarrays {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError as exc:  # numpy's says how much it could not allocate
        print(f"bigarrays {args.command}: error: out of memory: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bigarrays {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
