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


# -- precomputed:// URLs -------------------------------------------------------------------------


def test_precomputed_prefix_names_the_store_after_it(tmp_path: os.PathLike[str]) -> None:
    """Neuroglancer's and CloudVolume's ``precomputed://`` prefix is the format, not a store."""
    local = open_store(f"precomputed://file://{tmp_path}")
    assert isinstance(local, LocalStore) and local.url == f"file://{tmp_path}"
    assert isinstance(open_store(f"PRECOMPUTED://{tmp_path}"), LocalStore)
    assert isinstance(open_store("precomputed://memory://registry-pc"), MemoryStore)
    for url in ("precomputed://gs://bucket/ds", "precomputed://s3://bucket/ds", "precomputed://http://127.0.0.1:9/ds"):
        store = open_store(url, storage_options={"anon": True} if "http" not in url else {})
        assert isinstance(store, FsspecStore) and store.url == url[len("precomputed://"):]


def test_precomputed_urls_open_datasets_everywhere(tmp_path: os.PathLike[str]) -> None:
    """``bc.open``, ``bc.create`` and the command line take them (the server: tests/server)."""
    import subprocess
    import sys

    import bigarrays_core as bc

    root = os.path.join(str(tmp_path), "em")
    ba = bc.create(f"precomputed://file://{root}", dtype="uint8", size=(8, 8, 8), chunk_size=(8, 8, 8))
    ba[:, :, :] = 5
    assert bc.open(f"precomputed://file://{root}")[1, 2, 3] == 5
    assert bc.open(f"precomputed://{root}")[1, 2, 3] == 5
    bigarrays = os.path.join(os.path.dirname(sys.executable), "bigarrays")
    out = subprocess.run([bigarrays, "info", f"precomputed://file://{root}"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "bounds [0:8,0:8,0:8]" in out.stdout, out.stderr


# -- cloud schemes without the cloud extra ---------------------------------------------------


_BLOCKER = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
"""


@pytest.mark.parametrize(("url", "package"), [("gs://bucket/em", "gcsfs"), ("gcs://bucket/em", "gcsfs"),
                                              ("s3://bucket/em", "s3fs"),
                                              ("precomputed://gs://bucket/em", "gcsfs")])
def test_a_missing_cloud_package_says_how_to_install_it(url: str, package: str, tmp_path: os.PathLike[str]) -> None:
    """In a process where the package cannot be imported (as in an install without the extra),
    ``bc.open`` and the command line name it and the extra, in one line."""
    import subprocess
    import sys

    blocker = os.path.join(str(tmp_path), "sitecustomize.py")
    with open(blocker, "w") as f:
        f.write(_BLOCKER.format(blocked={package}))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = ("import bigarrays_core as bc\n"
            f"try:\n    bc.open({url!r})\n"
            "except bc.UnknownSchemeError as exc:\n    print(type(exc).__mro__[1].__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    inner = url.removeprefix("precomputed://")
    assert out.stdout.strip() == (f"BigArraysError cannot open {inner!r}: {inner.partition(':')[0]}:// URLs need the "
                                  f'{package} package, which is not installed; install it with: '
                                  f'pip install "bigarrays[cloud]"')
    bigarrays = os.path.join(os.path.dirname(sys.executable), "bigarrays")
    cli = subprocess.run([bigarrays, "info", url], capture_output=True, text=True, env=env, timeout=120)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr
    assert f'{package} package, which is not installed; install it with: pip install "bigarrays[cloud]"' in cli.stderr
