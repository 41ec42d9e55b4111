"""Parse, validate and build the precomputed ``info`` JSON. Pure: no I/O.

:class:`Info` keeps the JSON it was made from, so fields bigarrays does not know are
preserved when the info is written again. Enums are read case-insensitively (as
Neuroglancer does) and written in lower case. ``"sharding": null`` is read as unsharded
and never written.

Besides the standard members, a scale may carry ``"compression"``: bigarrays' record of
the byte compression on top of the encoding, e.g. ``{"id": "zstd", "level": 3}`` (see
:mod:`bigarrays_core.codecs.compression`). Other tools ignore it.

How a scale is encoded is judged per scale. The geometry of every scale (key, size,
offset, resolution, chunk sizes) must be valid or the info is refused; but a scale whose
encoding is unknown, cannot store the volume's dtype or channel count, needs a package
that is not installed, or whose encoding settings or compression are invalid, only gets a
:class:`ScaleProblem` (``Scale.problem``): the other scales open, read and write, and
opening that one raises the problem's :class:`InfoError`, which names the scale (index
and key), the field and what to do.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bigarrays_core.errors import InfoError

__all__ = [
    "DTYPES",
    "ENCODINGS",
    "Info",
    "Scale",
    "ScaleProblem",
    "create_info",
    "default_compression",
    "scale_key_for",
]

#: data_type names bigarrays reads and writes (NG/TS know the first eight).
DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(name).newbyteorder("<") if name != "bool" else np.dtype(bool)
    for name in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                 "float32", "float64", "bool")
}
#: Every encoding bigarrays reads and writes (see :mod:`bigarrays_core.codecs`).
ENCODINGS = ("raw", "jpeg", "png", "compressed_segmentation", "compresso", "jxl", "crackle", "fpzip",
             "kempressed", "zfpc")
_INT64_MAX = 2**63 - 1
#: The most bytes one decoded chunk may hold (voxels x channels x itemsize): a chunk is
#: decoded in memory as a whole, so an info that declares bigger ones is refused up front.
MAX_CHUNK_BYTES = 2**31
#: Encodings of label volumes (the default layer type for them is "segmentation").
_SEGMENTATION_ENCODINGS = ("compressed_segmentation", "compresso", "crackle")
#: Encodings whose decoders do not check their input: gzip'd by default (see create_info).
_CHECKED_BY_GZIP = ("compresso", "crackle", "fpzip", "kempressed")


def default_compression(encoding: str, sharded: bool = False) -> str | None:
    """What ``compression="auto"`` means for a scale of ``encoding``: gzip for the encodings
    whose decoders trust their input (gzip's CRC-32 refuses a damaged chunk first), none
    otherwise, and none for a sharded scale (its ``data_encoding`` compresses instead)."""
    return "gzip" if encoding.lower() in _CHECKED_BY_GZIP and not sharded else None


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _vec(value: Any, where: str, *, minimum: int | None = None) -> tuple[int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(_is_int(v) for v in value):
        raise InfoError(f"{where}: expected a list of 3 integers [x, y, z], got {value!r}", field=where)
    if minimum is not None and any(v < minimum for v in value):
        raise InfoError(f"{where}: every entry must be >= {minimum}, got {list(value)!r}", field=where)
    if any(abs(int(v)) > _INT64_MAX // 2 for v in value):
        raise InfoError(f"{where}: {list(value)!r} is out of the 64-bit range", field=where)
    return (int(value[0]), int(value[1]), int(value[2]))


def _check_chunk_bytes(chunk: tuple[int, int, int], data_type: str, num_channels: int, where: str) -> None:
    """Refuse a chunk size whose decoded chunk would not fit in memory (``where`` names the field)."""
    nbytes = math.prod(chunk) * num_channels * DTYPES[data_type].itemsize
    if nbytes > MAX_CHUNK_BYTES:
        raise InfoError(
            f"{where}: a chunk of {chunk[0]}x{chunk[1]}x{chunk[2]} voxels x {num_channels} channel(s) of "
            f"{data_type} holds {nbytes} bytes; a chunk must fit in memory (at most {MAX_CHUNK_BYTES} bytes, 2 GiB)",
            field=where,
        )


def _enum(value: Any, allowed: Sequence[str], where: str) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise InfoError(f"{where}: expected one of {list(allowed)}, got {value!r}", field=where)
    return value.lower()


def scale_key_for(resolution: Sequence[float]) -> str:
    """The conventional scale key, e.g. ``"8_8_40"`` or ``"4.5_4.5_40"``."""
    parts = []
    for r in resolution:
        f = float(r)
        parts.append(str(int(f)) if f.is_integer() else repr(f))
    return "_".join(parts)


@dataclass(frozen=True)
class ScaleProblem:
    """Why one scale cannot be read or written (the dataset's other scales can)."""

    #: The info field at fault, e.g. ``"info.scales[2].encoding"``.
    field: str
    #: What is wrong, naming the field, the scale (index and key) and what to do.
    message: str
    #: The ``pip install`` argument that makes the scale usable, when a package is missing.
    install: str | None = None

    def error(self, context: str | None = None) -> InfoError:
        """The :class:`InfoError` to raise, with ``context`` (e.g. the dataset URL) first."""
        return InfoError(f"{context}: {self.message}" if context else self.message, field=self.field)


@dataclass(frozen=True)
class Scale:
    """One validated scale of an info (``index`` is its mip).

    ``problem`` is None when bigarrays can read and write the scale; otherwise it says why
    not, and ``encoding`` and ``compression`` are as given (``compression`` None when it is
    the culprit).
    """

    index: int
    key: str
    size: tuple[int, int, int]
    voxel_offset: tuple[int, int, int]
    resolution: tuple[float, float, float]
    chunk_sizes: tuple[tuple[int, int, int], ...]
    encoding: str
    compressed_segmentation_block_size: tuple[int, int, int] | None
    jpeg_quality: int | None
    png_level: int | None
    compression: dict[str, Any] | None
    sharding: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    problem: ScaleProblem | None = field(default=None, compare=False)

    @property
    def chunk_size(self) -> tuple[int, int, int]:
        """The chunk size bigarrays reads and writes (the first of ``chunk_sizes``)."""
        return self.chunk_sizes[0]

    @property
    def usable(self) -> bool:
        """Whether bigarrays can read and write this scale (``problem`` is None)."""
        return self.problem is None


def _parse_scale(raw: Any, index: int, data_type: str, num_channels: int) -> Scale:
    where = f"info.scales[{index}]"
    if not isinstance(raw, Mapping):
        raise InfoError(f"{where}: expected an object, got {raw!r}", field=where)
    for name in ("key", "size", "resolution", "chunk_sizes", "encoding"):
        if name not in raw:
            raise InfoError(f"{where}.{name}: missing (required)", field=f"{where}.{name}")
    key = raw["key"]
    if not isinstance(key, str) or not key.strip("/"):
        raise InfoError(f"{where}.key: expected a non-empty string, got {key!r}", field=f"{where}.key")
    parts = key.strip("/").split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise InfoError(
            f"{where}.key: {key!r} is not supported (keys with empty, '.' or '..' parts would "
            "leave the dataset's directory)",
            field=f"{where}.key",
        )
    size = _vec(raw["size"], f"{where}.size", minimum=0)
    voxel_offset = _vec(raw.get("voxel_offset", [0, 0, 0]), f"{where}.voxel_offset")
    if any(abs(o + s) > _INT64_MAX // 2 for o, s in zip(voxel_offset, size)):
        raise InfoError(f"{where}.size: voxel_offset + size overflows 64 bits", field=f"{where}.size")
    res = raw["resolution"]
    if (
        not isinstance(res, (list, tuple)) or len(res) != 3
        or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r) and r > 0 for r in res)
    ):
        raise InfoError(
            f"{where}.resolution: expected 3 finite numbers > 0 (nm), got {res!r}", field=f"{where}.resolution"
        )
    cs = raw["chunk_sizes"]
    if not isinstance(cs, (list, tuple)) or not cs:
        raise InfoError(
            f"{where}.chunk_sizes: expected a non-empty list of [x, y, z], got {cs!r}", field=f"{where}.chunk_sizes"
        )
    chunk_sizes = tuple(_vec(c, f"{where}.chunk_sizes[{i}]", minimum=1) for i, c in enumerate(cs))
    for i, c in enumerate(chunk_sizes):
        _check_chunk_bytes(c, data_type, num_channels, f"{where}.chunk_sizes[{i}]")
    block = raw.get("compressed_segmentation_block_size")
    if isinstance(block, (list, tuple)) and all(_is_int(v) and v >= 1 for v in block) \
            and math.prod(block) > MAX_CHUNK_BYTES:
        raise InfoError(
            f"{where}.compressed_segmentation_block_size: a block of {'x'.join(map(str, block))} voxels "
            f"is too large (at most {MAX_CHUNK_BYTES} voxels, more than any chunk holds)",
            field=f"{where}.compressed_segmentation_block_size",
        )
    encoding, compression, problem = _encoding_of(raw, index, key.strip("/"), data_type, num_channels)
    sharding = raw.get("sharding")
    if sharding is not None:
        if not isinstance(sharding, Mapping) or sharding.get("@type") != "neuroglancer_uint64_sharded_v1":
            raise InfoError(
                f"{where}.sharding: expected an object with \"@type\": \"neuroglancer_uint64_sharded_v1\", "
                f"got {sharding!r}",
                field=f"{where}.sharding",
            )
        sharding = dict(sharding)
    usable = problem is None
    return Scale(
        index=index,
        key=key.strip("/"),
        size=size,
        voxel_offset=voxel_offset,
        resolution=(float(res[0]), float(res[1]), float(res[2])),
        chunk_sizes=chunk_sizes,
        encoding=encoding,
        compressed_segmentation_block_size=(
            _vec(raw["compressed_segmentation_block_size"], "") if usable and encoding == "compressed_segmentation"
            else None),
        jpeg_quality=_setting_of(raw, "jpeg_quality") if usable and encoding == "jpeg" else None,
        png_level=_setting_of(raw, "png_level") if usable and encoding == "png" else None,
        compression=compression,
        sharding=sharding,
        raw=dict(raw),
        problem=problem,
    )


def _setting_of(raw: Mapping[str, Any], member: str) -> int | None:
    value = raw.get(member)
    return None if value is None else int(value)


def _encoding_of(raw: Mapping[str, Any], index: int, key: str, data_type: str,
                 num_channels: int) -> tuple[str, dict[str, Any] | None, ScaleProblem | None]:
    """``(encoding, compression, problem)`` of a scale: the encoding name (lower case), the
    normalised compression spec and, if the scale cannot be used, why (see the module
    docstring). Its codec is built once here, so whatever would fail later fails now."""
    from bigarrays_core.codecs import CodecUnavailableError, chunk_codec
    from bigarrays_core.codecs.compression import parse_compression_spec
    from bigarrays_core.errors import UnknownCodecError

    where = f"info.scales[{index}]"

    def problem(member: str, detail: str, install: str | None = None) -> ScaleProblem:
        return ScaleProblem(f"{where}.{member}", f"{where}.{member}: {detail} (scale {index}, key {key!r})", install)

    given = raw["encoding"]
    encoding = given.lower() if isinstance(given, str) else repr(given)
    compression = None
    try:
        compression = parse_compression_spec(raw.get("compression"), f"{where}.compression")
    except InfoError as exc:
        prefix = f"{where}.compression: "
        return encoding, None, problem("compression", str(exc).removeprefix(prefix))
    if not isinstance(given, str):
        return encoding, compression, problem("encoding", f"expected an encoding name, got {given!r}")
    try:
        chunk_codec(encoding, DTYPES[data_type], num_channels, raw)
    except CodecUnavailableError as exc:
        return encoding, compression, problem("encoding", str(exc), exc.install)
    except InfoError as exc:
        member = exc.field or "encoding"
        return encoding, compression, problem(member, f"{encoding}: {str(exc).removeprefix(member + ': ')}")
    except UnknownCodecError as exc:
        return encoding, compression, problem("encoding", str(exc))
    except ValueError as exc:
        return encoding, compression, problem("encoding", f"{exc} ({data_type} x {num_channels} channels)")
    return encoding, compression, None


class Info:
    """A validated precomputed info. ``to_json()`` gives back the JSON, unknown fields kept."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        if not isinstance(raw, Mapping):
            raise InfoError(f"info: expected a JSON object, got {type(raw).__name__}", field="info")
        self._raw: dict[str, Any] = copy.deepcopy(dict(raw))
        r = self._raw
        if "@type" in r and r["@type"] != "neuroglancer_multiscale_volume":
            raise InfoError(
                f"info.@type: expected \"neuroglancer_multiscale_volume\", got {r['@type']!r}", field="info.@type"
            )
        for name in ("type", "data_type", "num_channels", "scales"):
            if name not in r:
                raise InfoError(f"info.{name}: missing (required)", field=f"info.{name}")
        if not isinstance(r["type"], str) or not r["type"]:
            raise InfoError(f"info.type: expected a string such as \"image\" or \"segmentation\", got {r['type']!r}",
                            field="info.type")
        self.layer_type: str = r["type"].lower()
        self.data_type: str = _enum(r["data_type"], tuple(DTYPES), "info.data_type")
        nc = r["num_channels"]
        if not _is_int(nc) or nc < 1:
            raise InfoError(f"info.num_channels: expected an integer >= 1, got {nc!r}", field="info.num_channels")
        if int(nc) * DTYPES[self.data_type].itemsize > MAX_CHUNK_BYTES:
            raise InfoError(
                f"info.num_channels: {nc} channels of {self.data_type} do not fit in one chunk in memory "
                f"(at most {MAX_CHUNK_BYTES} bytes, 2 GiB, per chunk)",
                field="info.num_channels",
            )
        self.num_channels: int = int(nc)
        scales = r["scales"]
        if not isinstance(scales, list) or not scales:
            raise InfoError(f"info.scales: expected a non-empty list, got {scales!r}", field="info.scales")
        self.scales: tuple[Scale, ...] = tuple(
            _parse_scale(s, i, self.data_type, self.num_channels) for i, s in enumerate(scales)
        )
        keys = [s.key for s in self.scales]
        if len(set(keys)) != len(keys):
            raise InfoError(f"info.scales: scale keys must be unique, got {keys}", field="info.scales")

    @property
    def dtype(self) -> np.dtype[Any]:
        return DTYPES[self.data_type]

    @property
    def problems(self) -> dict[int, ScaleProblem]:
        """The scales bigarrays cannot read or write, by mip, with why (empty when every scale
        is usable). The others are unaffected; see :class:`ScaleProblem`."""
        return {s.index: s.problem for s in self.scales if s.problem is not None}

    def scale(self, mip: int) -> Scale:
        """Scale ``mip``; :class:`InfoError` (also an IndexError-free ValueError) if absent."""
        if not _is_int(mip) or not 0 <= mip < len(self.scales):
            raise InfoError(f"mip {mip!r} does not exist: the info has mips 0..{len(self.scales) - 1}",
                            field="info.scales")
        return self.scales[mip]

    def to_json(self) -> dict[str, Any]:
        """A deep copy of the JSON, unknown fields included, ``sharding: null`` dropped."""
        out = copy.deepcopy(self._raw)
        for s in out.get("scales", []):
            if isinstance(s, dict) and "sharding" in s and s["sharding"] is None:
                del s["sharding"]
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Info) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return (f"Info(type={self.layer_type!r}, data_type={self.data_type!r}, "
                f"num_channels={self.num_channels}, scales={[s.key for s in self.scales]})")


def create_info(
    *,
    dtype: Any,
    size: Sequence[int],
    chunk_size: Sequence[int] = (64, 64, 64),
    resolution: Sequence[float] = (1, 1, 1),
    voxel_offset: Sequence[int] = (0, 0, 0),
    num_channels: int = 1,
    encoding: str = "raw",
    compression: str | Mapping[str, Any] | None = "auto",
    layer_type: str | None = None,
    num_mips: int = 1,
    downsample_factor: Sequence[int] = (2, 2, 1),
    jpeg_quality: int | None = None,
    png_level: int | None = None,
    compressed_segmentation_block_size: Sequence[int] = (8, 8, 8),
    encoding_settings: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    sharding: bool | Mapping[str, Any] | None = None,
) -> Info:
    """Build and validate a new info.

    Scale ``k`` has resolution ``resolution * factor**k``, ``voxel_offset =
    floor(offset / factor**k)`` and ``size = ceil((offset + size) / factor**k) - voxel_offset``
    (integer arithmetic), the same chunk size and encoding. ``layer_type`` defaults to
    ``"segmentation"`` for the segmentation encodings (compressed_segmentation, compresso,
    crackle) and ``"image"`` otherwise. ``compression="auto"`` (the default) is gzip for
    compresso, crackle, fpzip and kempressed (gzip's CRC-32 is what catches a damaged
    chunk: their decoders do not check their input; CloudVolume gzips the first two and
    writes the others plain), and none otherwise.
    ``encoding_settings`` are the scale members of the encoding's settings, named as
    CloudVolume names them (``{"jxl_quality": 90}``, ``{"fpzip_precision": 16}``,
    ``{"zfpc_tolerance": 0.01}``, ...). ``sharding=True`` gives every scale the spec
    :func:`~bigarrays_core.format.sharding.choose_sharding` picks for its grid; a dict is
    the ``"sharding"`` object of every scale (validated, written in full); None or False:
    unsharded. Raises :class:`InfoError` naming the bad argument.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise InfoError(f"dtype {dtype!r} is not a numpy dtype", field="dtype") from exc
    name = "bool" if dt == np.dtype(bool) else dt.name
    if name not in DTYPES:
        raise InfoError(f"dtype {name} is not supported; use one of {list(DTYPES)}", field="dtype")
    if not _is_int(num_mips) or num_mips < 1:
        raise InfoError(f"num_mips: expected an integer >= 1, got {num_mips!r}", field="num_mips")
    factor = _vec(list(downsample_factor), "downsample_factor", minimum=1)
    size3 = _vec(list(size), "size", minimum=1)
    off3 = _vec(list(voxel_offset), "voxel_offset")
    if not isinstance(resolution, Sequence) or len(resolution) != 3:
        raise InfoError(f"resolution: expected 3 numbers, got {resolution!r}", field="resolution")
    encoding_name = encoding.lower() if isinstance(encoding, str) else encoding
    settings = dict(encoding_settings or {})
    if settings:
        from bigarrays_core.codecs import encoding_settings as settings_of

        known = settings_of(encoding_name) if isinstance(encoding_name, str) else None
        unknown = sorted(set(settings) - set(known or ()))
        if known is not None and unknown:
            raise InfoError(f"encoding_settings: {encoding_name} takes {list(known) or 'no settings'}, "
                            f"not {unknown}", field="encoding_settings")
    if isinstance(compression, str) and compression.lower() == "auto":
        # A sharded scale's chunks are compressed by its sharding's data_encoding instead.
        sharded = sharding is not None and sharding is not False
        compression = default_compression(encoding_name, sharded) if isinstance(encoding_name, str) else None
    explicit_sharding = None
    if sharding is not None and sharding is not False:
        from bigarrays_core.format.sharding import MAX_WRITE_MINISHARD_BITS
        from bigarrays_core.kvstore.sharding import ShardingSpec

        if compression is not None:
            raise InfoError(
                "compression: a sharded scale's chunks are compressed by its sharding's data_encoding (gzip); "
                "compression= applies to unsharded scales only", field="compression")
        _vec(list(chunk_size), "chunk_size", minimum=1)
        if sharding is not True:
            if not isinstance(sharding, Mapping):
                raise InfoError(f"sharding: expected True, False, None or a sharding object, got {sharding!r}",
                                field="sharding")
            explicit_sharding = ShardingSpec.from_json(sharding, "sharding")
            if explicit_sharding.minishard_bits > MAX_WRITE_MINISHARD_BITS:
                raise InfoError(
                    f"sharding.minishard_bits: {explicit_sharding.minishard_bits} makes every shard index "
                    f"{explicit_sharding.index_nbytes} bytes; bigarrays writes at most "
                    f"{MAX_WRITE_MINISHARD_BITS} minishard bits", field="sharding.minishard_bits")
    scales = []
    for k in range(num_mips):
        f = [fa**k for fa in factor]
        lo = [o // fi for o, fi in zip(off3, f)]
        hi = [-(-(o + s) // fi) for o, s, fi in zip(off3, size3, f)]
        res = [float(r) * fi for r, fi in zip(resolution, f)]
        res_json = [int(r) if float(r).is_integer() else r for r in res]
        scale: dict[str, Any] = {
            "key": scale_key_for(res),
            "size": [h - low for h, low in zip(hi, lo)],
            "voxel_offset": lo,
            "resolution": res_json,
            "chunk_sizes": [[int(c) for c in chunk_size]],
            "encoding": encoding_name,
        }
        if encoding_name == "compressed_segmentation":
            scale["compressed_segmentation_block_size"] = [int(b) for b in compressed_segmentation_block_size]
        if jpeg_quality is not None:
            scale["jpeg_quality"] = jpeg_quality
        if png_level is not None:
            scale["png_level"] = png_level
        scale.update(copy.deepcopy(settings))
        if compression is not None:
            from bigarrays_core.codecs.compression import parse_compression_spec

            scale["compression"] = parse_compression_spec(compression, "compression")
        if explicit_sharding is not None:
            scale["sharding"] = explicit_sharding.to_json()
        elif sharding is True:
            from bigarrays_core.format.sharding import choose_sharding

            scale["sharding"] = choose_sharding(scale["size"], chunk_size, dt, num_channels, encoding_name,
                                                where=f"sharding (scale {k})").to_json()
        scales.append(scale)
    raw: dict[str, Any] = {
        "@type": "neuroglancer_multiscale_volume",
        "type": layer_type or ("segmentation" if encoding_name in _SEGMENTATION_ENCODINGS else "image"),
        "data_type": name,
        "num_channels": num_channels,
        "scales": scales,
    }
    if extra:
        raw.update(copy.deepcopy(dict(extra)))
    info = Info(raw)
    for s in info.scales:
        if s.problem is not None:
            raise s.problem.error()
    if sharding is not None and sharding is not False:
        from bigarrays_core.format.sharding import scale_sharding

        for s in info.scales:
            scale_sharding(s)
    return info
