"""Fixtures of the server tests: datasets on disk (written once per module), the app in-process."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from bigarrays_server import Settings, create_app
from server_live import InProcess, make_datasets

Writable = tuple[InProcess, dict[str, str], dict[str, np.ndarray]]

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """``({name: url}, {name: mip-0 voxels})`` of the datasets in :func:`server_live.make_datasets`."""
    rng = np.random.default_rng(20261124)
    return make_datasets(str(tmp_path_factory.mktemp("server-datasets")), rng)


@pytest.fixture(scope="module")
def urls(datasets: tuple[dict[str, str], dict[str, np.ndarray]]) -> dict[str, str]:
    return datasets[0]


@pytest.fixture(scope="module")
def arrays(datasets: tuple[dict[str, str], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return datasets[1]


@pytest.fixture(scope="module")
def api(urls: dict[str, str]) -> Iterator[InProcess]:
    """The app over every dataset, read-only, with a 4 MiB cutout limit."""
    client = InProcess(create_app(Settings(datasets=urls, max_cutout_mb=4, cache_mb=64)))
    yield client
    client.close()


@pytest.fixture
def writable(tmp_path: object, rng: np.random.Generator) -> Iterator[Writable]:
    """A fresh copy of the datasets behind an app that takes writes with :data:`TOKEN`."""
    urls, arrays = make_datasets(str(tmp_path), rng)
    client = InProcess(create_app(Settings(datasets=urls, write_token=TOKEN, max_cutout_mb=4, cache_mb=64)))
    yield client, urls, arrays
    client.close()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)
