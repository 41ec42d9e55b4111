"""moto's S3 server answering one request at a time: ``python serial_moto.py PORT``.

Real S3 applies a conditional write (``If-Match`` / ``If-None-Match``) atomically; moto's
threaded server checks the condition and stores the object in two steps, so two requests
served at the same moment can both pass the check. Served one at a time, every request is
atomic, as on S3, and the concurrent-writes test checks bigarrays' protocol, not moto's
threading. Everything else is moto's (``moto.server``'s app and request handler).
"""

from __future__ import annotations

import sys

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

try:  # the handler moto's own servers use (keeps its request logging quiet)
    from moto.moto_server.werkzeug_app import MotoRequestHandler as Handler
except ImportError:  # pragma: no cover - other moto layouts
    Handler = None  # type: ignore[assignment,misc]


def main(port: int) -> None:
    app = DomainDispatcherApplication(create_backend_app)
    kwargs = {"request_handler": Handler} if Handler is not None else {}
    make_server("127.0.0.1", port, app, threaded=False, **kwargs).serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
