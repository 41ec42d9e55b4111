"""The cloud SDKs' environment is read in one place, once per store, and changed by nobody.

* Writes (s3fs) and reads (obstore) of one S3 store used to take the region from different
  variables when ``AWS_REGION`` and ``AWS_DEFAULT_REGION`` were both set (botocore reads only
  the second, obstore preferred the first): requests of one store were signed for two regions.
  Checked on the wire, in the signatures moto receives.
* ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`` used to be set when bigarrays' fsspec store module was
  imported. It is set only when a GCS store is first opened, only if gcsfs is not imported yet,
  and never over the user's own value. Checked in fresh interpreters.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from bigarrays_core.kvstore.cloud_env import read_cloud_env
from bigarrays_core.kvstore.fsspec_store import FsspecStore
from tests.services import FaultProxy, Service

from .cases import IGNORE_LARGE_BODY_WARNING

pytestmark = pytest.mark.filterwarnings(IGNORE_LARGE_BODY_WARNING)


class SignatureProxy(FaultProxy):
    """Forwards every request unchanged and records the region of its SigV4 credential scope."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.regions: list[tuple[str, str]] = []
        self._regions_lock = threading.Lock()

    async def _handle(self, request: object) -> object:
        from aiohttp import web

        assert isinstance(request, web.Request)
        scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request", request.headers.get("Authorization", ""))
        with self._regions_lock:
            self.regions.append((request.method, scope.group(1) if scope else "unsigned"))
        return await super()._handle(request)


@pytest.mark.cloud
def test_reads_and_writes_of_one_store_sign_for_the_same_region(
    s3_server: Service, store_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = store_url("s3")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")  # wins, as in the AWS CLI and SDKs
    with SignatureProxy(s3_server.endpoint).start() as proxy:
        for obstore_reads in (True, False):
            store = FsspecStore(url, storage_options={"endpoint_url": proxy.endpoint}, obstore_reads=obstore_reads)
            store.set("k", b"value")
            assert store.get("k") == b"value"
            assert [bytes(v.data) for v in store.iter_values(["k"]) if v is not None] == [b"value"]
            store.close()
        methods = {method for method, _ in proxy.regions}
        assert {"PUT", "GET"} <= methods
        assert {region for _, region in proxy.regions} == {"eu-west-3"}, proxy.regions


@pytest.mark.parametrize(
    ("environ", "region", "endpoint"),
    [
        ({"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "us-east-2"}, "eu-west-3", None),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-east-2"}, "us-east-2", None),
        ({"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_S3": "http://b"}, None, "http://b"),
        ({"AWS_ENDPOINT_URL": "http://a"}, None, "http://a"),
    ],
)
def test_one_precedence_for_the_s3_environment(environ: dict[str, str], region: str | None,
                                              endpoint: str | None) -> None:
    env = read_cloud_env(environ)
    assert (env.s3_region, env.s3_endpoint) == (region, endpoint)


def test_the_gcs_emulator_host_becomes_a_url() -> None:
    assert read_cloud_env({"STORAGE_EMULATOR_HOST": "127.0.0.1:9"}).gcs_emulator_url == "http://127.0.0.1:9"
    assert read_cloud_env({"STORAGE_EMULATOR_HOST": "https://h"}).gcs_emulator_url == "https://h"
    assert read_cloud_env({}).gcs_emulator_url is None


_VARIABLE = "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"

_PROBE = """
import os, sys
import bigarrays_core, bigarrays_core.kvstore.fsspec_store
from bigarrays_core.kvstore import open_store
before = os.environ.get("{var}")
if {import_gcsfs}:
    import gcsfs
store = open_store("gs://some-bucket/ds", storage_options={{"token": "anon"}})
extended = any(c.__name__ == "ExtendedGcsFileSystem" for c in type(store.fs).__mro__)
print(before, os.environ.get("{var}"), extended)
"""


@pytest.mark.parametrize(
    ("preset", "import_gcsfs", "expected"),
    [
        (None, False, "None false False"),  # set when the first GCS store opens, not at import
        ("false", False, "false false False"),
        ("0", False, "0 0 False"),  # the user's value is never overridden
        (None, True, "None None"),  # gcsfs imported first: too late to matter, left alone
    ],
)
def test_the_gcsfs_variable_is_set_only_when_a_gcs_store_first_opens(
    preset: str | None, import_gcsfs: bool, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != _VARIABLE}
    if preset is not None:
        env[_VARIABLE] = preset
    code = _PROBE.format(var=_VARIABLE, import_gcsfs=import_gcsfs)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(expected), out.stdout
