"""``gzip`` byte compression (RFC 1952), CloudVolume-compatible.

Levels follow zlib's 1..9 scale: 1..3 are encoded with ISA-L (``isal``, several times
faster than zlib), 4..9 with libdeflate (``deflate``). Decoding uses ISA-L, the fastest
of zlib, libdeflate and ISA-L on this kind of data (and it reads multi-member streams).
Both release the GIL.
"""

from __future__ import annotations

from typing import Any

import deflate
from isal import igzip

from bigarrays_core.codecs.base import ByteCodec

__all__ = ["GzipCodec"]

DEFAULT_LEVEL = 1
MAGIC = b"\x1f\x8b"


class GzipCodec(ByteCodec):
    name = "gzip"
    content_encoding = "gzip"

    def __init__(self, level: int = DEFAULT_LEVEL) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 9:
            raise ValueError(f"gzip level must be an integer 1..9, got {level!r}")
        self.level = level

    def encode(self, data: bytes) -> bytes:
        if self.level <= 3:
            return igzip.compress(data, compresslevel=self.level)
        return bytes(deflate.gzip_compress(data, self.level))

    def decode(self, data: bytes) -> bytes:
        return igzip.decompress(data)

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "level": self.level}
