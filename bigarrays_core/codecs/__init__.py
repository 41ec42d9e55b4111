"""Chunk codecs (one module per encoding) and byte compression (one module per codec).

``pipeline_for(scale, dtype, num_channels)`` builds the :class:`ChunkPipeline` a scale
needs; ``chunk_codec`` builds one encoding's codec; ``register_encoding(name, factory)``
adds an encoding. :data:`ENCODINGS` lists every encoding bigarrays knows, with the Python
package each needs: an encoding whose package is not installed raises
:class:`CodecUnavailableError` (an :class:`~bigarrays_core.errors.UnknownCodecError`)
saying what to install, when a scale in it is used, and only then.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bigarrays_core.codecs.base import ByteCodec, ChunkCodec
from bigarrays_core.codecs.compression import COMPRESSIONS, byte_codec, content_codec, parse_compression_spec
from bigarrays_core.codecs.pipeline import ChunkPipeline
from bigarrays_core.errors import UnknownCodecError

__all__ = [
    "COMPRESSIONS",
    "ENCODINGS",
    "ByteCodec",
    "ChunkCodec",
    "ChunkPipeline",
    "CodecUnavailableError",
    "Encoding",
    "byte_codec",
    "chunk_codec",
    "content_codec",
    "encoding_settings",
    "known_encodings",
    "parse_compression_spec",
    "pipeline_for",
    "register_encoding",
]

EncodingFactory = Callable[[np.dtype, int, Any], ChunkCodec]


@dataclass(frozen=True)
class Encoding:
    """One encoding bigarrays can read and write."""

    #: ``module:Class`` of its :class:`ChunkCodec`.
    codec: str
    #: The Python packages it needs beyond bigarrays' own dependencies (import names), and
    #: what to ``pip install`` to get them.
    requires: tuple[str, ...] = ()
    install: str | None = None


#: Every encoding, by its name in the info.
ENCODINGS: dict[str, Encoding] = {
    "raw": Encoding("bigarrays_core.codecs.raw:RawCodec"),
    "jpeg": Encoding("bigarrays_core.codecs.jpeg:JpegCodec"),
    "png": Encoding("bigarrays_core.codecs.png:PngCodec"),
    "compressed_segmentation": Encoding(
        "bigarrays_core.codecs.compressed_segmentation:CompressedSegmentationCodec"),
    "compresso": Encoding("bigarrays_core.codecs.compresso:CompressoCodec", ("compresso",), "compresso"),
    "jxl": Encoding("bigarrays_core.codecs.jxl:JxlCodec"),
    "crackle": Encoding("bigarrays_core.codecs.crackle:CrackleCodec", ("crackle", "fastcrackle", "google_crc32c"),
                        "crackle-codec"),
    "fpzip": Encoding("bigarrays_core.codecs.fpzip:FpzipCodec", ("fpzip",), "fpzip"),
    "kempressed": Encoding("bigarrays_core.codecs.kempressed:KempressedCodec", ("fpzip",), "fpzip"),
    "zfpc": Encoding("bigarrays_core.codecs.zfpc:ZfpcCodec", ("zfpc", "zfpy"), "zfpc"),
}

_FACTORIES: dict[str, EncodingFactory] = {}


class CodecUnavailableError(UnknownCodecError):
    """An encoding bigarrays knows, whose Python package is not installed.

    ``encoding`` names it and ``install`` is the ``pip install`` argument that adds it.
    """

    def __init__(self, message: str, *, encoding: str, install: str) -> None:
        super().__init__(message)
        self.encoding = encoding
        self.install = install


def register_encoding(name: str, factory: EncodingFactory) -> None:
    """Make ``encoding: name`` use ``factory(dtype, num_channels, scale)`` (``scale`` is the
    scale's JSON object, or None)."""
    _FACTORIES[name] = factory


def known_encodings() -> list[str]:
    """Every encoding name bigarrays can read (the built-in ones and registered ones)."""
    return sorted(set(ENCODINGS) | set(_FACTORIES))


def _codec_class(encoding: str) -> type[ChunkCodec]:
    entry = ENCODINGS[encoding]
    module, _, name = entry.codec.partition(":")
    try:
        cls: type[ChunkCodec] = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if entry.install is None or missing not in entry.requires:
            raise
        raise CodecUnavailableError(
            f"encoding {encoding!r} needs the Python package {entry.install!r}, which is not installed "
            f"(pip install {entry.install})",
            encoding=encoding, install=entry.install,
        ) from exc
    return cls


def encoding_settings(encoding: str) -> tuple[str, ...] | None:
    """The scale members holding an encoding's settings (``("jxl_quality", ...)``), or None
    when that cannot be told (an unknown or registered encoding, a package not installed)."""
    if encoding not in ENCODINGS:
        return None
    try:
        return _codec_class(encoding).settings
    except CodecUnavailableError:
        return None


def chunk_codec(encoding: str, dtype: Any, num_channels: int, scale: Mapping[str, Any] | None = None) -> ChunkCodec:
    """The :class:`ChunkCodec` of an encoding; ``scale`` (the scale's JSON object) supplies
    its settings (``jpeg_quality``, ``jxl_effort``, ...).

    Raises :class:`UnknownCodecError` for an encoding bigarrays does not know,
    :class:`CodecUnavailableError` when its package is not installed, ``ValueError`` for a
    dtype or channel count it cannot store and :class:`~bigarrays_core.errors.InfoError`
    (``field`` = the member) for a bad setting.
    """
    dtype = np.dtype(dtype)
    factory = _FACTORIES.get(encoding)
    if factory is not None:
        return factory(dtype, num_channels, scale)
    if encoding not in ENCODINGS:
        raise UnknownCodecError(f"unknown encoding {encoding!r}; bigarrays reads {known_encodings()}")
    return _codec_class(encoding).from_scale(dtype, num_channels, scale or {})


def pipeline_for(scale: Any, dtype: Any, num_channels: int) -> ChunkPipeline:
    """The pipeline of a :class:`~bigarrays_core.format.Scale`.

    A scale that cannot be read (see ``Scale.problem``) raises its
    :class:`~bigarrays_core.errors.InfoError`, naming the scale and what is missing.
    """
    problem = getattr(scale, "problem", None)
    if problem is not None:
        raise problem.error()
    codec = chunk_codec(scale.encoding, dtype, num_channels, getattr(scale, "raw", None))
    return ChunkPipeline(codec, byte_codec(scale.compression, typesize=np.dtype(dtype).itemsize))
