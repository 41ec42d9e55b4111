"""``br`` byte compression (brotli, RFC 7932), CloudVolume's ``compress="br"``.

Stores record it as CloudVolume does: ``Content-Encoding: br`` on GCS and S3 (browsers
decode it, so Neuroglancer reads such chunks as they are), a ``.br`` suffix on local disk.
Levels are brotli's qualities 0..11; the default 5 is CloudVolume's.

Encoding uses libbrotli through imagecodecs, which releases the GIL and writes the same
bytes as Google's ``brotli`` binding (CloudVolume's). Decoding uses Google's binding,
which holds the GIL but refuses a stream with bytes after its end (imagecodecs' decoder
ignores them); a brotli stream has no checksum, so decoding can only refuse what does not
parse as one.
"""

from __future__ import annotations

from typing import Any

import brotli
import imagecodecs

from bigarrays_core.codecs.base import ByteCodec

__all__ = ["BrotliCodec"]

DEFAULT_LEVEL = 5


class BrotliCodec(ByteCodec):
    name = "br"
    content_encoding = "br"

    def __init__(self, level: int = DEFAULT_LEVEL) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 11:
            raise ValueError(f"br level must be an integer 0..11, got {level!r}")
        self.level = level

    def encode(self, data: bytes) -> bytes:
        return bytes(imagecodecs.brotli_encode(data, level=self.level))

    def decode(self, data: bytes | memoryview) -> bytes:
        if not len(data):
            raise ValueError("an empty value is not a brotli stream")
        try:
            out: bytes = brotli.decompress(data)
            return out
        except brotli.error as exc:
            raise ValueError(f"not a complete brotli stream ({len(data)} bytes): {exc}") from None

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "level": self.level}
