"""Every error the server sends: one table from exception to HTTP status, one JSON shape.

Owns: :class:`ApiError` (raised by routes for HTTP-level problems), the table
:data:`STATUS_OF` mapping each :class:`~bigarrays_core.BigArraysError` subclass to a status
and error code, and the exception handlers that turn both (and FastAPI's validation errors,
which would otherwise be 422) into ``{"error": code, "message": ..., "detail": {...}}``.

Storage failures are 502/504, never 403: Neuroglancer draws a 403 as "no data" and the
failure would be silent (http-api-notes.md §5b). A 500 is always a bug.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import bigarrays_core as bc

__all__ = ["STATUS_OF", "ApiError", "error_body", "install_error_handlers", "status_of"]

log = logging.getLogger("bigarrays_server")

#: BigArraysError subclass -> (HTTP status, error code). The most specific class wins.
STATUS_OF: dict[type[BaseException], tuple[int, str]] = {
    bc.SelectionError: (400, "bad_bbox"),
    bc.OutOfBoundsError: (400, "out_of_bounds"),
    bc.InvalidKeyError: (400, "bad_param"),
    bc.WriteDataError: (400, "bad_data"),
    bc.ChunkEncodeError: (400, "bad_data"),
    bc.ReadOnlyError: (403, "read_only"),
    bc.ChunkNotFoundError: (404, "missing_chunk"),
    bc.DatasetNotFoundError: (404, "not_found"),
    bc.AlignmentError: (409, "unaligned"),
    bc.DatasetExistsError: (409, "exists"),
    bc.InfoError: (502, "bad_dataset"),
    bc.ChunkDecodeError: (502, "bad_chunk"),
    bc.UnknownCodecError: (502, "bad_dataset"),
    bc.UnknownSchemeError: (502, "bad_dataset"),
    bc.StoragePermissionError: (502, "upstream_denied"),
    bc.StorageTimeoutError: (504, "upstream_timeout"),
    bc.StorageError: (502, "upstream_error"),
    bc.BigArraysError: (500, "internal"),
}


class ApiError(Exception):
    """An HTTP-level error raised by a route: status, code, message and detail."""

    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail or {}
        self.headers = headers


def status_of(exc: BaseException) -> tuple[int, str]:
    """The (status, code) for a bigarrays error, by the first class of its MRO in the table."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return (500, "internal")


def error_body(code: str, message: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": code, "message": message, "detail": detail or {}}


def _detail_of(exc: bc.BigArraysError) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    if isinstance(exc, bc.AlignmentError):
        if isinstance(exc.nearest, bc.Box):
            detail["nearest"] = exc.nearest.to_colon()
        if isinstance(exc.box, bc.Box):
            detail["bbox"] = exc.box.to_colon()
    for attr in ("key", "field"):
        value = getattr(exc, attr, None)
        if value is not None:
            detail[attr] = value
    return detail


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json(exc.status, error_body(exc.code, exc.message, exc.detail), exc.headers)


async def _bigarrays_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, bc.BigArraysError)
    status, code = status_of(exc)
    if status >= 500:
        log.warning("%s %s -> %d %s: %s", request.method, request.url.path, status, code, exc)
    return _json(status, error_body(code, str(exc), _detail_of(exc)))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    message = "bad parameter: " + "; ".join(problems) if problems else "bad parameter"
    return _json(400, error_body("bad_param", message, {"errors": [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()
    ]}))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_param", 413: "too_large"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    return _json(exc.status_code, error_body(code, message), dict(exc.headers or {}) or None)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(bc.BigArraysError, _bigarrays_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
