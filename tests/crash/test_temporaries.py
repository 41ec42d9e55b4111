"""Temporary files of SIGKILLed writers (issue 11): found, reported, swept when stale, never a chunk.

``writer.py`` (the victim of ``test_sigkill``) is killed until it has left at least one
``.bigarrays-tmp-*`` file (it writes through named temporaries, as on a file system without
unnamed ones: elsewhere a write of a new key leaves none, and a rewrite only while it renames
the finished file over the key). Then: ``bigarrays verify`` lists it as recent and leaves it; once it
is older than an hour (its mtime set back) verify exits 3 and ``verify --fix`` removes it and
nothing else; and a job writing the scale sweeps stale ones by itself, once per directory.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.ingest import ingest
from bigarrays_core.kvstore import LocalStore
from bigarrays_core.sources import ArraySource
from tests.cli.conftest import run_bigarrays

from .test_sigkill import TMP_PREFIX, run_and_kill
from .writer import create, pattern

MAX_KILLS = 60


def _temporaries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(f"{TMP_PREFIX}*") if p.is_file())


def _killed_until_a_temporary_is_left(raw: Path, gz: Path) -> list[Path]:
    delays = random.Random(7).choices(range(5, 151), k=MAX_KILLS)
    for delay_ms in delays:
        run_and_kill(raw, gz, delay_ms / 1000, named=True)
        left = _temporaries(raw) + _temporaries(gz)
        if left:
            return left
    pytest.fail(f"{MAX_KILLS} SIGKILLed writers left no temporary file")


def _age(paths: list[Path], seconds: float) -> None:
    then = time.time() - seconds
    for p in paths:
        os.utime(p, (then, then))


def _chunk_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(TMP_PREFIX)}


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset (raw or gzip) in which SIGKILLed writers left at least one temporary file."""
    top = tmp_path_factory.mktemp("killed")
    raw, gz = top / "raw", top / "gzip"
    create(str(raw), None)
    create(str(gz), "gzip")
    _killed_until_a_temporary_is_left(raw, gz)
    return raw if _temporaries(raw) else gz


def _copy(killed: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(killed, root)  # copy2: mtimes kept
    return root


@pytest.mark.slow
def test_verify_reports_and_fixes_what_killed_writers_left(killed: Path, tmp_path: Path) -> None:
    root = _copy(killed, tmp_path)
    mine = _temporaries(root)
    assert mine
    r = run_bigarrays(["verify", str(root), "--quiet"])
    assert r.code == 0, r.err  # recent temporaries may belong to a live writer: not an error
    for p in mine:
        assert f"leftover {p.relative_to(root)}" in r.out and "left alone" in r.out
    assert "0 bad" in r.err
    _age(mine, 2 * 3600)
    chunks = _chunk_files(root)
    r = run_bigarrays(["verify", str(root), "--quiet"])
    assert r.code == 3 and "stale" in r.out and "--fix" in r.err, (r.out, r.err)
    r = run_bigarrays(["verify", str(root), "--fix", "--quiet"])
    assert r.code == 0, r.err
    assert _temporaries(root) == [] and _chunk_files(root) == chunks  # only the temporaries went
    assert f"{len(mine)} removed" in r.err


@pytest.mark.slow
def test_writing_a_scale_sweeps_stale_temporaries_once(killed: Path, tmp_path: Path) -> None:
    root = _copy(killed, tmp_path)
    ba = bc.open(str(root))
    stale = _temporaries(root)
    _age(stale, 2 * 3600)
    fresh = root / ba.key / f"{TMP_PREFIX}written-just-now"
    fresh.write_bytes(b"a live writer's half value")
    ingest(ArraySource(pattern("A")[:64, :64, :32]), ba, offset=(-64, 0, 16))
    assert _temporaries(root) == [fresh]  # stale ones swept, the recent one kept
    # Once per directory and process: a second job in this process does not list it again.
    late = root / ba.key / f"{TMP_PREFIX}stale-later"
    late.write_bytes(b"x")
    _age([late], 2 * 3600)
    ingest(ArraySource(pattern("A")[:64, :64, :32]), ba, offset=(-64, 0, 16))
    assert late.exists()
    assert LocalStore(str(root)).remove_stale_temporaries(ba.key) == [f"{ba.key}/{late.name}"]
    got = bc.open(str(root), fill_missing=False)[-64:0, 0:64, 16:48]
    np.testing.assert_array_equal(got, pattern("A")[:64, :64, :32])


def test_a_plain_write_sweeps_stale_temporaries_too(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ba = bc.create(url, dtype="uint8", size=(64, 64, 32), chunk_size=(32, 32, 32))
    scale = tmp_path / "ds" / ba.key
    scale.mkdir(parents=True)
    stale, fresh = scale / f"{TMP_PREFIX}killed-long-ago", scale / f"{TMP_PREFIX}being-written"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    _age([stale], 2 * 3600)
    bc.open(url)[0:32, 0:32, 0:32] = 1  # a new process's first write into the scale
    assert not stale.exists() and fresh.exists()
