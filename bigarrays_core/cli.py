"""The ``bigarrays`` command line.

``bigarrays create URL --dtype D --size X Y Z ...`` makes a dataset,
``bigarrays info URL`` summarises one, ``bigarrays cutout URL BBOX -o out.npy`` saves a
region. Errors print one line naming what was wrong and exit with status 1 (2 for bad
usage), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

import bigarrays_core as bc
from bigarrays_core.geometry import Box

__all__ = ["build_parser", "main"]


def _ints(n: int, name: str) -> dict[str, Any]:
    return {"nargs": n, "type": int, "metavar": tuple(f"{a}" for a in "XYZ"[:n]) if n == 3 else name}


def _add_create(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("create", help="create a new precomputed dataset (writes its info)",
                       description="Create a new precomputed dataset: writes the info, no chunks.")
    p.add_argument("url", help="where: a path, file://, memory://, gs://, s3://")
    p.add_argument("--dtype", required=True, help="uint8, uint16, uint32, uint64, int8..int64, float32, float64, bool")
    p.add_argument("--size", required=True, **_ints(3, "size"), help="volume size in voxels")
    p.add_argument("--chunk-size", default=[64, 64, 64], **_ints(3, "chunk"), help="chunk size (default 64 64 64)")
    p.add_argument("--resolution", nargs=3, type=float, default=[1.0, 1.0, 1.0], metavar=("X", "Y", "Z"),
                   help="voxel size in nm (default 1 1 1)")
    p.add_argument("--voxel-offset", default=[0, 0, 0], **_ints(3, "offset"), help="first voxel (may be negative)")
    p.add_argument("--channels", type=int, default=1, help="number of channels (default 1)")
    p.add_argument("--encoding", default="raw", choices=["raw", "jpeg", "png", "compressed_segmentation"])
    p.add_argument("--compression", default=None, choices=["none", "gzip", "zstd", "blosc"],
                   help="byte compression on top of the encoding (default none)")
    p.add_argument("--compression-level", type=int, default=None, help="level for --compression")
    p.add_argument("--layer-type", default=None, choices=["image", "segmentation"])
    p.add_argument("--mips", type=int, default=1, help="number of scales to declare (default 1)")
    p.add_argument("--downsample", default=[2, 2, 1], **_ints(3, "factor"),
                   help="factor between scales (default 2 2 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing info")
    p.set_defaults(run=_run_create)


def _run_create(args: argparse.Namespace) -> int:
    compression: Any = args.compression
    if compression and compression != "none" and args.compression_level is not None:
        compression = {"id": compression, "level": args.compression_level}
    ba = bc.create(args.url, dtype=args.dtype, size=args.size, chunk_size=args.chunk_size,
                   resolution=args.resolution, voxel_offset=args.voxel_offset, num_channels=args.channels,
                   encoding=args.encoding, compression=compression, layer_type=args.layer_type,
                   num_mips=args.mips, downsample_factor=args.downsample, overwrite=args.overwrite)
    print(f"created {ba.url}: {describe(ba)}")
    return 0


def describe(ba: bc.BigArray) -> str:
    """A one-paragraph summary of every scale of a dataset."""
    info = ba.parsed_info
    lines = [f"{info.layer_type}, {info.data_type}, {info.num_channels} channel(s), {len(info.scales)} scale(s)"]
    for s in info.scales:
        bounds = Box.from_shape(s.voxel_offset, s.size)
        comp = f"+{s.compression['id']}" if s.compression else ""
        res = "x".join(f"{r:g}" for r in s.resolution)
        grid = "x".join(str(-(-n // c)) for n, c in zip(s.size, s.chunk_size))
        lines.append(
            f"  mip {s.index}: key {s.key!r}, {res} nm, bounds {bounds} (size {'x'.join(map(str, s.size))}), "
            f"chunks {'x'.join(map(str, s.chunk_size))} ({grid} grid), {s.encoding}{comp}"
            + (", sharded" if s.sharding else "")
        )
    return "\n".join(lines)


def _add_info(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="summarise a dataset's scales, bounds, chunking and encodings",
                       description="Print a readable summary of a dataset (or its info JSON with --json).")
    p.add_argument("url")
    p.add_argument("--json", action="store_true", help="print the info JSON instead")
    p.set_defaults(run=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    ba = bc.open(args.url, read_only=True)
    if args.json:
        print(json.dumps(ba.info, indent=2))
    else:
        print(f"{ba.url}\n{describe(ba)}")
    return 0


def _add_cutout(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cutout", help="save a region of a dataset to a .npy file",
                       description="Cut out BBOX ('x0:x1,y0:y1,z0:z1' or 'x0-x1_y0-y1_z0-z1', absolute voxel "
                                   "coordinates of the mip) and save it as .npy with shape (x, y, z, c).")
    p.add_argument("url")
    p.add_argument("bbox", help="x0:x1,y0:y1,z0:z1 (negative coordinates allowed)")
    p.add_argument("-o", "--output", required=True, help="output .npy path")
    p.add_argument("--mip", type=int, default=0)
    p.add_argument("--no-fill-missing", action="store_true", help="fail if a chunk is missing instead of zeros")
    p.add_argument("--bounded", action="store_true", help="fail if the box leaves the volume instead of zeros")
    p.set_defaults(run=_run_cutout)


def _run_cutout(args: argparse.Namespace) -> int:
    box = Box.parse(args.bbox)
    ba = bc.open(args.url, mip=args.mip, read_only=True, fill_missing=not args.no_fill_missing,
                 bounded=args.bounded)
    out = ba.read(box)
    if not args.output.endswith(".npy"):
        raise bc.BigArraysError(f"output {args.output!r} must end in .npy")
    np.save(args.output, out)
    print(f"saved {box} mip {args.mip} of {ba.url} -> {args.output} (shape {out.shape}, {out.dtype})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bigarrays", description="Cut out and save regions of Neuroglancer precomputed volumes.")
    parser.add_argument("--version", action="version", version=f"bigarrays {bc.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (_add_create, _add_info, _add_cutout):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except bc.BigArraysError as exc:
        print(f"bigarrays {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"bigarrays {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bigarrays {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
