"""One read request through fsspec, per protocol: a value with the content encoding recorded for
it, a byte range, or the metadata that stamps the value's version.

:class:`FsspecReads` makes the request coroutines that
:class:`~bigarrays_core.kvstore.fsspec_store.FsspecStore` retries. Each protocol is asked the
way that lets it answer exactly:

========  ====================================================  =========================================
protocol  whole value and its encoding                          byte range
========  ====================================================  =========================================
S3        ``GetObject`` (s3fs's client): the stored bytes and   ``GetObject`` with ``Range``: stored bytes
          the object's ``ContentEncoding``                      (S3 never transcodes)
GCS       a GET through gcsfs's session (``Accept-Encoding:     the same with ``Range``; an answer GCS
          gzip``, no transport decoding): the stored bytes and  transcoded (it ignores ``Range`` then) is
          ``Content-Encoding``                                  refused, never sliced
HTTP(S)   a GET through fsspec's session with ``Accept-         ``Range`` with ``Accept-Encoding:
          Encoding: gzip`` and no transport decoding: the body  identity``: a 206 is checked against
          as sent and its ``Content-Encoding``                  ``Content-Range``, a 200 (the server
                                                                ignores ranges) is sliced, a coded answer
                                                                is refused
other     ``cat_file``: the bytes, no encoding (the store's     ``cat_file(start, end)``
          suffix convention records it)
========  ====================================================  =========================================

Stamps (:meth:`FsspecReads.stat`) come from metadata, never the bytes: S3 ``HeadObject``, the
GCS object resource (gcsfs's ``_get_object``), an HTTP ``HEAD`` asked with the headers of the
whole-value GET (so its ``Content-Length`` and ``Content-Encoding`` describe the body that GET
returns), and fsspec's ``info`` elsewhere; :mod:`~bigarrays_core.kvstore.stamps` reads them.

A range that starts past the end of its value fails with a 416 (S3: ``InvalidRange``), which
:func:`~bigarrays_core.kvstore.failures.classify` calls ``OUT_OF_RANGE`` and the store reads as
"no bytes". Answers that do not fit the request raise :class:`StorageError` naming the bytes
and the URL: wrong bytes are never returned.

This module imports nothing from bigarrays but the errors and its kvstore siblings.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bigarrays_core.errors import StorageError
from bigarrays_core.kvstore.base import Stamp, Value
from bigarrays_core.kvstore.encodings import encoding_of_header
from bigarrays_core.kvstore.filesystems import GCS, HTTP, S3
from bigarrays_core.kvstore.stamps import gcs_stamp, http_stamp, info_stamp, s3_stamp

__all__ = ["FsspecReads"]

#: ``op(name, *args, **kwargs)``: a factory of one request ``fs._<name>(...)`` (the store's).
Op = Callable[..., Callable[[], Awaitable[Any]]]

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class FsspecReads:
    """Makes read requests for one filesystem (``fs``, serving ``protocol``)."""

    def __init__(self, fs: Any, protocol: str, is_async: bool, op: Op) -> None:
        self.fs = fs
        self.protocol = protocol
        self._op = op
        if not is_async:
            self._kind = "other"
        elif protocol in S3:
            self._kind = "s3"
        elif protocol in GCS:
            self._kind = "gcs"
        elif protocol in HTTP:
            self._kind = "http"
        else:
            self._kind = "other"

    # -- whole values --------------------------------------------------------------------------
    def value(self, path: str, where: str) -> Callable[[], Awaitable[Value]]:
        """A factory of one GET of ``path``: its bytes and the content encoding recorded for it.

        Raises the SDK's errors as they are (``FileNotFoundError`` for a missing object), and
        :class:`StorageError` naming ``where`` for an answer that is not the stored bytes."""
        if self._kind == "s3":
            return lambda: self._s3_get(path)
        if self._kind == "gcs":
            return lambda: self._gcs_get(path, where)
        if self._kind == "http":
            return lambda: self._http_get(path)
        cat = self._op("cat_file", path)

        async def other() -> Value:
            return Value(bytes(await cat()))

        return other

    def versioned(self, path: str, where: str) -> Callable[[], Awaitable[tuple[Value, str]]]:
        """A factory of one GET of ``path`` on S3 or GCS: its value and the version it was read
        at (S3's ETag, GCS's generation), for conditional writes. Raises as :meth:`value`,
        and ``ValueError`` for another protocol."""
        if self._kind == "s3":
            async def s3() -> tuple[Value, str]:
                data, response = await self._s3_object(path)
                return Value(data, encoding_of_header(response.get("ContentEncoding"))), str(response["ETag"])

            return s3
        if self._kind == "gcs":
            async def gcs() -> tuple[Value, str]:
                data, headers = await self._gcs_object(path, {"Accept-Encoding": "gzip"})
                _refuse_transcoded(headers, where, "read")
                generation = headers.get("X-Goog-Generation")
                if not generation:
                    raise StorageError(f"cannot read {where} for an update: the answer names no generation")
                return Value(data, encoding_of_header(headers.get("Content-Encoding"))), str(generation)

            return gcs
        raise ValueError(f"{self._kind} objects carry no version for conditional writes")

    async def _s3_get(self, path: str) -> Value:
        data, response = await self._s3_object(path)
        return Value(data, encoding_of_header(response.get("ContentEncoding")))

    async def _gcs_get(self, path: str, where: str) -> Value:
        data, headers = await self._gcs_object(path, {"Accept-Encoding": "gzip"})
        _refuse_transcoded(headers, where, "read")
        return Value(data, encoding_of_header(headers.get("Content-Encoding")))

    async def _http_get(self, path: str) -> Value:
        _, data, headers = await self._http_object(path, {"Accept-Encoding": "gzip"})
        return Value(data, encoding_of_header(headers.get("Content-Encoding")))

    async def _s3_object(self, path: str, **extra: str) -> tuple[bytes, Mapping[str, Any]]:
        bucket, key, version = self.fs.split_path(path)
        if version:
            extra["VersionId"] = version
        response = await self.fs._call_s3("get_object", Bucket=bucket, Key=key, **extra)
        body = response["Body"]
        try:
            data = await body.read()
        finally:
            body.close()
        return bytes(data), response

    async def _gcs_object(self, path: str, headers: dict[str, str]) -> tuple[bytes, Mapping[str, str]]:
        answer, data = await self.fs._call("GET", self.fs.url(path), headers=headers)
        return bytes(data), answer

    async def _http_object(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, Mapping[str, str]]:
        fs = self.fs
        session = await fs.set_session()
        kwargs = dict(fs.kwargs)
        headers = {**dict(kwargs.pop("headers", None) or {}), **headers}
        async with session.get(fs.encode_url(path), headers=headers, auto_decompress=False, **kwargs) as r:
            if r.status in (404, 410):
                raise FileNotFoundError(path)
            r.raise_for_status()
            return r.status, await r.read(), r.headers

    # -- stamps ------------------------------------------------------------------------------------
    def stat(self, path: str) -> Callable[[], Awaitable[Stamp | None]]:
        """A factory of one metadata request for ``path``: its stamp, or None when the metadata
        names no version (the caller digests the value instead). Raises ``FileNotFoundError``
        for a missing object (or a directory), the SDK's errors otherwise."""
        if self._kind == "s3":
            async def s3() -> Stamp | None:
                bucket, key, version = self.fs.split_path(path)
                extra = {"VersionId": version} if version else {}
                return s3_stamp(await self.fs._call_s3("head_object", Bucket=bucket, Key=key, **extra))

            return s3
        if self._kind == "gcs":
            async def gcs() -> Stamp | None:
                return gcs_stamp(await self.fs._get_object(path))

            return gcs
        if self._kind == "http":
            return lambda: self._http_stat(path)
        info = self._op("info", path)

        async def other() -> Stamp | None:
            found = await info()
            if not isinstance(found, Mapping) or found.get("type") == "directory":
                raise FileNotFoundError(path)
            return info_stamp(found)

        return other

    async def _http_stat(self, path: str) -> Stamp | None:
        fs = self.fs
        session = await fs.set_session()
        kwargs = dict(fs.kwargs)
        # The whole-value GET's headers: the answer describes the body that GET gets.
        headers = {**dict(kwargs.pop("headers", None) or {}), "Accept-Encoding": "gzip"}
        kwargs.setdefault("allow_redirects", True)  # as a GET follows them
        async with session.head(fs.encode_url(path), headers=headers, **kwargs) as r:
            if r.status in (404, 410):
                raise FileNotFoundError(path)
            if r.status in (405, 501):  # no HEAD here: no metadata, the value is digested
                return None
            r.raise_for_status()
            return http_stamp(r.headers)

    # -- byte ranges -------------------------------------------------------------------------------
    def range(self, path: str, start: int, stop: int | None, where: str) -> Callable[[], Awaitable[bytes]]:
        """A factory of one request for bytes ``[start, stop)`` of ``path`` (``stop=None``: to its
        end; never empty), fewer where it ends first. ``where`` names the object in errors."""
        header = f"bytes={start}-{'' if stop is None else stop - 1}"
        span = (start, stop, where)
        if self._kind == "s3":
            async def s3() -> bytes:
                data, response = await self._s3_object(path, Range=header)
                headers = {"Content-Range": response.get("ContentRange")}
                return _stored_range(headers, data, *span)

            return s3
        if self._kind == "gcs":
            async def gcs() -> bytes:
                data, headers = await self._gcs_object(path, {"Range": header, "Accept-Encoding": "gzip"})
                return _stored_range(headers, data, *span, gcs=True)

            return gcs
        if self._kind == "http":
            async def http() -> bytes:
                _, data, headers = await self._http_object(path, {"Range": header, "Accept-Encoding": "identity"})
                return _identity_range(headers, data, *span)

            return http
        cat = self._op("cat_file", path, start=start, end=stop)

        async def other() -> bytes:
            return bytes(await cat())

        return other


