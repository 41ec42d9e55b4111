"""The HTTP protocol the workers speak: uvicorn's httptools protocol with limits on clients.

Owns: :class:`BoundedHttpProtocol` (uvicorn's ``http=`` class, by import string, so every
worker process builds it) and :class:`Limits`. uvicorn bounds the time between requests on
a kept-alive connection, but not how long a client may take to send a request: a connection
that never finishes its headers, or pauses forever in a PUT body, would stay open for good,
and enough of them exhaust a worker. Here, per worker process:

* **header timeout**: a request's head (request line and headers) must arrive within
  ``header_timeout`` seconds of the connection (or of the first read that left it
  incomplete); else a 408 is sent (nothing, when the client sent nothing) and the connection
  closed;
* **head size**: a head over ``max_header_bytes`` gets a 431 and the connection closed;
* **body timeout**: a request body may pause at most ``body_timeout`` seconds between two
  reads (not while the server itself is not reading); else the connection is closed, and
  the route sees the client go away (nothing is written; status 499 in the metrics);
* **connections**: more than ``max_connections`` open connections and a new one gets a 503
  (``Retry-After: 1``) and is closed at once.

The limits come from the ``BIGARRAYS_*`` settings of the process (as the app's do).

**Direct answers.** A GET or HEAD without a body that the app's fast path answers (a fresh
cached chunk, a small cutout of cached chunks: :mod:`bigarrays_server.fastpath`) is answered
here, as soon as its head is parsed, with the fast path's own status, headers and body written
as uvicorn writes them (its default ``date`` and ``server`` headers first): the same bytes,
without an ASGI task, its messages and the middleware stack, which cost several times the
answer itself. Anything else, and any request while an earlier answer of the connection is
still being sent, goes to the app as usual.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

__all__ = ["BoundedHttpProtocol", "Limits"]

log = logging.getLogger("bigarrays_server")

_BUSY: Final = (b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: 41\r\nconnection: close\r\n\r\ntoo many connections to this worker; retry")
_TIMEOUT: Final = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: 37\r\nconnection: close\r\n\r\nthe request's headers took too long\n")
_TOO_BIG: Final = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: 37\r\nconnection: close\r\n\r\nthe request's headers are too large\n")


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 65536
    max_connections: int = 1000

    @classmethod
    def from_settings(cls) -> Limits:
        from bigarrays_server.settings import Settings

        s = Settings()
        return cls(s.header_timeout, s.body_timeout, s.max_header_bytes, s.max_connections)


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :class:`Limits` (see the module)."""

    #: The process's limits, read once (tests may set it).
    limits: ClassVar[Limits | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if BoundedHttpProtocol.limits is None:
            BoundedHttpProtocol.limits = Limits.from_settings()
        self._limits = BoundedHttpProtocol.limits
        self._timer: asyncio.TimerHandle | None = None
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._in_body = False
        #: The request being parsed was answered directly (see :meth:`_answer_directly`).
        self._answered = False

    # -- timers ----------------------------------------------------------------------------------
    def _arm(self, seconds: float, handler: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, answer: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            if answer:
                self.transport.write(answer)
            self.transport.close()

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._in_head and not self.transport.is_closing():
            log.info("closing a connection whose request headers took more than %g s", self._limits.header_timeout)
            self._refuse(_TIMEOUT if self._head_bytes else b"")

    def _body_timed_out(self) -> None:
        self._timer = None
        if not self._in_body or self.transport.is_closing():
            return
        if self.flow.read_paused:  # the server is not reading: not the client's pause
            self._arm(self._limits.body_timeout, self._body_timed_out)
            return
        log.info("closing a connection whose request body paused for more than %g s", self._limits.body_timeout)
        self._refuse(b"")

    # -- connection ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            log.warning("refusing a connection: this worker has %d open (the limit is %d)",
                        len(self.connections) - 1, self._limits.max_connections)
            self._refuse(_BUSY)
            return
        self._arm(self._limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse(_TOO_BIG)  # a head still incomplete after more bytes than any head may have
            elif self._timer is None:
                # A head that did not arrive whole: from now on it has the header timeout to
                # finish (heads that arrive whole, the usual case, never need a timer).
                self._arm(self._limits.header_timeout, self._head_timed_out)

    # -- parser callbacks ------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._unset_keepalive_if_required()  # a request pipelined behind one answered directly
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0
        self._in_body = False

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.transport.is_closing():
            return
        self._in_head = False
        self._head_bytes = 0
        self._disarm()
        if self._head_size > self._limits.max_header_bytes:
            self._refuse(_TOO_BIG)
            return
        if self._answer_directly():
            return
        super().on_headers_complete()
        self._in_body = True
        self._arm(self._limits.body_timeout, self._body_timed_out)

    def _answer_directly(self) -> bool:
        """Answer the request whose head was just parsed from the app's fast path, if it has
        one for it; True when answered (the request then takes no ASGI cycle)."""
        fast = getattr(self.app, "fast", None)
        if (fast is None or self.access_log or self.flow.write_paused or self.pipeline
                or (self.cycle is not None and not self.cycle.response_complete)):
            return False
        method = self.parser.get_method()
        if method not in (b"GET", b"HEAD"):
            return False
        for name, value in self.headers:
            if name in (b"content-length", b"transfer-encoding", b"expect", b"upgrade") and value not in (b"0",):
                return False
        start = time.perf_counter()
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path.decode("ascii")
        path = urllib.parse.unquote(raw_path) if "%" in raw_path else raw_path
        answer = fast.answer(method.decode(), self.root_path + path, parsed.query or b"", self.headers)
        if answer is None:
            return False
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        head = [STATUS_LINE[answer.status]]
        for name, value in self.server_state.default_headers:
            head += [name.lower(), b": ", value, b"\r\n"]
        head.append(answer.header_lines())
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        body = answer.body
        if body:
            self.transport.writelines((b"".join(head), body))  # one writev
        else:
            self.transport.write(b"".join(head))
        fast.metrics.observe(method.decode(), answer.route, answer.status, time.perf_counter() - start, len(body))
        self.server_state.total_requests += 1
        self._answered = True
        if not keep_alive:
            self.transport.close()
        return True

    def on_body(self, body: bytes) -> None:
        if self.transport.is_closing() and self.cycle is None:
            return  # type: ignore[unreachable]  # uvicorn annotates cycle as never None, yet sets None
        super().on_body(body)
        if self._in_body:
            self._arm(self._limits.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        if self._answered:  # answered directly: no cycle; wait for the next request
            self._answered = False
            if not self.transport.is_closing():
                self._unset_keepalive_if_required()
                self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                    self.timeout_keep_alive_handler)
            return
        if self.transport.is_closing() and self.cycle is None:
            return  # type: ignore[unreachable]  # uvicorn annotates cycle as never None, yet sets None
        super().on_message_complete()
