"""Reads through obstore: which configurations use it, and that both read paths agree.

:class:`FsspecStore` reads ``s3://`` (S3-compatible endpoints, static or anonymous
credentials) and ``gs://`` (anonymous or file credentials) through obstore, and everything
else through fsspec. The conformance suite and the fault tests run against the stand-ins, so
they exercise the obstore path; these tests pin that they do, and that the fsspec path gives
the same values for the same objects.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from typing import Any

import pytest

from bigarrays_core.kvstore import WriteOptions, open_store
from bigarrays_core.kvstore.fsspec_store import FsspecStore
from bigarrays_core.kvstore.obstore_reads import object_reader

from .cases import IGNORE_LARGE_BODY_WARNING

pytestmark = pytest.mark.filterwarnings(IGNORE_LARGE_BODY_WARNING)


@pytest.mark.cloud
@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_stand_in_stores_read_through_obstore(kind: str, store_url: Callable[[str], str]) -> None:
    url = store_url(kind)
    assert open_store(url)._reader is not None  # type: ignore[attr-defined]
    assert open_store(url, obstore_reads=False)._reader is None  # type: ignore[attr-defined]


@pytest.mark.cloud
@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_both_read_paths_give_the_same_values(kind: str, store_url: Callable[[str], str]) -> None:
    url = store_url(kind)
    writer = open_store(url)
    assert isinstance(writer, FsspecStore)
    plain = os.urandom(300_000) + b"\r"
    gz = gzip.compress(b"gzip payload " * 100)
    writer.set_many({"a/plain": plain, "a/empty": b""})
    writer.set("a/gzip", gz, WriteOptions(content_encoding="gzip"))
    writer.fs.pipe_file(writer._path("a/suffixed.gz"), gz)  # CloudVolume's suffix convention
    keys = ["a/plain", "a/empty", "a/gzip", "a/suffixed", "a/missing"]
    expected = [plain, b"", gz, gz, None]
    for obstore_reads in (True, False):
        store = open_store(url, obstore_reads=obstore_reads)
        assert store.get_many(keys) == expected
        assert [None if v is None else bytes(v.data) for v in store.iter_values(keys)] == expected


@pytest.mark.cloud
def test_iter_values_may_stop_early(store_url: Callable[[str], str]) -> None:
    store = open_store(store_url("s3"))
    values = {f"k/{i}": os.urandom(1000) for i in range(40)}
    store.set_many(values)
    values_iter = store.iter_values(list(values))
    assert bytes(next(values_iter).data) == values["k/0"]  # type: ignore[union-attr]
    values_iter.close()  # the requests not yet started are dropped
    assert store.get_many(list(values)) == list(values.values())


TRANSLATED: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("s3://b/p", {"anon": True}, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}),
    ("s3://b/p", {"endpoint_url": "http://127.0.0.1:9", "key": "k", "secret": "s"}, {}),
    ("s3://b/p", {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-3"}},
     {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}),
    ("gs://b/p", {"token": "anon"}, {}),
    ("gs://b", {}, {"STORAGE_EMULATOR_HOST": "127.0.0.1:9"}),
]

LEFT_TO_FSSPEC: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    # AWS itself: region redirects and credential chains are botocore's.
    ("s3://b/p", {"anon": True}, {}),
    ("s3://b/p", {"endpoint_url": "http://127.0.0.1:9"}, {}),  # no static credentials
    ("s3://b/p", {"endpoint_url": "http://127.0.0.1:9", "anon": True, "client_kwargs": {"verify": False}}, {}),
    ("s3://b/p", {"endpoint_url": "http://127.0.0.1:9", "key": "k", "secret": "s"}, {"AWS_SESSION_TOKEN": "t"}),
    ("s3://b/p", {"endpoint_url": "http://127.0.0.1:9", "anon": True, "requester_pays": True}, {}),
    ("gs://b/p", {"token": "anon", "session_kwargs": {"auto_decompress": True}}, {}),
    ("gs://b/p", {"token": {"type": "authorized_user"}}, {}),
    ("gs://b/p", {}, {}),  # gcloud's login or a metadata server: google-auth's
    ("https://example.org/p", {}, {}),
]

_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN", "STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")


def _reader(monkeypatch: pytest.MonkeyPatch, url: str, options: dict[str, Any], env: dict[str, str]) -> object:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return object_reader(url.split("://")[0], url, options, 5.0)


@pytest.mark.parametrize(("url", "options", "env"), TRANSLATED)
def test_configurations_read_through_obstore(
    monkeypatch: pytest.MonkeyPatch, url: str, options: dict[str, Any], env: dict[str, str]
) -> None:
    assert _reader(monkeypatch, url, options, env) is not None


@pytest.mark.parametrize(("url", "options", "env"), LEFT_TO_FSSPEC)
def test_configurations_left_to_fsspec(
    monkeypatch: pytest.MonkeyPatch, url: str, options: dict[str, Any], env: dict[str, str]
) -> None:
    assert _reader(monkeypatch, url, options, env) is None
