"""Fixtures for the sharded-format tests: a seeded RNG per test and fresh dataset URLs."""

from __future__ import annotations

import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id: reproducible, yet different for each case."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(params=["memory", "file"])
def dataset_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL where no dataset exists yet: ``memory://<unique>`` or ``file://<tmp dir>/ds``."""
    if request.param == "memory":
        return f"memory://sharding-tests-{uuid.uuid4().hex}"
    return (tmp_path / "ds").as_uri()