def _refuse_transcoded(headers: Mapping[str, str], where: str, what: str) -> None:
    """GCS decompresses a gzip object for a client that does not accept gzip ("decompressive
    transcoding"), and then ignores ``Range``. Our requests accept gzip, so this should not
    happen; if a proxy or server does it anyway, the bytes are not the stored ones."""
    stored = encoding_of_header(headers.get("X-Goog-Stored-Content-Encoding"))
    if stored is not None and encoding_of_header(headers.get("Content-Encoding")) != stored:
        raise StorageError(
            f"cannot {what} {where}: the server decompressed the stored {stored} object on the way "
            "(transcoding), so the bytes that came back are not the stored ones"
        )


def _content_range(headers: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(first, last)`` of a ``Content-Range: bytes first-last/size`` header, or None without one."""
    text = headers.get("Content-Range")
    if not text:
        return None
    m = _CONTENT_RANGE.fullmatch(str(text).strip())
    if m is None:
        raise StorageError(f"the server answered with a Content-Range this reader cannot parse: {text!r}")
    return int(m.group(1)), int(m.group(2))


def _checked_part(headers: Mapping[str, Any], data: bytes, start: int, stop: int | None, where: str) -> bytes:
    """The requested part of an answer: a 206 (with ``Content-Range``) must start at ``start``
    and hold what it says; a whole value (no ``Content-Range``: the server ignored ``Range``) is
    sliced here."""
    try:
        got = _content_range(headers)
    except StorageError as exc:
        raise StorageError(f"cannot read bytes {start}-{'' if stop is None else stop} of {where}: {exc}") from None
    if got is None:
        return data[start:stop]
    first, last = got
    if first != start or len(data) != last - first + 1 or (stop is not None and last >= stop):
        raise StorageError(
            f"cannot read bytes {start}-{'' if stop is None else stop} of {where}: the server answered "
            f"bytes {first}-{last + 1} ({len(data)} bytes of body)"
        )
    return data


def _stored_range(headers: Mapping[str, Any], data: bytes, start: int, stop: int | None, where: str,
                  *, gcs: bool = False) -> bytes:
    """A range of an object's stored bytes (S3, GCS): ``Content-Encoding`` there is the object's
    metadata, not a coding of the answer; a GCS answer that was transcoded is refused."""
    if gcs:
        _refuse_transcoded(headers, f"bytes {start}-{'' if stop is None else stop} of {where}", "read")
    return _checked_part(headers, data, start, stop, where)


def _identity_range(headers: Mapping[str, Any], data: bytes, start: int, stop: int | None, where: str) -> bytes:
    """A range of an HTTP resource's identity representation (what a plain GET returns once its
    transport coding is undone): an answer with a ``Content-Encoding`` is a range of a coded
    representation, or the whole of one, and cannot be cut; it is refused."""
    coding = encoding_of_header(headers.get("Content-Encoding"))
    if coding is not None:
        raise StorageError(
            f"cannot read bytes {start}-{'' if stop is None else stop} of {where}: the server answered with "
            f"Content-Encoding: {coding} although asked for identity, so the bytes cannot be mapped to the range"
        )
    return _checked_part(headers, data, start, stop, where)
