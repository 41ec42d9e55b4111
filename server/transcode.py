"""Turning stored chunk bytes into what a plain precomputed reader (Neuroglancer) accepts.

Owns: :func:`strip_compression` and :func:`gzip_bytes`. Neuroglancer reads the standard
encodings, optionally behind HTTP ``Content-Encoding: gzip``; it knows nothing of zstd or
blosc, nor of bigarrays' ``compression`` info field. So a stored chunk is classified by its
magic bytes (gzip, zstd) or by the scale's recorded compression (blosc), and undone to the
plain encoding when it is not gzip. Pure functions: no I/O.
"""

from __future__ import annotations

from typing import Any

from bigarrays_core.codecs import byte_codec

__all__ = ["gzip_bytes", "strip_compression"]

_GZIP = b"\x1f\x8b\x08"
_ZSTD = b"\x28\xb5\x2f\xfd"
_gzip = byte_codec({"id": "gzip", "level": 1})
_zstd = byte_codec({"id": "zstd", "level": 3})


def strip_compression(data: bytes, compression: dict[str, Any] | None, *, keep_gzip: bool) -> tuple[bytes, bool]:
    """``(bytes, is_gzip)``: the plain encoded chunk, or its gzip stream when ``keep_gzip``.

    Raises ``ValueError`` (from the codec) on bytes that do not decompress.
    """
    assert _gzip is not None and _zstd is not None
    if data[:3] == _GZIP:
        return (data, True) if keep_gzip else (_gzip.decode(data), False)
    if data[:4] == _ZSTD:
        return _zstd.decode(data), False
    if compression is not None and compression.get("id") == "blosc":
        codec = byte_codec(compression)
        assert codec is not None
        try:
            return codec.decode(data), False
        except ValueError:
            return data, False  # not a blosc frame: a chunk some tool wrote uncompressed
    return data, False


def gzip_bytes(data: bytes) -> bytes:
    """gzip level 1: cheap, and the browser decodes it."""
    assert _gzip is not None
    return _gzip.encode(data)
