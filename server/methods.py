"""``OPTIONS`` and ``Allow``: which methods a path answers.

Owns: :class:`AllowMiddleware`. A plain ``OPTIONS`` request (CORS preflights are answered
before it, by :mod:`bigarrays_server.cors`) gets a 204 whose ``Allow`` lists every method
of every route matching the path, ``OPTIONS`` included; a path no route matches falls
through to the app's 404. A 405 gets the same ``Allow`` (Starlette would list the methods
of the first route that matches the path only, and GET and HEAD are separate routes here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AllowMiddleware", "allowed_methods"]

_ORDER = ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """The methods of every route whose path matches ``scope``'s, plus ``OPTIONS`` (empty
    when no route matches)."""
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches({**scope, "method": "__none__"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if not methods:
        return []
    methods.add("OPTIONS")
    return sorted(methods, key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m))


class AllowMiddleware:
    """Answer plain ``OPTIONS`` requests and correct the ``Allow`` of 405 answers."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Iterable[BaseRoute]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            methods = allowed_methods(self.routes(), scope)
            if methods:
                await Response(status_code=204, headers={"Allow": ", ".join(methods)})(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = allowed_methods(self.routes(), scope)
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(methods).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)
