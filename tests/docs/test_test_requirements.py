"""README's test command on a machine that lacks a test dependency: one clear message, not a crash.

Without pytest-timeout, pytest used to die with ``INTERNALERROR ... Unknown config option:
timeout`` (pyproject.toml sets ``timeout``). tests/conftest.py now checks the ``test``
extra's requirements first. Here a pytest run in a subprocess is made to see pytest-timeout
as not installed (its distribution metadata hidden), which is what a fresh venv without it
looks like to the check.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_RUN_WITHOUT = """
import sys
from importlib import metadata

hidden = set(sys.argv[1].split(","))
real = metadata.version

def version(name):
    if name.lower() in hidden:
        raise metadata.PackageNotFoundError(name)
    return real(name)

metadata.version = version
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "tests/docs/test_test_requirements.py", "-k", "nothing"]))
"""


def _pytest_without(*names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _RUN_WITHOUT, ",".join(names)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_a_missing_test_dependency_is_named_with_the_install_command() -> None:
    out = _pytest_without("pytest-timeout", "hypothesis")
    text = out.stdout + out.stderr
    assert out.returncode == 4, text  # pytest's usage error
    assert "INTERNALERROR" not in text and "Traceback" not in text
    assert ("the test suite needs packages that are not installed: pytest-timeout>=2.2, hypothesis>=6.100. "
            'Install them with: python -m pip install -e ".[test]"') in text


def test_with_everything_installed_the_run_goes_ahead() -> None:
    out = _pytest_without()
    assert out.returncode == 5, out.stdout + out.stderr  # no test selected by "-k nothing": nothing wrong
