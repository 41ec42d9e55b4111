"""Stamps from object metadata: the one translation of what each protocol says about the version
of a stored value into a :class:`~bigarrays_core.kvstore.base.Stamp`.

=========================  ===============================================================
metadata                   stamp
=========================  ===============================================================
S3 ``HeadObject``          ``size`` ContentLength, ``mtime_ns`` LastModified, ``version``
(s3fs, or obstore's HEAD)  the ETag (and the VersionId of a versioned bucket), ``encoding``
                           ContentEncoding
GCS object resource        ``size``, ``updated``, ``version`` the generation, ``encoding``
(gcsfs, or obstore's HEAD  contentEncoding
with x-goog-generation)
HTTP ``HEAD``              Content-Length, Last-Modified, the ETag, Content-Encoding
fsspec ``info``            ``size``, a modification time, an ETag or generation if it has one
=========================  ===============================================================

Both read paths of an object store (fsspec, obstore) ask for the same headers, so they give
equal stamps for the same object: modification times are kept to the whole second the HTTP
``Last-Modified`` header carries (the JSON API's ``updated`` has microseconds; the generation,
not the time, tells GCS versions apart), and ETags keep their quotes.

Where metadata names no version (no ETag, generation or version id) a modification time and a
size only tell versions apart once the time is old enough that no later write can share it:
:func:`http_stamp` and :func:`info_stamp` return None while it is within :data:`RACY_S` seconds
of when the answer was made (an HTTP server's ``Date``, else this machine's clock), or when
there is no time at all, and the store then reads the value and digests it
(:func:`~bigarrays_core.kvstore.base.digest_stamp`).

A value found under a suffixed variant (``key.gz``) reads with the suffix's encoding, so its
stamp says the same (:func:`variant_stamp`).

This module imports nothing from bigarrays but the store interface and the encodings.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from bigarrays_core.kvstore.base import Stamp
from bigarrays_core.kvstore.encodings import ENCODING_OF_SUFFIX, encoding_of_header

__all__ = ["RACY_S", "gcs_stamp", "http_stamp", "info_stamp", "object_stamp", "s3_stamp", "s3_version",
           "variant_stamp"]

#: A modification time (whole seconds) less than this many seconds before the answer that
#: reported it may be shared by a later write of the same size: not trusted as a version.
RACY_S = 2

_NS = 1_000_000_000


def _seconds_ns(when: Any) -> int | None:
    """``when`` (a datetime, an RFC 3339 or HTTP date string, or seconds since the epoch) as
    nanoseconds since the epoch, cut to the whole second; None when it is none of these."""
    try:
        if isinstance(when, datetime.datetime):
            moment = when if when.tzinfo is not None else when.replace(tzinfo=datetime.timezone.utc)
        elif isinstance(when, (int, float)):
            return int(when) * _NS
        elif isinstance(when, str) and "," in when:  # an HTTP date: "Wed, 01 Jan 2020 00:00:00 GMT"
            moment = parsedate_to_datetime(when)
        elif isinstance(when, str):  # RFC 3339: "2020-01-01T00:00:00.123Z"
            moment = datetime.datetime.fromisoformat(when.replace("Z", "+00:00"))
        else:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return int(moment.timestamp()) * _NS
    except (TypeError, ValueError, OverflowError):
        return None


def _size(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def object_stamp(*, size: Any, modified: Any, version: str, encoding_header: str | None) -> Stamp:
    """The stamp of an object whose metadata names its ``version`` (how :func:`s3_stamp` and
    :func:`gcs_stamp` and the obstore reader make theirs)."""
    return Stamp(size=_size(size), mtime_ns=_seconds_ns(modified), version=version,
                 encoding=encoding_of_header(encoding_header))


def s3_version(etag: str | None, version_id: str | None) -> str | None:
    """The version text of an S3 object from its ETag and VersionId (None without either)."""
    parts = [f"etag {etag}" if etag else "", f"version-id {version_id}" if version_id else ""]
    text = " ".join(p for p in parts if p)
    return text or None


def s3_stamp(head: Mapping[str, Any]) -> Stamp | None:
    """The stamp of an S3 ``HeadObject`` answer (None when it names no version)."""
    version = s3_version(head.get("ETag"), head.get("VersionId"))
    if version is None:
        return None
    return object_stamp(size=head.get("ContentLength"), modified=head.get("LastModified"), version=version,
                        encoding_header=head.get("ContentEncoding"))


def gcs_stamp(resource: Mapping[str, Any]) -> Stamp | None:
    """The stamp of a GCS object resource (JSON API; None when it names no generation)."""
    generation = resource.get("generation")
    if not generation:
        return None
    return object_stamp(size=resource.get("size"), modified=resource.get("updated"),
                        version=f"generation {generation}", encoding_header=resource.get("contentEncoding"))


def _trusted_time(modified_ns: int | None, now_ns: int | None) -> bool:
    if modified_ns is None:
        return False
    if now_ns is None:
        now_ns = int(time.time()) * _NS
    return now_ns - modified_ns >= RACY_S * _NS


def http_stamp(headers: Mapping[str, str]) -> Stamp | None:
    """The stamp of an HTTP ``HEAD`` answer (asked as the read asks, so its ``Content-Length``
    and ``Content-Encoding`` are those of the body a GET returns): its ETag names the version;
    without one, ``Last-Modified`` does once it is :data:`RACY_S` seconds older than the
    answer's ``Date``. None when neither holds (the value must be digested)."""
    etag = headers.get("ETag")
    modified = _seconds_ns(headers.get("Last-Modified"))
    size = _size(headers.get("Content-Length"))
    encoding = encoding_of_header(headers.get("Content-Encoding"))
    if etag:
        return Stamp(size=size, mtime_ns=modified, version=f"etag {etag}", encoding=encoding)
    if _trusted_time(modified, _seconds_ns(headers.get("Date"))):
        return Stamp(size=size, mtime_ns=modified, version=None, encoding=encoding)
    return None


def info_stamp(info: Mapping[str, Any]) -> Stamp | None:
    """The stamp of an fsspec ``info`` answer of a protocol without object metadata (sftp,
    fsspec's memory, ...): an ETag or generation it reports names the version; else a
    modification time does once it is :data:`RACY_S` seconds old. None otherwise (the value
    must be digested). ``encoding`` is left to the variant (the suffix convention)."""
    size = _size(info.get("size"))
    for field in ("generation", "ETag", "etag", "VersionId", "version_id"):
        if info.get(field):
            return Stamp(size=size, mtime_ns=_seconds_ns(info.get("mtime")), version=f"{field} {info[field]}")
    for field in ("mtime", "LastModified", "last_modified", "updated", "modified"):
        modified = _seconds_ns(info.get(field))
        if modified is not None:
            return Stamp(size=size, mtime_ns=modified) if _trusted_time(modified, None) else None
    return None


def variant_stamp(stamp: Stamp, suffix: str) -> Stamp:
    """``stamp`` of the object ``key + suffix`` as the stamp of ``key``: a suffixed variant reads
    with its suffix's encoding (whatever else its metadata records), and is another version
    than the plain object."""
    if not suffix:
        return stamp
    version = suffix if stamp.version is None else f"{suffix} {stamp.version}"
    return dataclasses.replace(stamp, version=version, encoding=ENCODING_OF_SUFFIX[suffix])
