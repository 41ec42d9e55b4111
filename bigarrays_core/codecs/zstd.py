"""``zstd`` byte compression (RFC 8878) with the ``zstandard`` package.

Frames record their content size, so decoding is a single call; frames without it
(written by other tools' streaming encoders), and data of several frames, are decoded
frame by frame. Decoding is strict: the frames must end the data exactly, so bytes after
the last frame (a chunk with junk appended, two values run together) raise instead of
being ignored, as zstd's one-shot API would. zstandard's (de)compressor objects are not
thread-safe, so each thread keeps its own.
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

    def decode(self, data: bytes | memoryview) -> bytes:
        """The content of the zstd frames that make up ``data`` exactly; raises
        ``ValueError`` (or ``zstandard.ZstdError``) for a truncated or corrupt frame and for
        bytes after the last frame."""
        d = self._decompressor()
        try:
            # One frame that records its content size and ends the data: the common case.
            return d.decompress(data, allow_extra_data=False)
        except zstandard.ZstdError:
            return _frames(d, data)  # several frames, no content size, or corrupt: see there

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "level": self.level}


def _frames(d: zstandard.ZstdDecompressor, data: bytes | memoryview) -> bytes:
    """Decode ``data`` frame by frame; every byte must belong to a complete frame."""
    out = []
    rest: bytes | memoryview = data
    while True:
        at = len(data) - len(rest)
        if bytes(rest[:4]) != MAGIC and not _is_skippable(rest):
            if at == 0:
                raise ValueError(f"the data ({len(data)} bytes) does not start with a zstd frame")
            raise ValueError(f"{len(rest)} bytes after the zstd data (which ends at byte {at}) are not a zstd frame")
        obj = d.decompressobj()
        out.append(obj.decompress(rest))
        if not obj.eof:
            raise ValueError(f"the zstd frame at byte {at} is truncated ({len(data)} bytes in all)")
        rest = obj.unused_data
        if not rest:
            return b"".join(out)


def _is_skippable(data: bytes | memoryview) -> bool:
    """Whether ``data`` starts with a zstd skippable frame (magic ``0x184D2A5?``, little-endian)."""
    return len(data) >= 4 and bytes(data[1:4]) == b"\x2a\x4d\x18" and data[0] & 0xF0 == 0x50
