"""A real server process started through ``bigarrays_server.run`` rather than the CLI.

Owns: :class:`ScriptServer`, a :class:`~server_live.LiveServer` (same readiness check, same
stop by session id) whose process first registers one more store scheme and then serves
with any :class:`~bigarrays_server.settings.Settings` options:

``impatient+http://HOST/PATH`` opens ``http://HOST/PATH`` with a 1 s timeout and no retries,
so a test can make storage refuse or time out (through a :class:`~tests.services.FaultProxy`)
and see the server's answer at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from server_live import LiveServer, free_port

__all__ = ["ScriptServer"]

SCRIPT = """
import json, sys
import bigarrays_core as bc
from bigarrays_core.kvstore.fsspec_store import FsspecStore
from bigarrays_server import run

def impatient(url, **options):
    return FsspecStore("http" + url[len("impatient+http"):], timeout=1.0, retries=0, **options)

bc.register_store("impatient+http", impatient)
spec = json.loads(sys.argv[1])
run(spec["datasets"], host="127.0.0.1", port=spec["port"], log_level="info", **spec["options"])
"""


class ScriptServer(LiveServer):
    """``bigarrays_server.run(datasets, **options)`` in a subprocess on a free 127.0.0.1 port."""

    def __init__(self, datasets: Mapping[str, str], log_path: str, *, env: Mapping[str, str] | None = None,
                 **options: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        spec = {"datasets": dict(datasets), "port": self.port, "options": options}
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(spec)],
                                     env={**os.environ, **(env or {})}, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(60.0)
