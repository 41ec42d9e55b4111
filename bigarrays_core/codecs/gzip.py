"""``gzip`` byte compression (RFC 1952), CloudVolume-compatible.

Levels follow zlib's 1..9 scale: 1..3 are encoded with ISA-L (``isal``, several times
faster than zlib), 4..9 with libdeflate (``deflate``). Decoding uses ISA-L, the fastest
of zlib, libdeflate and ISA-L on this kind of data: in one call into a buffer sized from
the trailer, kept when the data is exactly one member; anything else (several members,
corruption) is decoded member by member. Decoding is strict: the members must end the data
exactly (each checked against its CRC-32 and length trailer), so bytes after the last
member, zero padding included, raise instead of being ignored as ``gzip.decompress``
ignores them. Both paths release the GIL. The header's modification time is 0 (as libdeflate
writes it): the same chunk is stored as the same bytes whenever and wherever it is written.
"""

from __future__ import annotations

from typing import Any

import deflate
from isal import igzip, igzip_lib

from bigarrays_core.codecs.base import ByteCodec

__all__ = ["GzipCodec"]

DEFAULT_LEVEL = 1
MAGIC = b"\x1f\x8b"
#: DEFLATE cannot expand data more than this; caps a buffer sized from a corrupt trailer.
_MAX_RATIO = 1032


class GzipCodec(ByteCodec):
    name = "gzip"
    content_encoding = "gzip"

    def __init__(self, level: int = DEFAULT_LEVEL) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 9:
            raise ValueError(f"gzip level must be an integer 1..9, got {level!r}")
        self.level = level

    def encode(self, data: bytes) -> bytes:
        if self.level <= 3:
            return igzip.compress(data, compresslevel=self.level, mtime=0)
        return bytes(deflate.gzip_compress(data, self.level))

    def decode(self, data: bytes | memoryview) -> bytes:
        """The content of the gzip members that make up ``data`` exactly; raises
        ``ValueError`` (or ISA-L's error) for a truncated or corrupt member and for bytes
        after the last member."""
        n = len(data)
        if n >= 18:
            size = int.from_bytes(data[n - 4:n], "little")
            one = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
            try:
                out = one.decompress(data, min(size, n * _MAX_RATIO) + 1)
            except (igzip_lib.IsalError, EOFError):  # type: ignore[misc]  # isal's stub: IsalError an instance
                out = None  # the full reader below raises its own error
            # One member that ends the data (checked against its trailer by ISA-L).
            if out is not None and one.eof and not one.unused_data and len(out) == size:
                return out
        return _members(data)

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "level": self.level}


def _members(data: bytes | memoryview) -> bytes:
    """Decode ``data`` member by member; every byte must belong to a complete member."""
    out = []
    rest: bytes | memoryview = data
    while True:
        at = len(data) - len(rest)
        if bytes(rest[:2]) != MAGIC:
            if at == 0:
                raise ValueError(f"the data ({len(data)} bytes) does not start with a gzip member")
            raise ValueError(f"{len(rest)} bytes after the gzip data (which ends at byte {at}) are not a gzip member")
        member = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
        out.append(member.decompress(rest))
        if not member.eof:
            raise ValueError(f"the gzip member at byte {at} is truncated ({len(data)} bytes in all)")
        rest = member.unused_data
        if not rest:
            return b"".join(out)
