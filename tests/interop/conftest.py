"""Fixtures for the interop tests: a seeded RNG per test and a fresh dataset directory."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id: reproducible, yet different for each case."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A directory path for one dataset (not created: the writer under test creates it)."""
    return tmp_path / "dataset"
