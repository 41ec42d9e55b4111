"""Crash safety (issue 2): SIGKILL a writer at random moments; no chunk is ever torn.

A subprocess (``writer.py``) keeps overwriting a raw and a gzip dataset with whole-chunk
patterns A and B. After each kill, every chunk of both datasets must decode with
bigarrays to exactly pattern A or exactly pattern B (raw files also have exactly the
clipped chunk's byte size), and the temporary files an interrupted write leaves behind
(``.bigarrays-tmp-*``) must be invisible to ``LocalStore.list()`` and to reads. A writer
of new keys killed mid-write leaves nothing at all: no temporary file, no partial key.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.kvstore import LocalStore, local

from .writer import CHANNELS, create, pattern

WRITER = Path(__file__).with_name("writer.py")
TRIALS = 30
TMP_PREFIX = ".bigarrays-tmp-"


def run_and_kill(raw: Path, gz: Path, delay: float, *, named: bool = False) -> None:
    """Start the writer (``--named`` with ``named``), wait for its ``ready``, let it write for
    ``delay`` seconds, SIGKILL it."""
    options = ["--named"] if named else []
    with subprocess.Popen([sys.executable, str(WRITER), *options, str(raw), str(gz)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            line = proc.stdout.readline()
            if line == b"ready\n":
                time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert line == b"ready\n", f"writer did not start: {line!r} {proc.stderr.read()!r}"
    assert proc.returncode == -signal.SIGKILL, f"writer exited by itself ({proc.returncode}) before the kill"


def check_dataset(path: Path, raw: bool, patterns: dict[str, np.ndarray]) -> Counter[str]:
    """Assert every chunk of ``path`` is wholly A or wholly B; count which, and stale temp files."""
    ba = bc.open(str(path), fill_missing=False)
    seen: Counter[str] = Counter()
    for ref in ba.chunks():
        stored = path / (ref.key if raw else ref.key + ".gz")
        assert stored.is_file(), f"{stored} is missing"
        if raw:
            expected_size = int(np.prod(ref.box.shape)) * CHANNELS * ba.dtype.itemsize
            assert stored.stat().st_size == expected_size, f"{stored} is {stored.stat().st_size} bytes"
        try:
            got = ba.read(ref.box)
        except (bc.ChunkDecodeError, bc.ChunkNotFoundError) as exc:
            pytest.fail(f"chunk {ref.key} of {path.name} is unreadable after the kill: {exc}")
        where = ref.box.slices_in(ba.bounds) + (slice(None),)
        match = [name for name, values in patterns.items() if np.array_equal(got, values[where])]
        assert match, f"chunk {ref.key} of {path.name} is neither pattern A nor pattern B"
        seen[match[0]] += 1
    keys = set(LocalStore(str(path)).list())
    assert keys == {"info"} | {ref.key for ref in ba.chunks()}, f"unexpected keys {sorted(keys)[:5]}"
    seen["tmp"] = sum(name.startswith(TMP_PREFIX) for _, _, names in os.walk(path) for name in names)
    return seen


@pytest.mark.slow
def test_sigkill_never_leaves_a_torn_chunk(tmp_path: Path) -> None:
    raw, gz = tmp_path / "raw", tmp_path / "gzip"
    create(str(raw), None)
    create(str(gz), "gzip")
    patterns = {"A": pattern("A"), "B": pattern("B")}
    delays = random.Random(2).choices(range(5, 151), k=TRIALS)
    saw_b = 0
    for delay_ms in delays:
        run_and_kill(raw, gz, delay_ms / 1000)
        for path, is_raw in ((raw, True), (gz, False)):
            seen = check_dataset(path, is_raw, patterns)
            saw_b += seen["B"]
    # The writer's first pass writes B over the initial A: B chunks prove the kills hit a live writer.
    assert saw_b > 0
    # Leftover temp files do not stop later writes either.
    for path in (raw, gz):
        ba = bc.open(str(path))
        ba[:, :, :] = patterns["A"]
        np.testing.assert_array_equal(ba[:, :, :], patterns["A"])


def test_stale_temp_files_are_not_keys_and_do_not_break_reads(tmp_path: Path) -> None:
    """What a killed write can leave behind: a half-written temp file beside the chunks."""
    for compression in (None, "gzip"):
        path = tmp_path / str(compression)
        ba = create(str(path), compression)
        keys = set(ba.store.list())
        scale_dir = path / ba.key
        (scale_dir / f"{TMP_PREFIX}0123abcd").write_bytes(b"\x1f\x8b\x08torn")
        (path / f"{TMP_PREFIX}4567ef00").write_bytes(b"{\"half\": ")
        assert set(LocalStore(str(path)).list()) == keys
        assert set(LocalStore(str(path)).list(ba.key + "/")) == keys - {"info"}
        again = bc.open(str(path), fill_missing=False)
        np.testing.assert_array_equal(again[:, :, :], pattern("A"))
        assert again.missing_chunks() == []


NEW_KEYS_WRITER = """
import sys
from bigarrays_core.kvstore import LocalStore, local
store = LocalStore(sys.argv[1])
value = bytes(range(256)) * 16384
print("ready", flush=True)
i = 0
while True:
    store.set(f"s/{i}", value)
    i += 1
"""


@pytest.mark.slow
@pytest.mark.skipif(not local._UNNAMED_FILES, reason="needs O_TMPFILE and /proc (Linux)")
def test_a_killed_writer_of_new_keys_leaves_no_file_behind(tmp_path: Path) -> None:
    """Each value (4 MiB) goes to an unnamed file, linked under its key once written whole:
    a kill mid-write leaves neither a temporary name nor a partial key."""
    value = bytes(range(256)) * 16384
    written = 0
    for trial, delay_ms in enumerate(random.Random(3).choices(range(20, 120), k=8)):
        root = tmp_path / str(trial)
        with subprocess.Popen([sys.executable, "-c", NEW_KEYS_WRITER, str(root)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            try:
                line = proc.stdout.readline()
                time.sleep(delay_ms / 1000)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            assert line == b"ready\n", proc.stderr.read()
        names = sorted(os.listdir(root / "s")) if (root / "s").exists() else []
        assert not [n for n in names if n.startswith(TMP_PREFIX)], names
        for name in names:
            assert (root / "s" / name).read_bytes() == value, f"key s/{name} is not whole"
        written += len(names)
    assert written > 0  # the kills hit writers at work
