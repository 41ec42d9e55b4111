"""``bigarrays create``: write a new dataset's info."""

from __future__ import annotations

import argparse

from bigarrays_cli.args import (
    add_codec_options,
    add_sharding_options,
    compression_of,
    encoding_settings_of,
    ints3,
    sharding_of,
)
from bigarrays_cli.describe import describe

import bigarrays_core as bc


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("create", help="create a new precomputed dataset (writes its info)",
                       description="Create a new precomputed dataset: writes the info, no chunks.")
    p.add_argument("url", help="where: a path, file://, memory://, gs://, s3://")
    p.add_argument("--dtype", required=True, help="uint8, uint16, uint32, uint64, int8..int64, float32, float64, bool")
    p.add_argument("--size", required=True, **ints3(3, "size"), help="volume size in voxels")
    p.add_argument("--chunk-size", default=[64, 64, 64], **ints3(3, "chunk"), help="chunk size (default 64 64 64)")
    p.add_argument("--resolution", nargs=3, type=float, default=[1.0, 1.0, 1.0], metavar=("X", "Y", "Z"),
                   help="voxel size in nm (default 1 1 1)")
    p.add_argument("--voxel-offset", default=[0, 0, 0], **ints3(3, "offset"), help="first voxel (may be negative)")
    p.add_argument("--channels", type=int, default=1, help="number of channels (default 1)")
    add_codec_options(p, encoding_default="raw", encoding_help="how chunks are encoded (default raw)",
                      compression_help="byte compression on top of the encoding (default: gzip for compresso, "
                                       "crackle, fpzip and kempressed; none otherwise)")
    p.add_argument("--layer-type", default=None, choices=["image", "segmentation"])
    p.add_argument("--mips", type=int, default=1, help="number of scales to declare (default 1)")
    p.add_argument("--downsample", default=[2, 2, 1], **ints3(3, "factor"),
                   help="factor between scales (default 2 2 1)")
    add_sharding_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing info")
    p.set_defaults(run=run_create)


def run_create(args: argparse.Namespace) -> int:
    compression = compression_of(args.compression, args.compression_level, "auto", args.encoding,
                                 sharding_of(args) is not None)
    try:
        ba = bc.create(args.url, dtype=args.dtype, size=args.size, chunk_size=args.chunk_size,
                       resolution=args.resolution, voxel_offset=args.voxel_offset, num_channels=args.channels,
                       encoding=args.encoding, encoding_settings=encoding_settings_of(args),
                       compression=compression, layer_type=args.layer_type, num_mips=args.mips,
                       downsample_factor=args.downsample, overwrite=args.overwrite, sharding=sharding_of(args))
    except bc.DatasetExistsError:
        raise bc.DatasetExistsError(f"a dataset already exists at {args.url}; pass --overwrite to replace its info "
                                    f"(its chunks stay)") from None
    print(f"created {ba.url}: {describe(ba.parsed_info)}")
    return 0
