"""Fixtures for the storage tests: the stand-ins, a fresh store URL per test, store cases.

Session-scoped servers (started only when a test asks for them, stopped by pid at the end):

* ``s3_server``: moto's S3 server; the session's environment gets dummy ``AWS_*`` credentials
  and ``AWS_ENDPOINT_URL`` pointing at it, so ``s3://`` URLs need no options.
* ``gcs_server``: fake-gcs-server; ``STORAGE_EMULATOR_HOST`` points at it.
* ``http_server``: a threaded static-file server over a temporary directory (it ignores
  ``Range``, as Python's ``http.server`` does).
* ``range_http_server``: the same, but answering ``Range`` requests (206 / 416).

Per test: ``store_url(kind)`` makes a fresh bucket / directory and returns its URL, and
``case`` is one :class:`~tests.storage.cases.StoreCase` per store kind, for the conformance
suite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.services import new_bucket_url

from .cases import ALL_KINDS, HTTP_KINDS, StoreCase, kinds, make_case
from .range_http import RangeHTTPServer


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``store_url(kind)``: the URL of a fresh, empty store of that kind.

    ``s3`` and ``gcs`` get a new bucket (and a prefix inside it), ``http`` and ``http-range`` a
    new directory under their static server's root, ``local`` a directory under ``tmp_path``,
    ``memory`` and ``fsspec-memory`` a new name. The servers start on first use.
    """

    def make(kind: str) -> str:
        if kind == "memory":
            return f"memory://{_unique('test')}"
        if kind == "fsspec-memory":
            return f"memory://{_unique('fsspec')}/root"
        if kind == "local":
            return (tmp_path / _unique("local")).as_uri()
        if kind in ("s3", "gcs"):
            server = request.getfixturevalue(f"{kind}_server")
            return new_bucket_url(kind, server.endpoint, "prefix")
        if kind in HTTP_KINDS:
            server = request.getfixturevalue(HTTP_KINDS[kind])
            name = _unique("dir")
            os.makedirs(os.path.join(server.root, name))
            return f"{server.endpoint}/{name}"
        raise ValueError(f"unknown store kind {kind!r}")

    return make


@pytest.fixture(params=kinds(*ALL_KINDS))
def case(request: pytest.FixtureRequest, store_url: Callable[[str], str]) -> Iterator[StoreCase]:
    """One :class:`StoreCase` per store kind (narrow with indirect parametrisation)."""
    kind = request.param
    url = store_url(kind)
    http = request.getfixturevalue(HTTP_KINDS[kind]) if kind in HTTP_KINDS else None
    c = make_case(kind, url, http)
    try:
        yield c
    finally:
        c.store.close()


@pytest.fixture(scope="session")
def range_http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RangeHTTPServer]:
    """A static-file server that answers ``Range`` requests, over a temporary directory."""
    server = RangeHTTPServer(str(tmp_path_factory.mktemp("range-http-root"))).start()
    try:
        yield server
    finally:
        server.stop()
