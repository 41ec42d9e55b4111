"""Reads of ``gs://`` and ``s3://`` objects through obstore (Rust ``object_store``).

:class:`~bigarrays_core.kvstore.fsspec_store.FsspecStore` reads chunks through an
:class:`ObjectReader` when :func:`object_reader` can make one: the requests then run on
obstore's own connection pool, signing and parsing happen in Rust without the GIL, and the
bytes arrive in a buffer the caller may view without a copy. Measured on the moto and
fake-gcs-server stand-ins (``benchmarks/cloud_reads.py``): about half the client CPU of s3fs or
boto3 per chunk and two thirds of gcsfs's.
Writes, deletes, listings and existence checks stay with fsspec (obstore's GCS uploads use
an XML API call that fake-gcs-server refuses, and one writer keeps one set of conventions).

Only configurations this module can translate exactly get a reader; every other one keeps
reading through fsspec, with the same results:

* ``s3://``: an endpoint is configured (``endpoint_url``, ``client_kwargs["endpoint_url"]``,
  ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``: MinIO, moto, other S3-compatible servers),
  and credentials are static (``key`` / ``secret`` / ``token`` options, or
  ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``) or anonymous
  (``anon=True``). The region is ``client_kwargs["region_name"]``, ``AWS_REGION``,
  ``AWS_DEFAULT_REGION`` or ``us-east-1``. AWS itself (region redirects) and credential
  chains (profiles, SSO, instance roles) are left to botocore.
* ``gs://``: anonymous (``token="anon"``, ``anon=True``, or an emulator from
  ``STORAGE_EMULATOR_HOST`` with no token), or a credentials file (``token=<path>``, or
  ``GOOGLE_APPLICATION_CREDENTIALS`` with no token). The endpoint is ``endpoint_url`` or
  ``STORAGE_EMULATOR_HOST``. Requests carry ``Accept-Encoding: gzip``, so gzip objects come
  back as stored, as through gcsfs.
* Any other storage option (``session_kwargs``, ``requester_pays``, a ``client_kwargs``
  entry other than the endpoint and region, ...) keeps fsspec.

A reader makes one attempt per call (obstore's retries are off) bounded by the store's
timeout; the caller retries, and translates errors with
:func:`bigarrays_core.kvstore.failures.classify`. This module imports nothing from
bigarrays; obstore is imported when a reader is first made (and is optional).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

__all__ = ["ObjectReader", "object_reader"]

_COMMON_OPTIONS = frozenset({"use_listings_cache", "skip_instance_cache"})
_S3_OPTIONS = _COMMON_OPTIONS | {"anon", "key", "secret", "token", "endpoint_url", "client_kwargs"}
_S3_CLIENT_KWARGS = frozenset({"endpoint_url", "region_name"})
_GCS_OPTIONS = _COMMON_OPTIONS | {"anon", "token", "project", "endpoint_url"}


class ObjectReader:
    """Reads the objects under one bucket prefix; one HTTP attempt per :meth:`get`."""

    __slots__ = ("_get", "_store")

    def __init__(self, store: Any) -> None:
        import obstore

        self._store = store
        self._get = obstore.get

    def get(self, key: str) -> memoryview:
        """The bytes of the object at ``key`` (relative to the prefix), as stored.

        Blocks the calling thread (without the GIL) for one request. Raises obstore's errors
        as they are: a missing object raises ``FileNotFoundError``.
        """
        return memoryview(self._get(self._store, key).bytes())


def object_reader(
    protocol: str, url: str, storage_options: Mapping[str, Any], timeout: float
) -> ObjectReader | None:
    """An :class:`ObjectReader` for ``url`` (``gs://`` / ``gcs://`` / ``s3://``), or ``None``
    when obstore is not installed, the options are not ones this module translates (see the
    module docstring) or obstore refuses them. Makes no request."""
    if protocol not in ("gs", "gcs", "s3"):
        return None
    try:
        from obstore.store import GCSStore, S3Store
    except ImportError:
        return None
    bucket, _, prefix = url.split("://", 1)[1].partition("/")
    if not bucket:
        return None
    config = _gcs_config(storage_options) if protocol != "s3" else _s3_config(storage_options)
    if config is None:
        return None
    endpoint = config.get("base_url") or config.get("endpoint") or ""
    limit = timedelta(seconds=timeout)
    client: ClientConfig = {"timeout": limit, "connect_timeout": limit, "allow_http": endpoint.startswith("http://")}
    if protocol != "s3":
        # GCS (and fake-gcs-server) would otherwise transcode gzip objects (gcsfs asks the same).
        client["default_headers"] = {"Accept-Encoding": "gzip"}
    retry: RetryConfig = {"max_retries": 0, "retry_timeout": limit}
    cls = S3Store if protocol == "s3" else GCSStore
    try:
        store = cls(bucket, prefix=prefix.strip("/") or None, client_options=client, retry_config=retry, **config)
    except Exception:  # a value obstore rejects (an odd endpoint, a bad credentials file): fsspec
        return None  # reads then, and reports what is wrong the way it does for writes
    return ObjectReader(store)


def _s3_config(options: Mapping[str, Any]) -> dict[str, Any] | None:
    client = dict(options.get("client_kwargs") or {})
    if set(options) - _S3_OPTIONS or set(client) - _S3_CLIENT_KWARGS:
        return None
    env = os.environ
    endpoint = (options.get("endpoint_url") or client.get("endpoint_url")
                or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"))
    if not endpoint:
        return None
    region = client.get("region_name") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    config: dict[str, Any] = {"endpoint": endpoint, "region": region}
    if options.get("anon"):
        config["skip_signature"] = True
        return config
    if options.get("key") or options.get("secret"):
        if not (options.get("key") and options.get("secret")):
            return None
        if not options.get("token") and env.get("AWS_SESSION_TOKEN"):
            return None  # obstore would add the environment's token to explicit keys
        config.update(access_key_id=options["key"], secret_access_key=options["secret"])
        if options.get("token"):
            config["token"] = options["token"]
        return config
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        config.update(access_key_id=env["AWS_ACCESS_KEY_ID"], secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        if env.get("AWS_SESSION_TOKEN"):
            config["token"] = env["AWS_SESSION_TOKEN"]
        return config
    return None


def _gcs_config(options: Mapping[str, Any]) -> dict[str, Any] | None:
    if set(options) - _GCS_OPTIONS:
        return None
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    endpoint = options.get("endpoint_url") or emulator
    config: dict[str, Any] = {}
    if endpoint:
        config["base_url"] = endpoint if "://" in endpoint else "http://" + endpoint
    token = options.get("token")
    if token is None and options.get("anon"):
        token = "anon"
    if token is None:
        token = "anon" if emulator else os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if token == "anon":
        config["skip_signature"] = True
    elif isinstance(token, str) and os.path.isfile(token):
        config["application_credentials"] = token
    else:  # gcloud's cached login, a metadata server, a credentials object: gcsfs knows them
        return None
    return config
