"""HTTP ``Range`` requests (RFC 9110 §14): which bytes of a representation to send.

Owns: :class:`Span` and :func:`requested_span`. One range (``bytes=a-b``, ``a-``, ``-n``)
is served as a 206; a range that starts past the end (or ``-0``, or any range of an empty
representation) is a 416 with ``Content-Range: bytes */N``. As the RFC allows, a header the
server does not serve -- another unit, several ranges, a malformed one, an ``If-Range``
that does not match the current entity tag exactly -- is ignored and the whole
representation is sent. Only GET evaluates ranges (a HEAD describes the whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from bigarrays_server.errors import ApiError

__all__ = ["Span", "requested_span", "unsatisfiable"]

#: More digits than any byte offset has: such a number is past every end.
_MAX_DIGITS: Final = 19


@dataclass(frozen=True)
class Span:
    """Bytes ``[start, stop)`` of a representation of ``length`` bytes."""

    start: int
    stop: int
    length: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{self.length}"


def unsatisfiable(header: str, length: int) -> ApiError:
    """The 416 of a range that selects nothing of ``length`` bytes."""
    return ApiError(416, "bad_range",
                    f"Range {header[:80]!r} selects no byte of this {length}-byte representation",
                    {"range": header[:80], "length": length}, headers={"Content-Range": f"bytes */{length}"})


def _number(text: str) -> int | None:
    """A non-negative decimal (ASCII digits only; ``int()`` would take ``+1``, ``1_0``, ...)."""
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit():
        return None
    if len(text) > _MAX_DIGITS:
        return 10**_MAX_DIGITS  # past every end
    return int(text)


def requested_span(headers: Mapping[str, str], length: int, etag: str | None) -> Span | None:
    """The span a GET's ``Range`` asks for, or None to send the whole representation.

    Raises the 416 :class:`ApiError` of :func:`unsatisfiable` when the range selects no byte.
    """
    header = headers.get("range")
    if header is None:
        return None
    if_range = headers.get("if-range")
    if if_range is not None and (etag is None or if_range.strip() != etag or etag.startswith("W/")):
        return None  # the client's copy is another version (or an HTTP date): send it all
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    if not first.strip():  # -n: the last n bytes
        n = _number(last)
        if n is None:
            return None
        if n == 0 or length == 0:
            raise unsatisfiable(header, length)
        return Span(max(0, length - n), length, length)
    start = _number(first)
    if start is None:
        return None
    if last.strip():
        end = _number(last)
        if end is None or end < start:
            return None
        stop = min(end + 1, length)
    else:
        stop = length
    if start >= length:
        raise unsatisfiable(header, length)
    return Span(start, stop, length)
