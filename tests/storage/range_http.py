"""A static-file HTTP server on 127.0.0.1 that answers ``Range`` requests, for the range tests.

Python's ``http.server`` ignores ``Range`` (always a 200 with the whole file), which the
``http`` store kind already exercises. :class:`RangeHTTPServer` honours one ``bytes=a-b`` /
``bytes=a-`` / ``bytes=-n`` range per request as RFC 9110 says (206 with ``Content-Range``;
416 with ``Content-Range: bytes */size`` when the range starts at or past the end), or
misbehaves on purpose (``mode``), so the tests can check that a store never returns wrong
bytes:

* ``"honour"``: as above;
* ``"wrong-start"``: a 206 whose range starts one byte later than asked (``Content-Range``
  says so truthfully);
* ``"gzip"``: the 206 carries ``Content-Encoding: gzip`` over the raw bytes' range.

Every request is counted (``requests``) with the ``Range`` header it carried (``ranges``).
Runs in a daemon thread; :meth:`RangeHTTPServer.stop` shuts it down and joins it.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from typing import Any

__all__ = ["RangeHTTPServer"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def _serve(self, body: bool) -> None:
        header = self.headers.get("Range")
        owner = self.server.owner
        with owner.lock:
            owner.requests += 1
            owner.ranges.append(header)
        path = self.translate_path(self.path)
        if os.path.isdir(path):  # an HTML directory index, as http.server makes (for listings)
            if body:
                super().do_GET()
            else:
                super().do_HEAD()
            return
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        size = len(data)
        m = _RANGE.fullmatch(header.strip()) if header else None
        if m is None or (not m.group(1) and not m.group(2)):
            self._send(200, data, {}, body)
            return
        if m.group(1):
            start = int(m.group(1))
            stop = min(int(m.group(2)) + 1, size) if m.group(2) else size
        else:  # a suffix: the last n bytes
            start, stop = max(size - int(m.group(2)), 0), size
        if start >= size:
            self._send(416, b"", {"Content-Range": f"bytes */{size}"}, body)
            return
        headers = {}
        if owner.mode == "wrong-start":
            start = min(start + 1, stop - 1)
        elif owner.mode == "gzip":
            headers["Content-Encoding"] = "gzip"
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        self._send(206, data[start:stop], headers, body)

    def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True
    owner: RangeHTTPServer


class RangeHTTPServer:
    """Serves the files under ``root`` on a free port of 127.0.0.1, with ``Range`` (see module)."""

    def __init__(self, root: str, mode: str = "honour") -> None:
        if mode not in ("honour", "wrong-start", "gzip"):
            raise ValueError(f"unknown mode {mode!r}")
        self.root = root
        self.mode = mode
        self.lock = threading.Lock()
        self.requests = 0
        self.ranges: list[str | None] = []
        handler: Any = functools.partial(_Handler, directory=root)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.owner = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="range-http", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget the requests counted so far."""
        with self.lock:
            self.requests = 0
            self.ranges = []

    def start(self) -> RangeHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> RangeHTTPServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
