"""Entity tags for every other GET: the routes that answer small JSON or text documents.

Owns: :class:`EntityTagMiddleware`. A 200 to a GET or HEAD that carries no ``ETag`` of its
own and whose body comes in one piece (the JSON routes, ``/metrics``, the OpenAPI document
and its pages) gets a strong ``ETag``, a digest of the body; a matching ``If-None-Match``
turns it into a 304, an ``If-Match`` naming another tag into a 412. The data routes
(cutouts, chunks, files, images) make their tags
from the stamps of what they read, without reading it, and answer their own conditions;
streamed answers pass through untouched.
"""

from __future__ import annotations

import hashlib
import json

from bigarrays_server.conditional import TAG_VERSION, precondition
from bigarrays_server.errors import error_body
from bigarrays_server.responses import NOT_MODIFIED_HEADERS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["EntityTagMiddleware"]


def _tag(body: bytes) -> bytes:
    h = hashlib.blake2b(body, digest_size=15, person=TAG_VERSION.encode()[:16])
    return b'"' + h.hexdigest().encode() + b'"'


class EntityTagMiddleware:
    """Tag whole-body 200 answers to GET and HEAD; answer ``If-None-Match`` with 304."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        conditions = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                      if k in (b"if-none-match", b"if-match")}
        held: Message | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                if message["status"] == 200 and not any(k.lower() == b"etag" for k, _ in headers):
                    held = message  # wait for the body
                    return
                await send(message)
                return
            if held is not None and message["type"] == "http.response.body":
                start, held = held, None
                if message.get("more_body", False):  # streamed: no tag
                    await send(start)
                    await send(message)
                    return
                tag = _tag(bytes(message.get("body", b"")))
                headers = [*start.get("headers", ()), (b"etag", tag)]
                status = precondition(conditions, tag.decode(), method=scope["method"]) if conditions else None
                if status == 304:
                    kept = [(k, v) for k, v in headers if k.lower().decode("latin-1") in NOT_MODIFIED_HEADERS]
                    await send({"type": "http.response.start", "status": 304, "headers": kept})
                    await send({"type": "http.response.body", "body": b""})
                    return
                if status == 412:
                    body = json.dumps(error_body("precondition_failed", "If-Match does not name the current entity "
                                                 f"tag {tag.decode()}", {"etag": tag.decode()})).encode()
                    await send({"type": "http.response.start", "status": 412, "headers": [
                        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
                await send({**start, "headers": headers})
                await send(message)
                return
            await send(message)

        await self.app(scope, receive, send_wrapper)
