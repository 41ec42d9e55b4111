"""``bigarrays ingest``: copy a TIFF stack, a ``.npy`` or another precomputed dataset into a dataset.

The source is read in z-slabs one chunk deep (memory stays bounded by one slab) and written
chunk-aligned. Ingest is resumable: before each slab it asks the destination which chunks are
missing (``BigArray.missing_chunks``) and writes only those, so re-running an interrupted
ingest never rewrites a finished chunk. With more than one mip, coarser scales are then made
from the next finer one (mean for images, striding for segmentations), slab by slab, the same
resumable way.

Public helpers (:func:`open_source`, :func:`ingest`, :func:`downsample_mips`) are also used by
``bigarrays demo``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from bigarrays_cli.args import ints3

import bigarrays_core as bc
from bigarrays_core.geometry import Box

__all__ = ["ArraySource", "IngestReport", "Source", "add", "downsample_mips", "ingest", "open_source"]

Progress = Callable[[int], None]


class Source(Protocol):
    """A readable volume: ``shape`` is (X, Y, Z, C); ``read_z(z0, z1)`` returns (X, Y, z1-z0, C)."""

    name: str
    shape: tuple[int, int, int, int]
    dtype: np.dtype[Any]
    defaults: dict[str, Any]  # create() arguments the source suggests (resolution, encoding, ...)

    def read_z(self, z0: int, z1: int) -> np.ndarray: ...


@dataclass
class ArraySource:
    """An in-memory or memory-mapped array in (x, y, z) or (x, y, z, c) order."""

    array: np.ndarray
    name: str = "array"

    def __post_init__(self) -> None:
        if self.array.ndim == 3:
            self.array = self.array[..., np.newaxis]
        if self.array.ndim != 4:
            raise bc.BigArraysError(f"{self.name}: expected a 3-D (x, y, z) or 4-D (x, y, z, c) array, "
                                    f"got shape {self.array.shape}")
        self.shape = tuple(int(n) for n in self.array.shape)  # type: ignore[assignment]
        self.dtype = self.array.dtype
        self.defaults: dict[str, Any] = {}

    def read_z(self, z0: int, z1: int) -> np.ndarray:
        return np.asarray(self.array[:, :, z0:z1, :])


class TiffSource:
    """A multi-page TIFF file or a directory of single-page TIFFs sorted by name; pages are (y, x[, c])."""

    def __init__(self, path: str) -> None:
        import tifffile

        self.name = path
        if os.path.isdir(path):
            files = sorted(f for f in os.listdir(path) if f.lower().endswith((".tif", ".tiff")))
            if not files:
                raise bc.BigArraysError(f"{path}: the directory has no .tif/.tiff files")
            self._files = [os.path.join(path, f) for f in files]
            first = self._page(0)
            depth = len(files)
        else:
            self._files = []
            with tifffile.TiffFile(path) as tif:
                first = tif.pages[0].asarray()
                depth = len(tif.pages)
        if first.ndim not in (2, 3):
            raise bc.BigArraysError(f"{path}: pages must be 2-D (y, x) or (y, x, c), got shape {first.shape}")
        c = first.shape[2] if first.ndim == 3 else 1
        self.shape = (int(first.shape[1]), int(first.shape[0]), depth, int(c))
        self.dtype = first.dtype
        self.defaults: dict[str, Any] = {}

    def _page(self, z: int) -> np.ndarray:
        import tifffile

        try:
            page = tifffile.imread(self._files[z])
        except Exception as exc:  # tifffile raises many types for a damaged file
            raise bc.BigArraysError(f"cannot read TIFF {self._files[z]} (z={z}): {exc}") from exc
        return np.asarray(page)

    def read_z(self, z0: int, z1: int) -> np.ndarray:
        import tifffile

        if self._files:
            pages = [self._page(z) for z in range(z0, z1)]
        else:
            with tifffile.TiffFile(self.name) as tif:
                pages = [tif.pages[z].asarray() for z in range(z0, z1)]
        want = (self.shape[1], self.shape[0]) + ((self.shape[3],) if self.shape[3] > 1 else ())
        for z, p in zip(range(z0, z1), pages):
            if p.shape != want or p.dtype != self.dtype:
                where = self._files[z] if self._files else f"{self.name} page {z}"
                raise bc.BigArraysError(f"{where}: page has shape {p.shape} {p.dtype}, expected {want} {self.dtype}")
        stack = np.stack(pages)  # (z, y, x[, c])
        if stack.ndim == 3:
            stack = stack[..., np.newaxis]
        return stack.transpose(2, 1, 0, 3)


class PrecomputedSource:
    """Scale ``mip`` of another precomputed dataset; z counts from its voxel offset."""

    def __init__(self, url: str, mip: int = 0) -> None:
        self.ba = bc.open(url, mip=mip, read_only=True)
        self.name = self.ba.url
        self.shape = self.ba.shape
        self.dtype = self.ba.dtype
        self.defaults = {"resolution": list(self.ba.resolution), "voxel_offset": list(self.ba.voxel_offset),
                         "chunk_size": list(self.ba.chunk_size), "encoding": self.ba.encoding,
                         "compression": self.ba.compression, "layer_type": self.ba.parsed_info.layer_type}

    def read_z(self, z0: int, z1: int) -> np.ndarray:
        o = self.ba.voxel_offset
        return self.ba.read(Box((o[0], o[1], o[2] + z0), (o[0] + self.shape[0], o[1] + self.shape[1], o[2] + z1)))


def open_source(spec: str) -> Source:
    """Pick the reader for ``spec``: a URL or a directory with an ``info`` is precomputed, another
    directory a TIFF stack, ``*.npy`` a numpy file (x, y, z[, c]), ``*.tif``/``*.tiff`` a multi-page TIFF."""
    if "://" in spec or os.path.isfile(os.path.join(spec, "info")):
        return PrecomputedSource(spec)
    if os.path.isdir(spec) or spec.lower().endswith((".tif", ".tiff")):
        if not os.path.exists(spec):
            raise bc.BigArraysError(f"source {spec!r} does not exist")
        return TiffSource(spec)
    if spec.lower().endswith(".npy"):
        if not os.path.exists(spec):
            raise bc.BigArraysError(f"source {spec!r} does not exist")
        return ArraySource(np.load(spec, mmap_mode="r"), name=spec)
    raise bc.BigArraysError(f"source {spec!r}: expected a .tif/.tiff file, a directory of TIFFs, a .npy file "
                            f"or a precomputed dataset (a URL or a directory with an info)")


@dataclass
class IngestReport:
    """Chunks written and chunks skipped because they already existed, over all mips."""

    written: int = 0
    skipped: int = 0


def _cast(data: np.ndarray, dtype: np.dtype[Any], where: str) -> np.ndarray:
    """``data`` as ``dtype``; refuses values the destination cannot hold instead of wrapping them."""
    if data.dtype == dtype or np.can_cast(data.dtype, dtype, "safe"):
        return data.astype(dtype, copy=False)
    if np.issubdtype(dtype, np.integer) and data.size:
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        if data.min() < lo or data.max() > hi or (np.issubdtype(data.dtype, np.floating)
                                                  and not np.all(np.mod(data, 1) == 0)):
            raise bc.WriteDataError(f"{where}: {data.dtype.name} values do not fit {dtype.name} "
                                    f"(range {data.min()}..{data.max()})")
    return data.astype(dtype)


def _z_slabs(ba: bc.BigArray, target: Box) -> Iterator[Box]:
    """``target`` cut at the chunk grid's z boundaries."""
    cz, oz = ba.chunk_size[2], ba.voxel_offset[2]
    z = target.start[2]
    while z < target.stop[2]:
        nxt = min(oz + ((z - oz) // cz + 1) * cz, target.stop[2])
        yield Box((target.start[0], target.start[1], z), (target.stop[0], target.stop[1], nxt))
        z = nxt


def _write_missing(ba: bc.BigArray, slab: Box, read: Callable[[], np.ndarray], report: IngestReport,
                   progress: Progress) -> None:
    """Write the chunks of ``slab`` that are not stored yet, from ``read()`` (the slab's data)."""
    refs = ba.chunks(slab)
    missing = ba.missing_chunks(slab)
    report.skipped += len(refs) - len(missing)
    if missing:
        data = _cast(read(), ba.dtype, f"{ba.url} mip {ba.mip} {slab}")
        if len(missing) == len(refs):
            ba.write(slab, data)
        else:
            for ref in missing:
                part = ref.box.intersect(slab)
                ba.write(part, data[part.slices_in(slab)])
        report.written += len(missing)
    progress(len(refs))


def ingest(source: Source, ba: bc.BigArray, *, offset: Sequence[int] | None = None,
           progress: Progress = lambda n: None, report: IngestReport | None = None) -> IngestReport:
    """Write ``source`` into mip ``ba.mip`` with its first voxel at ``offset`` (default ``ba.voxel_offset``).

    Skips chunks that already exist. Raises :class:`bigarrays_core.OutOfBoundsError` naming
    both boxes when the source does not fit inside the destination's bounds.
    """
    report = report or IngestReport()
    off = tuple(offset) if offset is not None else ba.voxel_offset
    target = Box.from_shape(off, source.shape[:3])
    if not ba.bounds.contains(target) or source.shape[3] != ba.num_channels:
        raise bc.OutOfBoundsError(
            f"source {source.name} ({'x'.join(map(str, source.shape))}, x y z c) placed at {target} does not fit "
            f"{ba.url} mip {ba.mip} (bounds {ba.bounds}, {ba.num_channels} channel(s))")
    for slab in _z_slabs(ba, target):
        z0 = slab.start[2] - target.start[2]
        _write_missing(ba, slab, lambda z0=z0, slab=slab: source.read_z(z0, z0 + slab.shape[2]), report, progress)
    return report


def _factor(fine: bc.BigArray, coarse: bc.BigArray) -> tuple[int, int, int]:
    f = tuple(max(1, round(c / r)) for c, r in zip(coarse.resolution, fine.resolution))
    return f  # type: ignore[return-value]


def _reduce(block: np.ndarray, f: tuple[int, int, int], method: str) -> np.ndarray:
    """Downsample a (x, y, z, c) block whose x, y, z are multiples of ``f``."""
    if method == "stride":
        return block[:: f[0], :: f[1], :: f[2], :]
    x, y, z, c = block.shape
    # In Fortran order the within-block offset must be the faster (first) index of each pair.
    r = block.reshape(f[0], x // f[0], f[1], y // f[1], f[2], z // f[2], c, order="F")
    mean = r.mean(axis=(0, 2, 4), dtype=np.float64)
    if np.issubdtype(block.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(block.dtype)


def downsample_mips(ba0: bc.BigArray, region: Box, *, mips: int, method: str,
                    progress: Progress = lambda n: None, report: IngestReport | None = None) -> IngestReport:
    """Fill mips 1..mips-1 over ``region`` (mip 0 coordinates) from the next finer mip.

    ``method`` is ``"mean"`` (images) or ``"stride"`` (segmentations: every f-th voxel, so
    labels stay labels). Existing chunks are skipped.
    """
    report = report or IngestReport()
    fine = ba0
    box = region
    for k in range(1, mips):
        coarse = ba0.at_mip(k)
        f = _factor(fine, coarse)
        box = Box(tuple(s // fi for s, fi in zip(box.start, f)), tuple(-(-e // fi) for e, fi in zip(box.stop, f)))
        box = box.intersect(coarse.bounds)
        for slab in _z_slabs(coarse, box):
            def read(slab: Box = slab, fine: bc.BigArray = fine, f: tuple[int, int, int] = f) -> np.ndarray:
                src = Box(tuple(s * fi for s, fi in zip(slab.start, f)), tuple(e * fi for e, fi in zip(slab.stop, f)))
                inner = src.intersect(fine.bounds)
                data = fine.read(inner)
                pad = [(a - b, c - d) for a, b, c, d in zip(inner.start, src.start, src.stop, inner.stop)]
                if any(p != (0, 0) for p in pad):  # odd edges: repeat the last voxels rather than average in zeros
                    data = np.pad(data, pad + [(0, 0)], mode="edge")
                return _reduce(data, f, method)
            _write_missing(coarse, slab, read, report, progress)
        fine = coarse
    return report


# -- the command ---------------------------------------------------------------------------
def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ingest", help="copy a TIFF stack, a .npy or a precomputed dataset into a dataset (resumable)",
        description="Copy SOURCE into the precomputed dataset DEST, creating it if needed. SOURCE is a multi-page "
                    ".tif, a directory of single-page .tif files (sorted by name, pages are y, x), a .npy of shape "
                    "(x, y, z[, c]) or a precomputed URL/directory. Reads z-slabs one chunk deep, writes only "
                    "chunks that are missing (re-run to resume; existing chunks are never overwritten), then "
                    "builds --mips scales.")
    p.add_argument("source")
    p.add_argument("dest", help="a path, file://, memory://, gs://, s3://")
    p.add_argument("--dtype", default=None, help="destination dtype (default: the source's)")
    p.add_argument("--chunk-size", default=None, **ints3(3, "chunk"), help="default 64 64 64 (or the source's)")
    p.add_argument("--resolution", nargs=3, type=float, default=None, metavar=("X", "Y", "Z"),
                   help="voxel size in nm (default 1 1 1 or the source's)")
    p.add_argument("--voxel-offset", default=None, **ints3(3, "offset"),
                   help="where the source's first voxel goes (default: the dataset's voxel offset)")
    p.add_argument("--encoding", default=None, choices=["raw", "jpeg", "png", "compressed_segmentation"])
    p.add_argument("--compression", default=None, choices=["none", "gzip", "zstd", "blosc"])
    p.add_argument("--compression-level", type=int, default=None)
    p.add_argument("--layer-type", default=None, choices=["image", "segmentation"])
    p.add_argument("--mips", type=int, default=1, help="scales to fill (declared when creating; default 1)")
    p.add_argument("--downsample", default=[2, 2, 1], **ints3(3, "factor"), help="factor between scales (2 2 1)")
    p.add_argument("--method", default="auto", choices=["auto", "mean", "stride"],
                   help="downsampling: mean for images, stride for segmentations (auto picks by layer type)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_ingest)


def _open_or_create(args: argparse.Namespace, source: Source) -> bc.BigArray:
    d = source.defaults
    try:
        ba = bc.open(args.dest)
    except bc.DatasetNotFoundError:
        compression: Any = d.get("compression") if args.compression is None else args.compression
        if compression == "none":
            compression = None
        if compression and args.compression_level is not None:
            compression = {"id": compression if isinstance(compression, str) else compression["id"],
                           "level": args.compression_level}
        return bc.create(
            args.dest, dtype=args.dtype or source.dtype.name,
            size=source.shape[:3], num_channels=source.shape[3],
            chunk_size=args.chunk_size or d.get("chunk_size", (64, 64, 64)),
            resolution=args.resolution or d.get("resolution", (1, 1, 1)),
            voxel_offset=args.voxel_offset or d.get("voxel_offset", (0, 0, 0)),
            encoding=args.encoding or d.get("encoding", "raw"), compression=compression,
            layer_type=args.layer_type or d.get("layer_type"), num_mips=args.mips,
            downsample_factor=args.downsample)
    checks = [("dtype", args.dtype and np.dtype(args.dtype), ba.dtype),
              ("chunk_size", args.chunk_size and tuple(args.chunk_size), ba.chunk_size),
              ("resolution", args.resolution and tuple(args.resolution), tuple(float(r) for r in ba.resolution)),
              ("encoding", args.encoding, ba.encoding)]
    for field, wanted, have in checks:
        if wanted and wanted != have:
            raise bc.InfoError(f"{args.dest} exists with {field} {have}, but --{field.replace('_', '-')} "
                               f"asks for {wanted}; ingest into a new DEST or drop the option", field=field)
    if args.mips > ba.num_mips:
        raise bc.InfoError(f"{args.dest} declares {ba.num_mips} scale(s); cannot fill --mips {args.mips}",
                           field="scales")
    return ba


def run_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    source = open_source(args.source)
    ba = _open_or_create(args, source)
    offset = tuple(args.voxel_offset) if args.voxel_offset else ba.voxel_offset
    region = Box.from_shape(offset, source.shape[:3])
    if not ba.grid.is_aligned(region.intersect(ba.bounds)):
        ba = bc.open(args.dest, non_aligned_writes=True)  # the source covers part of a chunk: read-modify-write
    method = args.method if args.method != "auto" else (
        "stride" if ba.parsed_info.layer_type == "segmentation" else "mean")
    total = len(ba.chunks(region)) + sum(
        len(ba.at_mip(k).chunks(_scaled(region, ba, k))) for k in range(1, args.mips))
    with tqdm(total=total, unit="chunk", desc=f"ingest {os.path.basename(args.source.rstrip('/'))}",
              disable=args.quiet) as bar:
        report = ingest(source, ba, offset=offset, progress=bar.update)
        downsample_mips(ba, region, mips=args.mips, method=method, progress=bar.update, report=report)
    print(f"ingested {source.name} -> {ba.url}: {report.written} chunk(s) written, "
          f"{report.skipped} already present")
    return 0


def _scaled(region: Box, ba: bc.BigArray, k: int) -> Box:
    """``region`` (mip 0) in mip ``k`` coordinates, rounded outwards."""
    f = [round(c / r) for c, r in zip(ba.at_mip(k).resolution, ba.resolution)]
    return Box(tuple(s // fi for s, fi in zip(region.start, f)), tuple(-(-e // fi) for e, fi in zip(region.stop, f)))
