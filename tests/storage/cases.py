"""Store kinds for the storage tests: what each kind is and how to look beneath it.

A :class:`StoreCase` bundles the store under test with a writer, the kind's content-encoding
convention and SDK-level access to the raw objects (bypassing bigarrays), so one conformance
suite can check every kind. The servers come from the fixtures in ``conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bigarrays_core.kvstore import KVStore, LocalStore, open_store
from bigarrays_core.kvstore.base import LOCK_KEY, Value
from bigarrays_core.kvstore.fsspec_store import FsspecStore
from tests.services import StaticHTTPServer

from .range_http import RangeHTTPServer

__all__ = ["ALL_KINDS", "HTTP_KINDS", "IGNORE_LARGE_BODY_WARNING", "StoreCase", "gcsfs_client", "kinds", "make_case",
           "s3_client"]

#: Every store kind the conformance suite runs against. ``fsspec-memory`` is
#: :class:`FsspecStore` over fsspec's own (non-async) memory filesystem: the thread-pool path.
#: ``http`` is served by Python's ``http.server`` (it ignores ``Range``), ``http-range`` by a
#: server that honours it.
ALL_KINDS = ("memory", "local", "fsspec-memory", "s3", "gcs", "http", "http-range")
#: The read-only HTTP kinds, with the fixture of the server each is served by.
HTTP_KINDS = {"http": "http_server", "http-range": "range_http_server"}
_CLOUD_KINDS = frozenset({"s3", "gcs"})

#: gcsfs hands aiohttp every upload as one ``bytes`` body, and aiohttp >= 3.10 warns
#: (ResourceWarning) for bodies over 1 MiB; ``filterwarnings = error`` would turn that
#: harmless warning into a failed write inside the IO thread.
IGNORE_LARGE_BODY_WARNING = "ignore:Sending a large body directly with raw bytes:ResourceWarning"


def kinds(*names: str) -> list[object]:
    """``names`` as pytest params, the ones needing the S3/GCS stand-ins marked ``cloud``."""
    return [pytest.param(n, marks=pytest.mark.cloud) if n in _CLOUD_KINDS else n for n in names]


def s3_client() -> Any:
    """A boto3 S3 client for the endpoint in ``AWS_ENDPOINT_URL`` (set by ``s3_server``)."""
    import boto3

    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def gcsfs_client() -> Any:
    """A plain gcsfs filesystem on ``STORAGE_EMULATOR_HOST`` (set by ``gcs_server``)."""
    import gcsfs

    return gcsfs.GCSFileSystem(
        endpoint_url=os.environ["STORAGE_EMULATOR_HOST"],
        token="anon",
        project="test",
        skip_instance_cache=True,
        use_listings_cache=False,
    )


@dataclass
class StoreCase:
    """One store kind under test.

    ``store`` is the store the suite checks. ``writer`` puts data in place: the store itself
    when it is writable, else a writable store over the same data (for ``http`` and
    ``http-range``, a :class:`LocalStore` over the served directory). ``reopen(**options)`` opens the URL again.
    ``encoding_convention`` says how a content encoding is recorded: ``"metadata"``
    (``Content-Encoding``, plain key), ``"suffix"`` (``.gz`` / ``.zstd`` names) or ``"memory"``
    (beside the value, plain key).
    ``raw()`` lists the stored object names under the root with their recorded
    content encoding (``None`` where nothing records one); ``put_raw(name, data, **meta)``
    writes an object with the SDK, bypassing bigarrays, as CloudVolume would.
    """

    kind: str
    url: str
    store: KVStore
    writer: KVStore
    reopen: Callable[..., KVStore]
    encoding_convention: str
    raw: Callable[[], dict[str, str | None]]
    put_raw: Callable[..., None]


def make_case(kind: str, url: str, http: StaticHTTPServer | RangeHTTPServer | None) -> StoreCase:
    """The :class:`StoreCase` for a fresh store of ``kind`` at ``url``."""
    store = FsspecStore(url) if kind == "fsspec-memory" else open_store(url)
    writer: KVStore = store
    convention = {"memory": "memory", "s3": "metadata", "gcs": "metadata"}.get(kind, "suffix")

    if kind == "memory":
        values = store._values  # type: ignore[attr-defined]

        def raw() -> dict[str, str | None]:
            return {k: v.encoding for k, v in values.items()}

        def put_raw(name: str, value: bytes, **meta: str) -> None:
            values[name] = Value(value, meta.get("content_encoding"))

    elif kind in ("local", *HTTP_KINDS):
        if kind in HTTP_KINDS:
            assert http is not None
            root = os.path.join(http.root, url.rsplit("/", 1)[1])
            writer = LocalStore(root)
        else:
            root = store.root  # type: ignore[attr-defined]

        def raw() -> dict[str, str | None]:
            out: dict[str, str | None] = {}
            for dirpath, _, files in os.walk(root):
                for f in files:
                    out[os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")] = None
            out.pop(LOCK_KEY, None)  # the writers' lock file: bookkeeping, not a stored object
            return out

        def put_raw(name: str, value: bytes, **meta: str) -> None:
            path = os.path.join(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Path(path).write_bytes(value)

    elif kind == "fsspec-memory":
        fs = store.fs  # type: ignore[attr-defined]
        root = fs._strip_protocol(url)

        def raw() -> dict[str, str | None]:
            return {p[len(root) + 1:]: None for p in fs.find(root)}

        def put_raw(name: str, value: bytes, **meta: str) -> None:
            fs.pipe_file(f"{root}/{name}", value)

    elif kind == "s3":
        bucket, prefix = url[len("s3://"):].split("/", 1)
        client = s3_client()

        def raw() -> dict[str, str | None]:
            listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
            out: dict[str, str | None] = {}
            for obj in listed:
                head = client.head_object(Bucket=bucket, Key=obj["Key"])
                out[obj["Key"][len(prefix) + 1:]] = head.get("ContentEncoding")
            return out

        def put_raw(name: str, value: bytes, **meta: str) -> None:
            extra = {"ContentEncoding": meta["content_encoding"]} if "content_encoding" in meta else {}
            client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=value, **extra)

    elif kind == "gcs":
        gfs = gcsfs_client()
        root = url[len("gs://"):]

        def raw() -> dict[str, str | None]:
            return {p[len(root) + 1:]: info.get("contentEncoding") for p, info in gfs.find(root, detail=True).items()}

        def put_raw(name: str, value: bytes, **meta: str) -> None:
            fixed = {"content_encoding": meta["content_encoding"]} if "content_encoding" in meta else None
            gfs.pipe_file(f"{root}/{name}", value, fixed_key_metadata=fixed)

    else:
        raise ValueError(kind)

    def reopen(**options: Any) -> KVStore:
        return FsspecStore(url, **options) if kind == "fsspec-memory" else open_store(url, **options)

    return StoreCase(kind, url, store, writer, reopen, convention, raw, put_raw)


