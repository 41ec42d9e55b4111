"""``bigarrays cutout``: save a region to a file."""

from __future__ import annotations

import argparse
from typing import Any

import bigarrays_core as bc
import numpy as np

from bigarrays_core.geometry import Box


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cutout", help="save a region of a dataset to a .npy file",
                       description="Cut out BBOX ('x0:x1,y0:y1,z0:z1' or 'x0-x1_y0-y1_z0-z1', absolute voxel "
                                   "coordinates of the mip) and save it as .npy with shape (x, y, z, c).")
    p.add_argument("url")
    p.add_argument("bbox", help="x0:x1,y0:y1,z0:z1 (negative coordinates allowed)")
    p.add_argument("-o", "--output", required=True, help="output .npy path")
    p.add_argument("--mip", type=int, default=0)
    p.add_argument("--no-fill-missing", action="store_true", help="fail if a chunk is missing instead of zeros")
    p.add_argument("--bounded", action="store_true", help="fail if the box leaves the volume instead of zeros")
    p.set_defaults(run=run_cutout)


def run_cutout(args: argparse.Namespace) -> int:
    box = Box.parse(args.bbox)
    ba = bc.open(args.url, mip=args.mip, read_only=True, fill_missing=not args.no_fill_missing,
                 bounded=args.bounded)
    out = ba.read(box)
    if not args.output.endswith(".npy"):
        raise bc.BigArraysError(f"output {args.output!r} must end in .npy")
    np.save(args.output, out)
    print(f"saved {box} mip {args.mip} of {ba.url} -> {args.output} (shape {out.shape}, {out.dtype})")
    return 0
