"""Fixtures shared by the core acceptance tests (issue 2).

``dataset_url`` is parametrised over the two stores every core behaviour must hold on:
a fresh ``memory://`` name and a ``file://`` directory under ``tmp_path``. ``rng`` is a
seeded generator so every failure reproduces.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20260224)


@pytest.fixture(params=["memory", "file"])
def dataset_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A URL where no dataset exists yet: ``memory://<unique>`` or ``file://<tmp dir>/ds``."""
    if request.param == "memory":
        yield f"memory://core-tests-{uuid.uuid4().hex}"
    else:
        yield f"file://{os.path.join(str(tmp_path), 'ds')}"


@pytest.fixture
def local_url(tmp_path: os.PathLike[str]) -> str:
    """A ``file://`` URL where no dataset exists yet (for tests that look at the files)."""
    return f"file://{os.path.join(str(tmp_path), 'ds')}"

