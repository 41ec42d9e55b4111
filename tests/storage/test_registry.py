"""Which store opens which URL, and how FsspecStore reads its configuration.

Nothing here sends a request: filesystems are only constructed.
"""

from __future__ import annotations

import os
import pickle

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from bigarrays_core.errors import StorageError, UnknownSchemeError
from bigarrays_core.kvstore import LocalStore, MemoryStore, open_store
from bigarrays_core.kvstore.fsspec_store import FsspecStore


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("s3://bucket/ds", {"anon": True}),
        ("s3a://bucket/ds", {"anon": True}),
        ("gs://bucket/ds", {"token": "anon"}),
        ("gcs://bucket/ds", {"anon": True}),
        ("http://127.0.0.1:9/ds", {}),
        ("https://127.0.0.1:9/ds/", {}),
    ],
)
def test_cloud_and_http_urls_open_fsspec_stores(url: str, options: dict[str, object]) -> None:
    store = open_store(url, storage_options=options)
    assert isinstance(store, FsspecStore)
    assert store.url == url.rstrip("/")
    assert store.threaded_io is False
    assert store.describe("a/b") == url.rstrip("/") + "/a/b"
    assert store.read_only is url.startswith("http")


def test_existing_schemes_are_kept(tmp_path: os.PathLike[str]) -> None:
    assert isinstance(open_store("memory://registry-test"), MemoryStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    assert isinstance(open_store(str(tmp_path)), LocalStore)


class _TestFileSystem(MemoryFileSystem):
    protocol = "bigarrays-regtest"
    root_marker = "/"


def test_any_fsspec_protocol_falls_back_to_fsspec_store() -> None:
    fsspec.register_implementation("bigarrays-regtest", _TestFileSystem, clobber=True)
    store = open_store("bigarrays-regtest://root/ds")
    assert isinstance(store, FsspecStore)
    store.set_many({"a": b"1", "b/c": b"2"})
    assert store.get_many(["a", "b/c", "d"]) == [b"1", b"2", None]
    assert sorted(store.list()) == ["a", "b/c"]
    store.close()


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(UnknownSchemeError) as info:
        open_store("nosuch://bucket/ds")
    message = str(info.value)
    assert "nosuch://" in message
    for scheme in ("file://", "memory://", "gs://", "s3://", "http://"):
        assert scheme in message


def test_known_but_missing_fsspec_implementation_names_the_url() -> None:
    fsspec.register_implementation(
        "bigarrays-missing", "bigarrays_no_such_module.FS", clobber=True, errtxt="pip install no-such-fs"
    )
    with pytest.raises(UnknownSchemeError) as info:
        open_store("bigarrays-missing://folder/ds")
    assert "bigarrays-missing://folder/ds" in str(info.value)
    assert "pip install no-such-fs" in str(info.value)


def test_gcsfs_extended_filesystem_is_off() -> None:
    # Set before gcsfs is first imported (by the tests' conftest, else when a GCS store opens).
    assert os.environ.get("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "").lower() in ("false", "0")
    store = open_store("gs://bucket", storage_options={"token": "anon"})
    assert not any(c.__name__ == "ExtendedGcsFileSystem" for c in type(store.fs).__mro__)


def test_s3_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    store = open_store("s3://bucket/ds", storage_options={"anon": True})
    assert store.fs.endpoint_url == "http://127.0.0.1:9"  # type: ignore[attr-defined]
    assert store.fs.client_kwargs["region_name"] == "eu-west-3"  # type: ignore[attr-defined]
    explicit = open_store("s3://bucket/ds", storage_options={"anon": True, "endpoint_url": "http://127.0.0.1:8"})
    assert explicit.fs.endpoint_url == "http://127.0.0.1:8"  # type: ignore[attr-defined]


def test_gcs_emulator_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9")
    store = open_store("gs://bucket/ds")
    assert store.fs._endpoint == "http://127.0.0.1:9"  # type: ignore[attr-defined]
    assert store.fs.credentials.method == "anon"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "options"), [("gs://bucket/ds", {"token": "anon"}), ("s3://bucket/ds", {"anon": True})]
)
def test_filesystems_pickle(url: str, options: dict[str, object]) -> None:
    fs = open_store(url, storage_options=options).fs  # type: ignore[attr-defined]
    assert type(pickle.loads(pickle.dumps(fs))) is type(fs)


@pytest.mark.parametrize("bad", [{"max_concurrency": 0}, {"timeout": 0}, {"retries": -1}])
def test_bad_options_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FsspecStore("s3://bucket", storage_options={"anon": True}, **bad)  # type: ignore[arg-type]


def test_unusable_credentials_file_names_the_url(tmp_path: os.PathLike[str]) -> None:
    # An existing file: gcsfs reads it and fails locally. (A path that does not exist would be
    # taken for a raw token and checked against Google's servers.)
    token = os.path.join(str(tmp_path), "credentials.json")
    with open(token, "w") as f:
        f.write("not json")
    with pytest.raises(StorageError) as info:
        open_store("gs://bucket/ds", storage_options={"token": token})
    assert "gs://bucket/ds" in str(info.value)
