"""Registering a route for GET and HEAD at once.

FastAPI's ``@app.get`` does not answer HEAD (fastapi#1773), and one route with both methods
gives both operations the same OpenAPI operation id; two routes sharing the endpoint give
each its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

__all__ = ["get_and_head"]

F = TypeVar("F", bound=Callable[..., Any])


def get_and_head(router: APIRouter, path: str, **kwargs: Any) -> Callable[[F], F]:
    """Decorator: ``endpoint`` answers GET and HEAD on ``path`` (``kwargs`` as for ``api_route``)."""

    def register(endpoint: F) -> F:
        router.api_route(path, methods=["GET"], **kwargs)(endpoint)
        router.api_route(path, methods=["HEAD"], **kwargs)(endpoint)
        return endpoint

    return register
