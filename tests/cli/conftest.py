"""Helpers for the command-line tests: run ``bigarrays`` in-process or as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from bigarrays_cli import main

BIGARRAYS = str(Path(sys.executable).with_name("bigarrays"))


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """``cli(*args)`` runs ``bigarrays`` in this process and returns its exit code and output."""

    def run(*args: str) -> Result:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        cap = capsys.readouterr()
        return Result(code, cap.out, cap.err)

    return run


def run_bigarrays(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """Run the installed ``bigarrays`` script in a subprocess."""
    proc = subprocess.run([BIGARRAYS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return Result(proc.returncode, proc.stdout, proc.stderr)
