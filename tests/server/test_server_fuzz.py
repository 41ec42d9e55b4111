"""schemathesis, every check (``--checks all``), against a real server and its own OpenAPI
document: no 5xx, every status and header and body as documented, no 422, ``Allow`` and
OPTIONS right, schema-valid data accepted and invalid data refused. 0 failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from server_live import LiveServer, make_datasets

pytest.importorskip("schemathesis")

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("fuzz")
    urls, _ = make_datasets(str(root / "data"), np.random.default_rng(3))
    server = LiveServer(urls, str(root / "server.log"), args=["--write-token", "fuzz", "--max-cutout-mb", "2"])
    yield server
    server.stop()


def test_schemathesis_all_checks_find_nothing(fuzz_server: LiveServer, tmp_path: Path) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert exe is not None, "the schemathesis command is not installed with the package"
    done = subprocess.run(
        [exe, "--config-file", str(CONFIG), "run", f"{fuzz_server.url}/openapi.json", "--checks", "all",
         "--max-examples", "25", "--generation-deterministic", "--workers", "2",
         "--header", "Authorization: Bearer fuzz", "--no-color"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "NO_COLOR": "1"},
        cwd=tmp_path)  # schemathesis keeps its state in ./.schemathesis
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]  # schemathesis exits non-zero on any failure
    assert " passed" in report, report[-3000:]
    metrics = httpx.get(f"{fuzz_server.url}/metrics").text
    served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                 if line.startswith("bigarrays_requests_total{"))
    assert served >= 500  # the fuzzer really reached the server
    assert 'status="5' not in metrics
    assert "Traceback" not in fuzz_server.log()
