"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bigarrays_core.codecs import COMPRESSIONS, known_encodings
from bigarrays_core.errors import BigArraysError
from bigarrays_core.format import default_compression
from bigarrays_core.transfer import KEEP

__all__ = ["add_codec_options", "add_sharding_options", "compression_of", "encoding_settings_of", "ints3",
           "sharding_of"]


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


def _encoding(text: str) -> str:
    name = text.strip().lower()
    if name not in known_encodings():
        raise argparse.ArgumentTypeError(f"unknown encoding {text!r}; choose from {', '.join(known_encodings())}")
    return name


def _compression(text: str) -> str:
    name = text.strip().lower()
    if name not in ("none", *COMPRESSIONS):
        raise argparse.ArgumentTypeError(f"unknown compression {text!r}; choose from none, {', '.join(COMPRESSIONS)}")
    return name


def add_codec_options(p: argparse.ArgumentParser, *, encoding_help: str, compression_help: str,
                      encoding_default: str | None = None) -> None:
    """``--encoding NAME`` (any encoding bigarrays writes, from the codec registry),
    ``--compression NAME`` (none or a byte compression, ``br`` is brotli) and
    ``--compression-level N``. An unknown name is a one-line error listing the choices."""
    p.add_argument("--encoding", type=_encoding, default=encoding_default, metavar="NAME",
                   help=f"{encoding_help}; one of {', '.join(known_encodings())}")
    p.add_argument("--compression", type=_compression, default=None, metavar="NAME",
                   help=f"{compression_help}; one of none, {', '.join(COMPRESSIONS)} (br: brotli)")
    p.add_argument("--compression-level", type=int, default=None, help="level for --compression")
    p.add_argument("--encoding-setting", type=_setting, action="append", default=[], metavar="NAME=VALUE",
                   help="a setting of the encoding, named as in the info (repeatable): jpeg_quality=90, "
                        "jxl_quality=100, png_level=6, fpzip_precision=16, zfpc_tolerance=0.01, "
                        "compressed_segmentation_block_size=[8,8,8]")


def _setting(text: str) -> tuple[str, Any]:
    name, eq, value = text.partition("=")
    if not eq or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"--encoding-setting {text!r}: expected NAME=VALUE, e.g. jxl_quality=90")
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value.strip()
    return name.strip(), parsed


def encoding_settings_of(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``encoding_settings=`` of the core for the ``--encoding-setting`` options given
    (a later one of a name wins), or None when none is."""
    return dict(args.encoding_setting) or None


def compression_of(name: str | None, level: int | None, default: Any, encoding: str | None = None,
                   sharded: bool = False) -> Any:
    """The ``compression=`` argument of the core for ``--compression name --compression-level
    level``: ``default`` when neither is given, None for ``none``, else the name or a spec
    with the level. A level alone applies to the default compression (``"auto"`` resolved
    for ``encoding``); where that is none, or not known here, it is an error naming the
    option rather than a level silently ignored."""
    if name == "none":
        if level is not None:
            raise BigArraysError(f"--compression-level {level} with --compression none: nothing to set the level of")
        return None
    if name is not None:
        return name if level is None else {"id": name, "level": level}
    if level is None:
        return default
    base = default_compression(encoding or "raw", sharded) if default == "auto" else default
    if isinstance(base, str) and base != KEEP:
        return {"id": base, "level": level}
    if isinstance(base, dict):
        return {**base, "level": level}
    what = "none" if base is None else "the source's"
    raise BigArraysError(f"--compression-level {level}: without --compression the compression is {what}; "
                         "name one with --compression")
