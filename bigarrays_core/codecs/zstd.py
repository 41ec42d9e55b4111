"""``zstd`` byte compression (RFC 8878) with the ``zstandard`` package.

Frames record their content size, so decoding is a single call; frames without it
(written by other tools' streaming encoders) are decoded with a streaming reader.
zstandard's (de)compressor objects are not thread-safe, so each thread keeps its own.
"""

from __future__ import annotations

import threading
from typing import Any

import zstandard

from bigarrays_core.codecs.base import ByteCodec

__all__ = ["ZstdCodec"]

DEFAULT_LEVEL = 3
MAGIC = b"\x28\xb5\x2f\xfd"


class ZstdCodec(ByteCodec):
    name = "zstd"
    content_encoding = "zstd"

    def __init__(self, level: int = DEFAULT_LEVEL) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not -7 <= level <= 22:
            raise ValueError(f"zstd level must be an integer -7..22, got {level!r}")
        self.level = level
        self._local = threading.local()

    def _compressor(self) -> zstandard.ZstdCompressor:
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = zstandard.ZstdCompressor(level=self.level, write_content_size=True)
        return c

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        d = getattr(self._local, "d", None)
        if d is None:
            d = self._local.d = zstandard.ZstdDecompressor()
        return d

    def encode(self, data: bytes) -> bytes:
        return self._compressor().compress(data)

    def decode(self, data: bytes) -> bytes:
        d = self._decompressor()
        try:
            return d.decompress(data)
        except zstandard.ZstdError:
            params = zstandard.get_frame_parameters(data)
            if params.content_size != zstandard.CONTENTSIZE_UNKNOWN:
                raise
            return d.decompressobj().decompress(data)

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "level": self.level}
