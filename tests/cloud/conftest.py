"""Fixtures for the cloud tests: the S3 and GCS stand-ins and a fresh dataset URL per test.

Session-scoped servers (started on first use, stopped by pid at the end of the session), as in
``tests/storage/conftest.py`` and built from the same helpers in :mod:`tests.services`:

* ``s3_server``: moto's S3 server; the environment gets dummy ``AWS_*`` credentials and
  ``AWS_ENDPOINT_URL`` pointing at it, so ``s3://`` URLs need no options.
* ``gcs_server``: fake-gcs-server; ``STORAGE_EMULATOR_HOST`` points at it.

Per test: ``dataset_url`` is parametrised over ``memory``, ``local``, ``s3`` and ``gcs`` (the
last two marked ``cloud``) and is a URL where no dataset exists yet; ``fresh_url(kind)`` makes
more of them; ``rng`` is seeded from the test's id. ``cloudvolume`` (session) opens
CloudVolumes on the stand-ins.
"""

from __future__ import annotations

import os

# gcsfs reads this once, at import: it must be off before anything imports gcsfs, or every
# bucket operation against an emulator can stall for 60 s (docs/cloud-storage.md, "Running against
# local stand-ins").
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import uuid  # noqa: E402
import zlib  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.cloud.cloudvolume_access import CloudVolumeAccess, write_secrets  # noqa: E402
from tests.services import DUMMY_AWS_ENV, Service, new_bucket_url  # noqa: E402

#: Every store kind the round-trip suite runs on; ``s3`` and ``gcs`` need the stand-ins.
KINDS = ("memory", "local", "s3", "gcs")
CLOUD_KINDS = frozenset({"s3", "gcs"})


def kind_params(*names: str) -> list[object]:
    """``names`` as pytest params, the ones needing a stand-in marked ``cloud``."""
    return [pytest.param(n, marks=pytest.mark.cloud) if n in CLOUD_KINDS else n for n in names]


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id: reproducible, yet different for each case."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``fresh_url(kind)``: a URL of that kind where no dataset exists yet.

    ``s3`` and ``gcs`` get a new bucket and a prefix inside it (so keys are nested as in real
    use), ``local`` a directory under ``tmp_path``, ``memory`` a new name. The stand-ins start
    on first use.
    """

    def make(kind: str) -> str:
        if kind == "memory":
            return f"memory://{_unique('cloud-tests')}"
        if kind == "local":
            return (tmp_path / _unique("local")).as_uri()
        if kind in CLOUD_KINDS:
            server: Service = request.getfixturevalue(f"{kind}_server")
            return new_bucket_url(kind, server.endpoint, "datasets/em")
        raise ValueError(f"unknown store kind {kind!r}; known: {', '.join(KINDS)}")

    return make


@pytest.fixture(params=kind_params(*KINDS))
def dataset_url(request: pytest.FixtureRequest, fresh_url: Callable[[str], str]) -> str:
    """A fresh dataset URL on each store kind: memory, local, s3 (moto), gcs (fake-gcs-server)."""
    return fresh_url(request.param)


@pytest.fixture(scope="session")
def cloudvolume(s3_server: Service, gcs_server: Service,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudVolumeAccess]:
    """CloudVolume steered to the stand-ins (see :mod:`tests.cloud.cloudvolume_access`).

    Registers a cloud-files alias for moto's endpoint, with its credentials file in a
    temporary secrets directory, for the session; both are undone at the end.
    """
    import cloudfiles.paths  # type: ignore[import-untyped]
    import cloudfiles.secrets  # type: ignore[import-untyped]

    alias = f"bigarraysmoto{s3_server.port}"
    secrets_dir = tmp_path_factory.mktemp("cloudvolume") / "secrets"
    credentials = {k: DUMMY_AWS_ENV[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    write_secrets(secrets_dir, alias, credentials)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cloudfiles.secrets, "CLOUD_VOLUME_SECRETS_DIR", str(secrets_dir))
        cloudfiles.paths.add_alias(alias, f"s3://{s3_server.endpoint}/")
        try:
            yield CloudVolumeAccess(alias)
        finally:
            cloudfiles.paths.remove_alias(alias)
