"""CORS on every response, and answers to preflight requests.

Owns: :class:`CorsMiddleware`. Neuroglancer in a browser reads ``/precomputed`` from
another origin; a response without ``Access-Control-Allow-Origin`` reaches it as status 0,
drawn as missing data (http-api-notes.md §5b). Unlike Starlette's ``CORSMiddleware``, the
headers are added to every response, error or not, with or without an ``Origin`` header,
and the ``X-*`` headers of cutouts are exposed to scripts.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ALLOW_HEADERS", "ALLOW_METHODS", "EXPOSE_HEADERS", "CorsMiddleware"]

ALLOW_METHODS = "GET, HEAD, PUT, OPTIONS"
ALLOW_HEADERS = "Accept, Accept-Encoding, Authorization, Content-Type, Range"
EXPOSE_HEADERS = ("Content-Length, Content-Encoding, Content-Range, Content-Type, ETag, X-Bbox, X-Shape, "
                  "X-Dtype, X-Order, X-Axes, X-Mip, X-Chunks, X-Encoding, X-Compression, X-Cache")


class CorsMiddleware:
    """Add CORS headers for ``origins`` (``["*"]`` allows any origin)."""

    def __init__(self, app: ASGIApp, origins: Sequence[str] = ("*",)) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)

    def _allow_origin(self, origin: str | None) -> str | None:
        if self.any_origin:
            return "*"
        return origin if origin in self.origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        allow = self._allow_origin(headers.get("origin"))
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            out = {
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": headers.get("access-control-request-headers") or ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            }
            if allow:
                out["Access-Control-Allow-Origin"] = allow
            await Response(status_code=204 if allow else 403, headers=out)(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and allow:
                h = MutableHeaders(scope=message)
                h["Access-Control-Allow-Origin"] = allow
                h["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                if not self.any_origin:
                    h.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_wrapper)
