"""Answering a GET or HEAD whose whole body is at hand: conditions, ranges, HEAD.

Owns: :func:`answer_conditions` (304 / 412 before any body is made) and
:func:`body_response` (200 with the whole body, or 206 with the span a ``Range`` asks for;
HEAD gets the headers only). Streamed cutouts use the same pieces
(:mod:`bigarrays_server.conditional`, :mod:`bigarrays_server.ranges`) in their own route.
"""

from __future__ import annotations

from collections.abc import Mapping

from bigarrays_server.conditional import precondition
from bigarrays_server.errors import ApiError
from bigarrays_server.ranges import requested_span
from fastapi import Request
from fastapi.responses import Response

__all__ = ["NOT_MODIFIED_HEADERS", "answer_conditions", "body_response", "not_modified", "whole_headers"]

#: What a 304 repeats of the 200 it stands for (RFC 9110 §15.4.5).
NOT_MODIFIED_HEADERS = ("etag", "cache-control", "vary", "last-modified", "content-location", "expires")


def not_modified(headers: Mapping[str, str]) -> Response:
    """The 304 standing for a 200 with ``headers``."""
    return Response(status_code=304, headers={k: v for k, v in headers.items() if k.lower() in NOT_MODIFIED_HEADERS})


def answer_conditions(request: Request, etag: str | None, headers: Mapping[str, str]) -> Response | None:
    """The 304 of a matching ``If-None-Match``, None to go on; raises the 412 of a failed
    ``If-Match``. ``headers`` are those of the 200 (a 304 repeats its validators)."""
    status = precondition(request.headers, etag, method=request.method)
    if status == 304:
        return not_modified(headers)
    if status == 412:
        raise ApiError(412, "precondition_failed",
                       f"the precondition of {request.method} {request.url.path} failed: the current entity tag is "
                       f"{etag or 'none (nothing is stored)'}", {"etag": etag})
    return None


def whole_headers(headers: Mapping[str, str], etag: str | None, length: int, ranges: bool) -> dict[str, str]:
    """``headers`` with what a 200 of a whole ``length``-byte body adds: ``ETag``,
    ``Accept-Ranges`` (when ``ranges``), ``Content-Length``."""
    out = dict(headers)
    if etag is not None:
        out["ETag"] = etag
    if ranges:
        out["Accept-Ranges"] = "bytes"
    out["Content-Length"] = str(length)
    return out


def body_response(request: Request, body: bytes | memoryview, *, media_type: str, headers: dict[str, str],
                  etag: str | None, ranges: bool = True, length: int | None = None) -> Response:
    """200 with ``body``, or 206 with the part a GET's ``Range`` selects (416 when it
    selects nothing); HEAD sends the headers only (``length`` gives the whole body's length
    when ``body`` was not read for a HEAD). A body with a ``Content-Encoding`` is never cut
    (the caller sends the plain body when a range is asked for)."""
    length = len(body) if length is None else length
    ranges = ranges and not any(k.lower() == "content-encoding" for k in headers)
    span = requested_span(request.headers, length, etag) if ranges and request.method == "GET" else None
    if span is None:
        out = whole_headers(headers, etag, length, ranges)
        return Response(b"" if request.method == "HEAD" else body, headers=out, media_type=media_type)
    out = whole_headers(headers, etag, span.size, ranges)
    out["Content-Range"] = span.content_range()
    view = memoryview(body)[span.start:span.stop]
    return Response(view, status_code=206, headers=out, media_type=media_type)
