"""A pass-through :class:`~tests.services.FaultProxy` that records every request it forwards.

Counting requests proves what timing cannot do reliably on a shared machine: that an operation
costs requests in proportion to its own size (``bc.open`` one GET of ``info``, a cutout one GET
per chunk it touches), not to the size of the volume.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import NamedTuple

from tests.services import FaultPlan, FaultProxy

__all__ = ["RecordedRequest", "RecordingProxy"]


class RecordedRequest(NamedTuple):
    """One forwarded request: method and path (percent-decoded, without the query)."""

    method: str
    path: str


class RecordingProxy(FaultProxy):
    """Forwards every request unchanged (no faults) and keeps a log of them.

    :meth:`take` returns the requests seen since the last call and clears the log.
    """

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, FaultPlan(first=0, fraction=0.0))
        self._log: list[RecordedRequest] = []
        self._log_lock = threading.Lock()

    async def _handle(self, request: object) -> object:
        from aiohttp import web

        assert isinstance(request, web.Request)
        with self._log_lock:
            self._log.append(RecordedRequest(request.method, urllib.parse.unquote(request.raw_path.split("?")[0])))
        return await super()._handle(request)

    def take(self) -> list[RecordedRequest]:
        """The requests recorded since the last call, in arrival order; the log is then empty."""
        with self._log_lock:
            out, self._log = self._log, []
        return out
