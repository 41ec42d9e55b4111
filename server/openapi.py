"""The OpenAPI description: every status a route really sends, with the error schema.

Owns: :func:`responses` (a route's ``responses=`` from the statuses it sends),
:class:`ErrorBody` (the one error schema), the status lists the routes share, and
:func:`install_openapi`, which post-processes FastAPI's document: FastAPI adds a 422 to every
route with parameters, which this server never sends (validation errors are 400s), so those
are removed; the ``ds`` parameter is described by the names this server serves and ``mip``
by its scales.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

__all__ = ["ERRORS_FILE", "ERRORS_READ", "ERRORS_WRITE", "RANGE_HEADERS", "ErrorBody", "binary_content",
           "install_openapi", "responses"]


class ErrorBody(BaseModel):
    """Every error answer: a machine code, a message naming what was wrong, and details."""

    error: str = Field(description="machine code, e.g. bad_bbox, not_found, too_large, upstream_timeout")
    message: str = Field(description="what was wrong, naming the bbox, key, parameter or dataset")
    detail: dict[str, Any] = Field(description="machine-readable details (e.g. split, nearest, bounds)")


DESCRIPTIONS = {
    200: "OK",
    206: "the bytes a Range asked for (Content-Range)",
    304: "not modified: If-None-Match names the current ETag",
    400: "bad bbox, chunk name or parameter",
    401: "PUT without a bearer token",
    403: "wrong token, or the server or dataset is read-only",
    404: "unknown dataset, mip, scale, chunk or file; a chunk that is not stored",
    406: "no available format in ?format= or Accept",
    409: "PUT not aligned to the chunk grid (detail.nearest)",
    412: "If-Match does not name the current ETag",
    413: "too large (detail.split lists pieces that fit)",
    416: "Range selects no byte (Content-Range: bytes */length)",
    502: "storage failed, a stored chunk does not decode, or the scale cannot be read",
    504: "storage did not answer within the storage timeout",
}

#: What every read of a dataset may answer besides its success.
ERRORS_READ = (400, 404, 406, 502, 504)
#: ... a PUT.
ERRORS_WRITE = (400, 401, 403, 404, 409, 502, 504)
#: ... a file of the precomputed tree.
ERRORS_FILE = (404, 502, 504)

RANGE_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "strong validator of this representation"},
    "Accept-Ranges": {"schema": {"type": "string"}, "description": "bytes"},
}


def binary_content(description: str, *media_types: str) -> dict[str, Any]:
    """A 200's ``content`` of binary bodies of ``media_types``."""
    return {"description": description,
            "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in media_types}}


def responses(*statuses: int, content: Mapping[str, Any] | None = None,
              headers: Mapping[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that sends ``statuses``: errors with :class:`ErrorBody`;
    200 and 206 with ``content`` (a :func:`binary_content`) and ``headers``."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if status >= 400:
            out[status] = {"model": ErrorBody, "description": DESCRIPTIONS[status]}
        elif status in (200, 206) and content is not None:
            out[status] = {**content, "description": DESCRIPTIONS[status] if status == 206 else content["description"]}
            if headers:
                out[status]["headers"] = dict(headers)
        else:
            out[status] = {"description": DESCRIPTIONS[status]}
    return out


def _drop_422(doc: dict[str, Any]) -> None:
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _plain_optional_parameters(doc: dict[str, Any]) -> None:
    """An optional query parameter is absent or a value: ``anyOf [T, null]`` becomes ``T``
    (a query string cannot carry a null)."""
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for param in operation.get("parameters", []):
                schema = param.get("schema", {})
                options = schema.get("anyOf")
                if isinstance(options, list):
                    kept = [o for o in options if o.get("type") != "null"]
                    if len(kept) == 1 and len(options) == 2:
                        del schema["anyOf"]
                        schema.update(kept[0])


def _describe_datasets(doc: dict[str, Any], names: Iterable[str], max_mips: int | None) -> None:
    names = sorted(names)
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for param in operation.get("parameters", []):
                if param.get("in") != "path":
                    continue
                if param.get("name") == "ds" and names:
                    param["schema"] = {"type": "string", "enum": names, "title": "Ds"}
                elif param.get("name") == "mip" and max_mips:
                    param["schema"] = {**param["schema"], "minimum": 0, "maximum": max_mips - 1}


def install_openapi(app: FastAPI, dataset_names: Iterable[str]) -> None:
    """Make ``app.openapi()`` build the document described in the module docstring (once the
    datasets are open, the ``mip`` parameter is bounded by the most scales a dataset has)."""
    names = list(dataset_names)

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _drop_422(doc)
            _plain_optional_parameters(doc)
            state = getattr(app.state, "bigarrays", None)
            max_mips = max((d.num_mips for d in state.datasets), default=None) if state is not None else None
            _describe_datasets(doc, names, max_mips)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
