"""``bigarrays cutout``: save a region to a file."""

from __future__ import annotations

import argparse
import re

import numpy as np
from bigarrays_cli.sizes import ByteSize, available_memory, format_bytes, parse_bytes

import bigarrays_core as bc
from bigarrays_core.geometry import Box

#: A bbox that starts with a negative coordinate ("-64:0,0:64,0:64", "-64-0_0-64_0-64").
_NEGATIVE_BBOX = re.compile(r"^-\d[\d:,_\-]*$")


def allow_negative_bbox(parser: argparse.ArgumentParser) -> None:
    """Let a positional bbox start with '-': argparse would take it for an option.

    argparse only treats arguments matching its negative-number pattern as values; widening
    that pattern to bboxes is safe because no option of these parsers starts with "-<digit>".
    """
    parser._negative_number_matcher = _NEGATIVE_BBOX


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cutout", help="save a region of a dataset to a .npy or .tif file",
                       description="Cut out BBOX ('x0:x1,y0:y1,z0:z1' or 'x0-x1_y0-y1_z0-z1', absolute voxel "
                                   "coordinates of the mip) and save it as .npy with shape (x, y, z, c), or as a "
                                   "multi-page .tif/.tiff with one (y, x[, c]) page per z.")
    p.add_argument("url")
    p.add_argument("bbox", help="x0:x1,y0:y1,z0:z1 (negative coordinates allowed)")
    p.add_argument("-o", "--output", required=True, help="output path ending in .npy, .tif or .tiff")
    p.add_argument("--mip", type=int, default=0)
    p.add_argument("--no-fill-missing", action="store_true", help="fail if a chunk is missing instead of zeros")
    p.add_argument("--bounded", action="store_true", help="fail if the box leaves the volume instead of zeros")
    p.add_argument("--max-bytes", type=parse_bytes, default=None, metavar="SIZE",
                   help="refuse a cutout bigger than SIZE (e.g. 500M, 8GiB; default: the memory available)")
    allow_negative_bbox(p)
    p.set_defaults(run=run_cutout)


def save_tiff(path: str, data: np.ndarray) -> None:
    """Save (x, y, z, c) ``data`` as a multi-page TIFF: page z is (y, x), or (y, x, c) for c > 1."""
    import tifffile

    pages = data.transpose(2, 1, 0, 3)  # (z, y, x, c)
    if pages.shape[3] == 1:
        tifffile.imwrite(path, np.ascontiguousarray(pages[..., 0]), photometric="minisblack",
                         metadata={"axes": "ZYX"})
    else:
        tifffile.imwrite(path, np.ascontiguousarray(pages), photometric="minisblack", planarconfig="contig",
                         metadata={"axes": "ZYXS"})


def check_box(box: Box, text: str) -> None:
    """A box empty on some axis is an error naming the axis (as the server's 400 is)."""
    for axis, a, b in zip("xyz", box.start, box.stop):
        if b <= a:
            raise bc.SelectionError(f"bad bbox {text!r}: axis {axis} range {a}:{b} is empty (need start < stop)")


def check_size(box: Box, ba: bc.BigArray, output: str, max_bytes: ByteSize | None) -> None:
    """Refuse a cutout that cannot fit in memory (or above ``--max-bytes``), saying how big it is."""
    nbytes = box.size * ba.num_channels * ba.dtype.itemsize
    need = nbytes * (1 if output.lower().endswith(".npy") else 2)  # a TIFF is written from a reordered copy
    what = (f"cutout {box} of {ba.url} mip {ba.mip} is {format_bytes(nbytes)} "
            f"({'x'.join(map(str, box.shape))}x{ba.num_channels} {ba.dtype.name})"
            + ("" if need == nbytes else f", and a .tif needs {format_bytes(need)} while it is written"))
    if max_bytes is not None:
        if need > max_bytes:
            raise bc.BigArraysError(f"{what}: more than --max-bytes {max_bytes.text} "
                                    f"({format_bytes(max_bytes)}); cut a smaller box or raise --max-bytes")
        return
    available = available_memory()
    if available is not None and need > available:
        raise bc.BigArraysError(f"{what}: more than the {format_bytes(available)} of memory available; cut a "
                                f"smaller box, or pass --max-bytes SIZE to set the limit yourself")


def run_cutout(args: argparse.Namespace) -> int:
    if not args.output.lower().endswith((".npy", ".tif", ".tiff")):
        raise bc.BigArraysError(f"output {args.output!r} must end in .npy, .tif or .tiff")
    box = Box.parse(args.bbox)
    check_box(box, args.bbox)
    ba = bc.open(args.url, mip=args.mip, read_only=True, fill_missing=not args.no_fill_missing)
    if args.bounded and not ba.bounds.contains(box):
        raise bc.OutOfBoundsError(f"cannot read {box} of {ba.url} mip {ba.mip}: it reaches outside the volume "
                                  f"{ba.bounds} (--bounded)")
    check_size(box, ba, args.output, args.max_bytes)
    try:
        out = ba.read(box)
    except bc.ChunkNotFoundError as exc:
        raise bc.ChunkNotFoundError(f"chunk {ba.store.describe(exc.key or '?')} is missing; drop --no-fill-missing "
                                    f"to read zeros there", key=exc.key) from None
    if args.output.lower().endswith(".npy"):
        np.save(args.output, out)
    else:
        save_tiff(args.output, out)
    print(f"saved {box} mip {args.mip} of {ba.url} -> {args.output} (shape {out.shape}, {out.dtype})")
    return 0
