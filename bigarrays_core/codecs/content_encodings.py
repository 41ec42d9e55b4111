"""The content encodings a store may record for a value, and the codecs that undo them.

Stores report the content encoding they recorded for each value (a ``.gz`` / ``.zstd`` /
``.br`` / ``.xz`` / ``.bz2`` file suffix, a ``Content-Encoding`` header) by one of the names
``gzip``, ``zstd``, ``br``, ``xz`` or ``bz2`` (see :mod:`bigarrays_core.kvstore.encodings`).
CloudVolume writes all five; bigarrays writes gzip and zstd (:mod:`.gzip`, :mod:`.zstd`) and
reads all five. :func:`content_decoder` gives the codec for a name.

brotli (``br``) needs the ``brotli`` package; xz and bz2 use the standard library. Every
decoder is strict like gzip and zstd: the data must be exactly a sequence of complete
streams (brotli: exactly one), so truncation and bytes after the end raise ``ValueError``
(or the library's error) instead of being ignored, as ``lzma.decompress`` and
``bz2.decompress`` ignore them.

Must not import from ``kvstore``, ``array`` or the server.
"""

from __future__ import annotations

import bz2
import lzma
import threading
from typing import Any

from bigarrays_core.codecs.base import ByteCodec

__all__ = ["CONTENT_ENCODINGS", "Bz2Codec", "BrotliCodec", "XzCodec", "content_decoder"]

#: Every content encoding bigarrays decodes, by the name stores report.
CONTENT_ENCODINGS = ("gzip", "zstd", "br", "xz", "bz2")

_BZ2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


class BrotliCodec(ByteCodec):
    """Brotli (RFC 7932), as CloudVolume's ``compress="br"`` writes it."""

    name = "br"
    content_encoding = "br"

    def __init__(self, quality: int = 5) -> None:
        if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 11:
            raise ValueError(f"brotli quality must be an integer 0..11, got {quality!r}")
        self.quality = quality

    def encode(self, data: bytes) -> bytes:
        return bytes(_brotli().compress(bytes(data), quality=self.quality))

    def decode(self, data: bytes | memoryview) -> bytes:
        """The content of exactly one brotli stream; brotli itself refuses truncation and
        trailing bytes."""
        try:
            return bytes(_brotli().decompress(bytes(data)))
        except _brotli().error as exc:
            raise ValueError(f"not one complete brotli stream ({len(data)} bytes): {exc}") from None

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "quality": self.quality}


class XzCodec(ByteCodec):
    """xz (the ``.xz`` container of LZMA2), as CloudVolume's ``compress="xz"`` writes it."""

    name = "xz"
    content_encoding = "xz"

    def __init__(self, preset: int = 6) -> None:
        if isinstance(preset, bool) or not isinstance(preset, int) or not 0 <= preset <= 9:
            raise ValueError(f"xz preset must be an integer 0..9, got {preset!r}")
        self.preset = preset

    def encode(self, data: bytes) -> bytes:
        return lzma.compress(data, format=lzma.FORMAT_XZ, preset=self.preset)

    def decode(self, data: bytes | memoryview) -> bytes:
        """The content of the xz streams that make up ``data`` exactly (with the stream
        padding the format allows: zero bytes in multiples of four after a stream)."""
        out = []
        rest = bytes(data)
        while True:
            at = len(data) - len(rest)
            if rest[:6] != _XZ_MAGIC:
                raise ValueError(_not_a_stream("xz", len(data), at, len(rest)))
            stream = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            out.append(stream.decompress(rest))
            if not stream.eof:
                raise ValueError(f"the xz stream at byte {at} is truncated ({len(data)} bytes in all)")
            rest = stream.unused_data
            padding = len(rest) - len(rest.lstrip(b"\x00"))
            if padding % 4 == 0:
                rest = rest[padding:]
            if not rest:
                return b"".join(out)

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "preset": self.preset}


class Bz2Codec(ByteCodec):
    """bzip2, as CloudVolume's ``compress="bz2"`` writes it."""

    name = "bz2"
    content_encoding = "bz2"

    def __init__(self, level: int = 9) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 9:
            raise ValueError(f"bz2 level must be an integer 1..9, got {level!r}")
        self.level = level

    def encode(self, data: bytes) -> bytes:
        return bz2.compress(data, self.level)

    def decode(self, data: bytes | memoryview) -> bytes:
        """The content of the bzip2 streams that make up ``data`` exactly."""
        out = []
        rest = bytes(data)
        while True:
            at = len(data) - len(rest)
            if rest[:3] != _BZ2_MAGIC:
                raise ValueError(_not_a_stream("bzip2", len(data), at, len(rest)))
            stream = bz2.BZ2Decompressor()
            out.append(stream.decompress(rest))
            if not stream.eof:
                raise ValueError(f"the bzip2 stream at byte {at} is truncated ({len(data)} bytes in all)")
            rest = stream.unused_data
            if not rest:
                return b"".join(out)

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "level": self.level}


def _not_a_stream(kind: str, total: int, at: int, left: int) -> str:
    if at == 0:
        return f"the data ({total} bytes) does not start with a {kind} stream"
    return f"{left} bytes after the {kind} data (which ends at byte {at}) are not a {kind} stream"


def _brotli() -> Any:
    try:
        import brotli
    except ImportError:
        raise ValueError("the value is brotli-compressed (br); install the 'brotli' package to read it") from None
    return brotli


_FACTORIES: dict[str, type[ByteCodec]] = {}
_DECODERS: dict[str, ByteCodec] = {}
_LOCK = threading.Lock()


def content_decoder(encoding: str) -> ByteCodec:
    """The (shared) codec that undoes content encoding ``encoding`` (one of
    :data:`CONTENT_ENCODINGS`); ``ValueError`` naming the encoding for any other."""
    codec = _DECODERS.get(encoding)
    if codec is not None:
        return codec
    if not _FACTORIES:
        from bigarrays_core.codecs.gzip import GzipCodec
        from bigarrays_core.codecs.zstd import ZstdCodec

        _FACTORIES.update(gzip=GzipCodec, zstd=ZstdCodec, br=BrotliCodec, xz=XzCodec, bz2=Bz2Codec)
    factory = _FACTORIES.get(encoding)
    if factory is None:
        raise ValueError(
            f"the store records content encoding {encoding!r}, which bigarrays cannot decode "
            f"(it decodes {', '.join(CONTENT_ENCODINGS)})"
        )
    with _LOCK:
        return _DECODERS.setdefault(encoding, factory())
