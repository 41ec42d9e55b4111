"""Fixtures shared by every test folder: the storage stand-ins, started on first use.

Before anything runs, :func:`pytest_configure` checks that what ``pip install -e ".[test]"``
installs is installed (the requirements of the ``test`` extra, as the installed
distribution declares them): a missing one stops the run with one message naming it and
the command, instead of a crash such as pytest's ``Unknown config option: timeout``.

Session-scoped, bound to 127.0.0.1 on free ports, stopped by pid at the end:

* ``s3_server``: moto's S3 server; the session's environment gets dummy ``AWS_*`` credentials
  and ``AWS_ENDPOINT_URL`` pointing at it, so ``s3://`` URLs need no options.
* ``gcs_server``: fake-gcs-server; ``STORAGE_EMULATOR_HOST`` points at it.
* ``http_server``: a threaded static-file server over a temporary directory.
"""

from __future__ import annotations

import os

# gcsfs reads this once, at import: it must be off before anything imports gcsfs, or every
# bucket operation against an emulator can stall for 60 s (gcsfs probes for hierarchical-namespace buckets).
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

INSTALL = 'python -m pip install -e ".[test]"'


def missing_test_requirements() -> list[str]:
    """The requirements of bigarrays' ``test`` extra (and its own) that are not installed
    at a version they allow, as ``"name>=x (installed: y)"`` / ``"name>=x"``."""
    from importlib import metadata

    from packaging.requirements import Requirement

    try:
        declared = metadata.requires("bigarrays") or []
    except metadata.PackageNotFoundError:
        return ["bigarrays itself (this checkout is not installed)"]
    missing = []
    for text in declared:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": "test"}):
            continue  # another extra's
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(str(req).partition(";")[0].strip())
            continue
        if not req.specifier.contains(version, prereleases=True):
            missing.append(f"{str(req).partition(';')[0].strip()} (installed: {version})")
    return missing


def pytest_configure(config: pytest.Config) -> None:
    missing = missing_test_requirements()
    if missing:
        raise pytest.UsageError(
            f"the test suite needs packages that are not installed: {', '.join(missing)}. Install them with: {INSTALL}"
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
