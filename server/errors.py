"""Every error the server sends: one table from exception to HTTP status, one JSON shape.

Owns: :class:`ApiError` (raised by routes for HTTP-level problems), the table
:data:`STATUS_OF` mapping each :class:`~bigarrays_core.BigArraysError` subclass to an HTTP
status, and the exception handlers that turn both (and FastAPI's validation errors, which
would otherwise be 422) into ``{"error": code, "message": ..., "detail": {...}}``. The code
of a core error is its class's ``code`` (``bigarrays_core.errors``), which the REST client
maps back to the class. Messages and details pass through the worker's
:class:`~bigarrays_server.redaction.Redactor` (storage roots written as dataset names);
the log keeps the full text. A client that disconnects before its request is read counts as
:data:`CLIENT_CLOSED_REQUEST`, and any other exception is a JSON 500 that reveals nothing.

Storage failures are 502/504, never 403: Neuroglancer draws a 403 as "no data" and the
failure would be silent. A 500 is always a bug.
"""

from __future__ import annotations

import logging
from typing import Any

from bigarrays_server.redaction import Redactor
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

import bigarrays_core as bc

__all__ = ["CLIENT_CLOSED_REQUEST", "STATUS_OF", "ApiError", "error_body", "install_error_handlers", "status_of"]

log = logging.getLogger("bigarrays_server")

#: The status a request counts with when its client disconnected before it was read (nginx's
#: "client closed request"): it is no server error, so never a 5xx in the metrics.
CLIENT_CLOSED_REQUEST = 499

#: BigArraysError subclass -> HTTP status. The most specific class of an error's MRO wins;
#: every class of the core's tree is listed, so each has a deliberate status.
STATUS_OF: dict[type[bc.BigArraysError], int] = {
    bc.SelectionError: 400,
    bc.TooLargeError: 413,
    bc.OutOfBoundsError: 400,
    bc.InvalidKeyError: 400,
    bc.WriteDataError: 400,
    bc.ChunkEncodeError: 400,
    bc.ReadOnlyError: 403,
    bc.ChunkNotFoundError: 404,
    bc.DatasetNotFoundError: 404,
    bc.AlignmentError: 409,
    bc.DatasetExistsError: 409,
    bc.InfoError: 502,
    bc.ChunkDecodeError: 502,
    bc.UnknownCodecError: 502,
    bc.UnknownSchemeError: 502,
    bc.ConfigError: 500,
    bc.StoragePermissionError: 502,
    bc.StorageTimeoutError: 504,
    bc.StorageError: 502,
    bc.BigArraysError: 500,
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

    @classmethod
    def of(cls, error: type[bc.BigArraysError], message: str, detail: dict[str, Any] | None = None,
           headers: dict[str, str] | None = None) -> ApiError:
        """An answer meaning ``error`` (its status and code) with this route's own detail,
        which the REST client raises as ``error``."""
        return cls(STATUS_OF[error], error.code, message, detail, headers)


def status_of(exc: bc.BigArraysError) -> tuple[int, str]:
    """The (status, code) of a bigarrays error: the status of the first class of its MRO in
    :data:`STATUS_OF`, and the code its class carries."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls], type(exc).code
    return 500, bc.BigArraysError.code


def error_body(code: str, message: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": code, "message": message, "detail": detail or {}}


def _detail_of(exc: bc.BigArraysError) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    if isinstance(exc, bc.AlignmentError):
        if isinstance(exc.nearest, bc.Box):
            detail["nearest"] = exc.nearest.to_colon()
        if isinstance(exc.box, bc.Box):
            detail["bbox"] = exc.box.to_colon()
        if exc.reason:
            detail["reason"] = exc.reason
    for attr in ("key", "field"):
        value = getattr(exc, attr, None)
        if value is not None:
            detail[attr] = value
    return detail


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _redactor(request: Request) -> Redactor:
    """The worker's :class:`Redactor` (none before the lifespan has opened the datasets,
    when there is no storage to hide)."""
    state = getattr(request.app.state, "bigarrays", None)
    return state.redactor if state is not None else Redactor({})


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    redact = _redactor(request)
    return _json(exc.status, error_body(exc.code, redact.apply(exc.message), redact.apply_all(exc.detail)),
                 exc.headers)


async def _bigarrays_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, bc.BigArraysError)
    status, code = status_of(exc)
    if status >= 500:  # the log is the operator's: it keeps the storage URLs
        log.warning("%s %s -> %d %s: %s", request.method, request.url.path, status, code, exc)
    redact = _redactor(request)
    return _json(status, error_body(code, redact.apply(str(exc)), redact.apply_all(_detail_of(exc))))


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    """The client went away before its request body was read: no server error. The answer
    (499, "client closed request", as nginx counts it) reaches no one, but is what the
    metrics record."""
    assert isinstance(exc, ClientDisconnect)
    log.info("%s %s: the client disconnected before sending its whole body; nothing was written",
             request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: a JSON 500 that says so without any detail (the traceback goes to the log)."""
    return _json(500, error_body(bc.BigArraysError.code,
                                 f"internal error while answering {request.method} {request.url.path}; "
                                 "the server's log has the details"))


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
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(Exception, _internal_error)
