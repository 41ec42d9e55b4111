"""CORS on every response, and answers to preflight requests.

Owns: :class:`CorsPolicy` (which origins are allowed and the headers that says, as raw
ASGI pairs) and :class:`CorsMiddleware`, which applies it. The chunk fast path
(:mod:`bigarrays_server.fastpath`) answers without passing through the middleware and adds
the same headers from the same policy. Neuroglancer in a browser reads ``/precomputed``
from another origin; a response without ``Access-Control-Allow-Origin`` reaches it as
status 0, drawn as missing data (docs/server.md, "The Neuroglancer tree"). Unlike Starlette's
``CORSMiddleware``, the headers are added to every response, error or not, with or
without an ``Origin`` header, and the ``X-*`` headers of cutouts are exposed to scripts.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ALLOW_HEADERS", "ALLOW_METHODS", "EXPOSE_HEADERS", "CorsMiddleware", "CorsPolicy"]

ALLOW_METHODS = "GET, HEAD, PUT, OPTIONS"
ALLOW_HEADERS = ("Accept, Accept-Encoding, Authorization, Content-Type, Range, If-None-Match, If-Match, If-Range, "
                 "Cache-Control")
EXPOSE_HEADERS = ("Content-Length, Content-Encoding, Content-Range, Content-Type, Accept-Ranges, ETag, "
                  "Last-Modified, X-Bbox, X-Shape, X-Dtype, X-Order, X-Axes, X-Mip, X-Chunks, X-Encoding, "
                  "X-Compression, X-Content-Encoding, X-Image-Axes, X-Cache, X-Bigarrays-Worker")

_ALLOW = b"access-control-allow-origin"
_EXPOSE = (b"access-control-expose-headers", EXPOSE_HEADERS.encode("latin-1"))
_REPLACED = frozenset({_ALLOW, _EXPOSE[0]})  # set by the middleware, replacing a route's own


class CorsPolicy:
    """The allowed ``origins`` (``["*"]`` allows any origin) and the headers that follow."""

    def __init__(self, origins: Sequence[str] = ("*",)) -> None:
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)
        self._any: tuple[tuple[bytes, bytes], ...] = ((_ALLOW, b"*"), _EXPOSE)

    def allow_origin(self, origin: str | None) -> str | None:
        """What ``Access-Control-Allow-Origin`` says to ``origin``, or None (no CORS headers)."""
        if self.any_origin:
            return "*"
        return origin if origin in self.origins else None

    def headers_for(self, origin: str | None) -> tuple[tuple[bytes, bytes], ...]:
        """The headers added to a response that has no ``Vary`` header, for a request from
        ``origin`` (lower-case raw ASGI pairs, in the order the middleware adds them)."""
        if self.any_origin:
            return self._any
        allow = self.allow_origin(origin)
        if allow is None:
            return ()
        return ((_ALLOW, allow.encode("latin-1")), _EXPOSE, (b"vary", b"Origin"))


    def add_to(self, raw: list[tuple[bytes, bytes]], origin: str | None) -> list[tuple[bytes, bytes]]:
        """``raw`` response headers with this policy's for ``origin`` (its ``Vary`` merged into
        the response's own): what every answer gets, routed or from the fast path."""
        extra = self.headers_for(origin)
        if not extra:
            return raw
        out = [(k, v) for k, v in raw if k.lower() not in _REPLACED]
        vary = [i for i, (k, _) in enumerate(out) if k.lower() == b"vary"]
        for name, value in extra:
            if name == b"vary" and vary:  # merge with the response's own Vary
                k, v = out[vary[0]]
                out[vary[0]] = (k, v + b", " + value)
            else:
                out.append((name, value))
        return out


class CorsMiddleware:
    """Add the CORS headers of ``policy`` to every HTTP response; answer preflights."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allow = self.policy.allow_origin(origin)
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
        if not allow:
            await self.app(scope, receive, send)
            return
        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": self.policy.add_to(list(message.get("headers", ())), origin)}
            await send(message)

        await self.app(scope, receive, send_wrapper)
