"""Chunk codecs (one module per encoding) and byte compression (one module per codec).

``pipeline_for(scale, dtype, num_channels)`` builds the :class:`ChunkPipeline` a scale
needs; ``register_encoding(name, factory)`` adds an encoding.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from bigarrays_core.codecs.base import ByteCodec, ChunkCodec
from bigarrays_core.codecs.compression import COMPRESSIONS, byte_codec, parse_compression_spec
from bigarrays_core.codecs.pipeline import ChunkPipeline
from bigarrays_core.errors import UnknownCodecError

__all__ = [
    "COMPRESSIONS",
    "ByteCodec",
    "ChunkCodec",
    "ChunkPipeline",
    "byte_codec",
    "chunk_codec",
    "parse_compression_spec",
    "pipeline_for",
    "register_encoding",
]

EncodingFactory = Callable[[np.dtype, int, Any], ChunkCodec]

_ENCODINGS: dict[str, str | EncodingFactory] = {
    "raw": "bigarrays_core.codecs.raw:RawCodec",
    "jpeg": "bigarrays_core.codecs.jpeg:JpegCodec",
    "png": "bigarrays_core.codecs.png:PngCodec",
    "compressed_segmentation": "bigarrays_core.codecs.compressed_segmentation:CompressedSegmentationCodec",
}


def register_encoding(name: str, factory: EncodingFactory) -> None:
    """Make ``encoding: name`` use ``factory(dtype, num_channels, scale)``."""
    _ENCODINGS[name] = factory


def chunk_codec(encoding: str, dtype: Any, num_channels: int, scale: Any = None) -> ChunkCodec:
    """The :class:`ChunkCodec` for an encoding name; ``scale`` supplies its parameters."""
    entry = _ENCODINGS.get(encoding)
    if entry is None:
        raise UnknownCodecError(f"unknown encoding {encoding!r}; known: {sorted(_ENCODINGS)}")
    dtype = np.dtype(dtype)
    if not isinstance(entry, str):
        return entry(dtype, num_channels, scale)
    module, _, name = entry.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if encoding == "jpeg":
        return cls(dtype, num_channels, quality=getattr(scale, "jpeg_quality", None))
    if encoding == "png":
        return cls(dtype, num_channels, level=getattr(scale, "png_level", None))
    if encoding == "compressed_segmentation":
        return cls(dtype, num_channels, block_size=getattr(scale, "compressed_segmentation_block_size", None)
                   or (8, 8, 8))
    return cls(dtype, num_channels)


def pipeline_for(scale: Any, dtype: Any, num_channels: int) -> ChunkPipeline:
    """The pipeline of a :class:`~bigarrays_core.format.Scale`."""
    codec = chunk_codec(scale.encoding, dtype, num_channels, scale)
    return ChunkPipeline(codec, byte_codec(scale.compression, typesize=np.dtype(dtype).itemsize))
