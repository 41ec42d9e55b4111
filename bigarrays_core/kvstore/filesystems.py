"""The fsspec filesystems :class:`~bigarrays_core.kvstore.fsspec_store.FsspecStore` talks through.

:func:`make_filesystem` builds the filesystem for a URL from the store's options and the cloud
environment it read (:mod:`bigarrays_core.kvstore.cloud_env`):

* **GCS** (gcsfs): with gcsfs's own retry loop off (:func:`gcs_class`), anonymous against an
  emulator unless a token is given, and a session that asks with ``Accept-Encoding: gzip``
  and leaves aiohttp's ``auto_decompress`` off, so GCS serves gzip objects as stored (it
  would otherwise transcode them, and ignore ``Range`` while doing so) and the store reports
  their ``Content-Encoding`` truthfully (``auto_decompress=True`` is refused).
* **S3** (s3fs): with s3fs's and botocore's retry loops off (:func:`s3_class`), the endpoint
  and region from the environment snapshot passed explicitly (botocore reads only
  ``AWS_DEFAULT_REGION``; passing them also keys fsspec's instance cache, so a changed
  environment never reuses a client for the old endpoint), per-attempt timeouts, and a
  connection pool as large as the store's concurrency.
* **Anything else**: the installed fsspec implementation, as it is.

gcsfs ≥ 2025 switches to its "extended" zonal/HNS filesystem unless the environment variable
``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`` is false; that filesystem probes every bucket's layout
through the Storage Control API first, which stalls for 60 s against an emulator and adds a
request against real GCS. gcsfs reads the variable once, when it is imported, so
:func:`gcs_class` sets it to ``false`` just before it first imports gcsfs, only if gcsfs is
not imported yet and only if the user has not set it: nothing is changed at import of
bigarrays, and a user's choice always wins.

This module imports nothing from bigarrays but the errors and its kvstore siblings; the SDKs
are imported when a filesystem for their protocol is first made.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from bigarrays_core.errors import StorageError, StoragePermissionError, UnknownSchemeError
from bigarrays_core.kvstore.cloud_env import CloudEnv
from bigarrays_core.kvstore.failures import PERMISSION, classify

__all__ = ["GCS", "HTTP", "S3", "gcs_class", "make_filesystem", "s3_class"]

GCS = frozenset({"gs", "gcs"})
S3 = frozenset({"s3", "s3a"})
HTTP = frozenset({"http", "https"})


@functools.cache
def gcs_class() -> type:
    """gcsfs's filesystem with its own retry loop off: the store retries instead.

    gcsfs wraps every HTTP request in ``retry_request(retries=6)`` with sleeps of up to 32 s,
    which would run inside each of our attempts. The decorator keeps the plain coroutine as
    ``__wrapped__``; if a future gcsfs drops that, its own retries stay on (and our timeouts
    still bound every attempt).
    """
    if "gcsfs" not in sys.modules:
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    import gcsfs

    base: type = gcsfs.GCSFileSystem
    single = getattr(getattr(base, "_request", None), "__wrapped__", None)
    if single is None:
        return base

    class GCSFileSystemSingleTry(base):  # type: ignore[misc]
        """gcsfs, one HTTP attempt per request (bigarrays retries)."""

        _request = single

    GCSFileSystemSingleTry.__qualname__ = "GCSFileSystemSingleTry"  # picklable: see __getattr__
    return GCSFileSystemSingleTry


@functools.cache
def s3_class() -> type:
    """s3fs's filesystem with its own retry loop off (botocore's is turned off by config)."""
    import s3fs

    class S3FileSystemSingleTry(s3fs.S3FileSystem):  # type: ignore[misc]
        """s3fs, one attempt per request (bigarrays retries)."""

        retries = 1

    S3FileSystemSingleTry.__qualname__ = "S3FileSystemSingleTry"  # picklable: see __getattr__
    return S3FileSystemSingleTry


def __getattr__(name: str) -> type:
    # The filesystem classes are made on first use (so importing this module imports no SDK);
    # this lets pickle find them by name as module attributes all the same.
    if name == "GCSFileSystemSingleTry":
        return gcs_class()
    if name == "S3FileSystemSingleTry":
        return s3_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _gcs_options(options: dict[str, Any], env: CloudEnv) -> dict[str, Any]:
    emulator = env.gcs_emulator_url
    if emulator:
        # An emulator takes no credentials, and looking for Google's default ones could reach
        # for the metadata server: anonymous unless a token is given.
        options.setdefault("endpoint_url", emulator)
        options.setdefault("token", "anon")
    if options.pop("anon", False):
        options.setdefault("token", "anon")
    session = dict(options.get("session_kwargs") or {})
    if session.get("auto_decompress", False):
        raise ValueError(
            "storage_options session_kwargs auto_decompress=True is not supported: bigarrays reads the "
            "stored bytes and decodes them itself, by the Content-Encoding the object records"
        )
    session["auto_decompress"] = False
    session["headers"] = {"Accept-Encoding": "gzip", **dict(session.get("headers") or {})}
    options["session_kwargs"] = session
    return options


def _s3_options(options: dict[str, Any], env: CloudEnv, timeout: float, concurrency: int) -> dict[str, Any]:
    client = dict(options.get("client_kwargs") or {})
    if env.s3_endpoint and not options.get("endpoint_url") and not client.get("endpoint_url"):
        options["endpoint_url"] = env.s3_endpoint
    if env.s3_region and "region_name" not in client:
        client["region_name"] = env.s3_region
    if client:
        options["client_kwargs"] = client
    config = dict(options.get("config_kwargs") or {})
    config.setdefault("retries", {"total_max_attempts": 1})
    config.setdefault("connect_timeout", timeout)
    config.setdefault("read_timeout", timeout)
    # botocore's pool holds 10 connections by default; more requests would queue inside it.
    config.setdefault("max_pool_connections", concurrency)
    options["config_kwargs"] = config
    return options


#: The SDK each cloud scheme needs (installed by the ``cloud`` extra).
CLOUD_PACKAGES = {"gs": "gcsfs", "gcs": "gcsfs", "s3": "s3fs", "s3a": "s3fs"}


def missing_package_error(url: str, exc: ImportError) -> UnknownSchemeError:
    """The error for opening ``url`` when a package it needs is not installed (with the
    ``pip install`` that fixes it). The one place this message is made."""
    scheme = url.partition("://")[0].lower()
    missing = (getattr(exc, "name", None) or "?").partition(".")[0]
    cloud = CLOUD_PACKAGES.get(scheme)
    how = 'pip install "bigarrays[cloud]"' if cloud is not None else f"pip install {missing}"
    what = f"the {missing} package" if cloud in (None, missing) else f"{cloud} and its dependency {missing}"
    return UnknownSchemeError(
        f"cannot open {url!r}: {scheme}:// URLs need {what}, which is not installed; install it with: {how}")


def _sdk(make_class: Callable[[], type], url: str) -> type:
    """``make_class()``, or :func:`missing_package_error` when the SDK is missing."""
    try:
        return make_class()
    except ImportError as exc:
        raise missing_package_error(url, exc) from exc


def make_filesystem(url: str, protocol: str, storage_options: Mapping[str, Any], env: CloudEnv,
                    timeout: float, concurrency: int) -> Any:
    """The fsspec filesystem for ``url``.

    Raises :class:`UnknownSchemeError` when no implementation serves ``protocol`` (gcsfs or
    s3fs missing: with the install hint), ``TypeError`` for an option the filesystem does not
    take and ``ValueError`` for one bigarrays refuses (the caller's mistakes, as they are),
    and :class:`StoragePermissionError` / :class:`StorageError` naming the URL when the SDK
    refuses the configuration (a bad token file, ...).
    """
    import fsspec

    options = dict(storage_options)
    # A key-value store must see other writers' objects: no stale directory listings.
    options.setdefault("use_listings_cache", False)
    if protocol in GCS:
        cls, options = _sdk(gcs_class, url), _gcs_options(options, env)
    elif protocol in S3:
        cls, options = _sdk(s3_class, url), _s3_options(options, env, timeout, concurrency)
    else:
        try:
            cls = fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as exc:
            raise UnknownSchemeError(
                f"cannot open {url!r}: no filesystem for {protocol}:// is installed ({exc})"
            ) from exc
    try:
        return cls(**options)
    except TypeError:
        raise
    except Exception as exc:
        failure = classify(exc)
        if failure.kind == PERMISSION:
            raise StoragePermissionError(f"cannot open {url}: credentials refused ({failure.detail})") from exc
        raise StorageError(f"cannot open {url}: {failure.detail}") from exc
