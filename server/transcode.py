"""Compressing chunk bytes for the wire of the ``/precomputed`` tree.

Owns: :func:`gzip_bytes`. Neuroglancer reads the standard encodings, optionally behind HTTP
``Content-Encoding: gzip``; it knows nothing of zstd or blosc, nor of bigarrays'
``compression`` info field. The route undoes a chunk's byte compression with the core's own
rule (``ChunkPipeline.unwrap``: the content encoding the store recorded first) and gzips the
plain encoding for the wire with this. Pure functions: no I/O.
"""

from __future__ import annotations

from bigarrays_core.codecs import byte_codec

__all__ = ["gzip_bytes"]

_gzip = byte_codec({"id": "gzip", "level": 1})


def gzip_bytes(data: bytes) -> bytes:
    """gzip level 1: cheap, and the browser decodes it."""
    assert _gzip is not None
    return _gzip.encode(data)
