"""Content codings on the wire: which one a request accepts, and encoding or decoding with it.

Owns: :func:`choose` (the coding to send, from ``Accept-Encoding``), :func:`accepts`,
:func:`encode_bytes` / :func:`decode_bytes` (whole values: stored files and chunks) and
:class:`StreamEncoder` (a streamed cutout, piece by piece). Codings are ``gzip`` (ISA-L,
level 1) and ``zstd`` (level 1): fast levels, since the point is a slow link, not the
smallest file. Decoding of stored values uses the core's byte codecs, the same ones that
read chunks. Pure functions and small objects: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bigarrays_core.codecs import byte_codec

if TYPE_CHECKING:  # imported when first used
    import zstandard
    from isal import isal_zlib

__all__ = ["CODINGS", "StreamEncoder", "accepts", "choose", "decode_bytes", "encode_bytes"]

#: The codings the server can send, in its order of preference for equal q-values.
CODINGS = ("zstd", "gzip")
_LEVEL = {"gzip": 1, "zstd": 1}


def _accepted(header: str | None) -> dict[str, float]:
    """``Accept-Encoding`` as coding -> q (``x-gzip`` is ``gzip``; malformed q counts as 1)."""
    out: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 1.0
        out["gzip" if name == "x-gzip" else name] = q
    return out


def accepts(header: str | None, coding: str) -> bool:
    """Whether ``Accept-Encoding`` allows ``coding`` (named with q > 0, or through ``*``)."""
    accepted = _accepted(header)
    q = accepted.get(coding, accepted.get("*", 0.0))
    return q > 0


def choose(header: str | None, offered: Sequence[str] = CODINGS) -> str | None:
    """The coding of ``offered`` that ``Accept-Encoding`` prefers (highest q, then the order
    of ``offered``), or None for none (send the bytes as they are)."""
    accepted = _accepted(header)
    best: tuple[float, int] | None = None
    pick = None
    for rank, coding in enumerate(offered):
        q = accepted.get(coding, accepted.get("*", 0.0))
        if q > 0 and (best is None or (q, -rank) > best):
            best, pick = (q, -rank), coding
    return pick


def encode_bytes(coding: str, data: bytes | memoryview) -> bytes:
    """``data`` in ``coding`` at the server's fast level."""
    codec = byte_codec({"id": coding, "level": _LEVEL[coding]})
    assert codec is not None
    return codec.encode(bytes(data) if isinstance(data, memoryview) else data)


def decode_bytes(coding: str, data: bytes | memoryview) -> bytes:
    """The plain bytes of ``data`` stored in ``coding`` (``gzip`` or ``zstd``); raises the
    core's :class:`ChunkDecodeError` when they do not decode."""
    codec = byte_codec({"id": coding})
    assert codec is not None
    return codec.decode(bytes(data) if isinstance(data, memoryview) else data)


class StreamEncoder:
    """One body in ``coding``, fed piece by piece: :meth:`encode` each piece, then :meth:`finish`."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._obj: isal_zlib.Compress | zstandard.ZstdCompressionObj
        if coding == "gzip":
            from isal import isal_zlib

            self._obj = isal_zlib.compressobj(_LEVEL["gzip"], isal_zlib.DEFLATED, 16 + 15)  # wbits: gzip framing
        elif coding == "zstd":
            import zstandard

            self._obj = zstandard.ZstdCompressor(level=_LEVEL["zstd"], write_content_size=False).compressobj()
        else:
            raise ValueError(f"unknown content coding {coding!r}; known: {list(CODINGS)}")

    def encode(self, data: bytes | memoryview) -> bytes:
        out: bytes = self._obj.compress(data)
        return out

    def finish(self) -> bytes:
        out: bytes = self._obj.flush()
        return out
