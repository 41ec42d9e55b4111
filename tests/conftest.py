"""Fixtures shared by every test folder: the storage stand-ins, started on first use.

Session-scoped, bound to 127.0.0.1 on free ports, stopped by pid at the end:

* ``s3_server``: moto's S3 server; the session's environment gets dummy ``AWS_*`` credentials
  and ``AWS_ENDPOINT_URL`` pointing at it, so ``s3://`` URLs need no options.
* ``gcs_server``: fake-gcs-server; ``STORAGE_EMULATOR_HOST`` points at it.
* ``http_server``: a threaded static-file server over a temporary directory.
"""

from __future__ import annotations

import os

# gcsfs reads this once, at import: it must be off before anything imports gcsfs, or every
# bucket operation against an emulator can stall for 60 s (shared/local-services.md §2c).
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
# Outputs a read must write completely are filled with 0xA5 first (here and in every server
# the tests start), so a voxel a read forgets to write fails the comparison with the model.
os.environ.setdefault("BIGARRAYS_POISON_BUFFERS", "1")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.services import (  # noqa: E402
    DUMMY_AWS_ENV,
    Service,
    StaticHTTPServer,
    start_fake_gcs,
    start_moto,
    start_static_http,
)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Service]:
    """moto's S3 server on 127.0.0.1, with the environment an S3 client needs to reach it."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
            mp.delenv(name, raising=False)
        for name, value in DUMMY_AWS_ENV.items():
            mp.setenv(name, value)
        service = start_moto()
        try:
            mp.setenv("AWS_ENDPOINT_URL", service.endpoint)
            yield service
        finally:
            service.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[Service]:
    """fake-gcs-server on 127.0.0.1, named by ``STORAGE_EMULATOR_HOST``."""
    with pytest.MonkeyPatch.context() as mp:
        service = start_fake_gcs()
        try:
            mp.setenv("STORAGE_EMULATOR_HOST", service.endpoint)
            yield service
        finally:
            service.stop()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticHTTPServer]:
    """A static-file server over a temporary directory (its ``root``)."""
    server = start_static_http(str(tmp_path_factory.mktemp("http-root")))
    try:
        yield server
    finally:
        server.stop()
