"""Validators and conditional requests: ``ETag``, ``Last-Modified``, ``If-None-Match``,
``If-Match`` (RFC 9110 §8.8, §13).

Owns: :func:`entity_tag` (a strong tag from the parts that decide a representation's bytes),
:func:`last_modified` (the newest modification time among the stamps a response depends on,
as an HTTP date) and :func:`precondition` (the status a conditional request gets: 304, 412
or none).

A tag is a digest of what the bytes depend on (the stamps of the stored objects read, the
route, the box, the format, the content coding), never of the server process: replicas over
the same storage give the same tags, so a tag one server handed out revalidates at another.

``If-Modified-Since`` is deliberately not evaluated: HTTP dates have whole seconds, so a
write in the same second as the date a client holds would be hidden by a 304. Clients that
revalidate send ``If-None-Match`` (browsers send both, and ``If-None-Match`` wins).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from functools import lru_cache

from bigarrays_core.kvstore import Stamp

__all__ = ["TAG_VERSION", "entity_tag", "last_modified", "precondition", "stamp_text"]

#: Part of every tag: bump it when the bytes the server makes from the same stored data change.
TAG_VERSION = "ba1"


def stamp_text(stamp: Stamp | None) -> str:
    """The token of a stamp, ``-`` for a value that is not stored."""
    return "-" if stamp is None else stamp.token()


def entity_tag(*parts: str | Iterable[str]) -> str:
    """A strong entity tag (quoted) over ``parts``: strings, or iterables of strings."""
    h = hashlib.blake2b(digest_size=15)
    h.update(TAG_VERSION.encode())
    for part in parts:
        for text in ([part] if isinstance(part, str) else part):
            h.update(b"\x00")
            h.update(text.encode())
    return f'"{h.hexdigest()}"'


def last_modified(stamps: Iterable[Stamp | None]) -> str | None:
    """The newest ``mtime_ns`` of ``stamps`` as an HTTP date, None when none has one."""
    newest = max((s.mtime_ns for s in stamps if s is not None and s.mtime_ns is not None), default=None)
    return None if newest is None else _http_date(newest // 1_000_000_000)


@lru_cache(maxsize=4096)
def _http_date(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)


def _tags(header: str) -> list[str]:
    """The entity tags of an ``If-Match`` / ``If-None-Match`` value (``W/`` kept)."""
    out: list[str] = []
    text = header.strip()
    while text:
        text = text.lstrip(" ,\t")
        if not text:
            break
        if text.startswith("*"):
            out.append("*")
            text = text[1:]
            continue
        weak = text.startswith("W/")
        body = text[2:] if weak else text
        if not body.startswith('"'):
            cut = body.find(",")  # malformed: skip to the next one
            text = "" if cut < 0 else body[cut + 1:]
            continue
        end = body.find('"', 1)
        if end < 0:
            break
        out.append(("W/" if weak else "") + body[: end + 1])
        text = body[end + 1:]
    return out


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def precondition(headers: Mapping[str, str], etag: str | None, *, method: str = "GET") -> int | None:
    """The status a request's preconditions give against the current ``etag``: 412 when
    ``If-Match`` fails, 304 (GET/HEAD) or 412 (other methods) when ``If-None-Match``
    matches, None to go on. ``etag=None`` means there is no current representation."""
    if_match = headers.get("if-match")
    if if_match is not None:
        tags = _tags(if_match)
        ok = etag is not None and ("*" in tags or any(t == etag for t in tags))  # strong comparison
        if not ok:
            return 412
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None and etag is not None:
        tags = _tags(if_none_match)
        if "*" in tags or any(_opaque(t) == _opaque(etag) for t in tags):  # weak comparison
            return 304 if method in ("GET", "HEAD") else 412
    return None
