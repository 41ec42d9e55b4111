"""Crash safety of ingest (issue 11): a SIGKILLed ingest resumes, writing only what it had not recorded.

``ingester.py`` ingests a ``.npy`` into a gzip dataset and prints how many chunks it has
finished. The test kills it with SIGKILL after a chosen number of them (once just after a
task was recorded, once a little later, most likely while it writes the next ones), then
runs the same ingest again: every chunk of a task recorded as done before the kill is left
untouched (same file, same mtime), exactly the chunks of the other tasks are written, and
the dataset then equals the source.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.ingest import ingest, ingest_stage
from bigarrays_core.resume import PROGRESS_PREFIX
from bigarrays_core.sources import open_source

INGESTER = Path(__file__).with_name("ingester.py")


def _kill_after(source: Path, dest: Path, chunks: int, delay: float) -> None:
    with subprocess.Popen([sys.executable, str(INGESTER), str(source), str(dest)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            line = ""
            for line in proc.stdout:  # noqa: B007 - the last line is checked below
                if line.startswith("done ") and int(line.split()[1]) >= chunks:
                    break
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert line.startswith("done "), f"the ingester stopped early: {line!r} {proc.stderr.read()!r}"
    assert proc.returncode == -signal.SIGKILL, "the ingester finished before the kill"


def _recorded(dest: Path) -> set[int]:
    (record,) = (dest / PROGRESS_PREFIX).glob("*.json")
    runs = json.loads(record.read_text())["tasks"].get("ingest mip 0", [])
    return {i for a, b in runs for i in range(a, b)}


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.013])
def test_sigkilled_ingest_resumes_with_only_what_is_left(tmp_path: Path, delay: float) -> None:
    vol = np.random.default_rng(5).integers(1, 255, size=(128, 128, 96), dtype=np.uint8)
    source = tmp_path / "v.npy"
    np.save(source, vol)
    dest = tmp_path / "out"
    ba = bc.create(str(dest), dtype="uint8", size=vol.shape, chunk_size=(16, 16, 8), compression="gzip")
    refs = ba.chunks()  # 8 x 8 x 12 = 768 chunks; a task is 2 rows (16 chunks)
    _kill_after(source, dest, 96, delay)
    tasks = ingest_stage(open_source(str(source)), ba).tasks
    done = [r for i in sorted(_recorded(dest)) for r in ba.chunks(tasks[i])]
    assert 96 <= len(done) < len(refs)
    finished = {r.key: (dest / (r.key + ".gz")).stat() for r in done}
    report = ingest(open_source(str(source)), bc.open(str(dest)))
    assert (report.done_before, report.written) == (len(done), len(refs) - len(done))
    for key, before in finished.items():
        after = (dest / (key + ".gz")).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), key
    np.testing.assert_array_equal(bc.open(str(dest), fill_missing=False)[:, :, :, 0], vol)
