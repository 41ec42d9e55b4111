"""Reads of ``gs://`` and ``s3://`` objects through obstore (Rust ``object_store``).

:class:`~bigarrays_core.kvstore.fsspec_store.FsspecStore` reads values and byte ranges
through :class:`ObstoreReads` when :func:`object_reader` can make an :class:`ObjectReader`
for its configuration: the requests then run on obstore's own connection pool, signing and
parsing happen in Rust without the GIL, and the bytes arrive in a buffer the caller may view
without a copy. Measured on the moto and fake-gcs-server stand-ins
(``benchmarks/cloud_reads.py``): about half the client CPU of s3fs or boto3 per chunk and two
thirds of gcsfs's. Writes, deletes, listings and existence checks stay with fsspec (obstore's
GCS uploads use an XML API call that fake-gcs-server refuses, and one writer keeps one set of
conventions).

Only configurations this module can translate exactly get a reader; every other one keeps
reading through fsspec, with the same results:

* ``s3://``: an endpoint is configured (``endpoint_url``, ``client_kwargs["endpoint_url"]``,
  ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``: MinIO, moto, other S3-compatible servers),
  and credentials are static (``key`` / ``secret`` / ``token`` options, or
  ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``) or anonymous
  (``anon=True``). The region is ``client_kwargs["region_name"]``, else the environment's
  (:mod:`~bigarrays_core.kvstore.cloud_env`: the same one the store's writes use), else
  ``us-east-1``. AWS itself (region redirects) and credential chains (profiles, SSO,
  instance roles) are left to botocore.
* ``gs://``: anonymous (``token="anon"``, ``anon=True``, or an emulator from
  ``STORAGE_EMULATOR_HOST`` with no token), or a credentials file (``token=<path>``, or
  ``GOOGLE_APPLICATION_CREDENTIALS`` with no token). The endpoint is ``endpoint_url`` or
  ``STORAGE_EMULATOR_HOST``. Requests carry ``Accept-Encoding: gzip``, so gzip objects come
  back as stored (GCS would otherwise transcode them, and ignore ``Range`` while doing so).
* Any other storage option (``session_kwargs``, ``requester_pays``, a ``client_kwargs``
  entry other than the endpoint and region, ...) keeps fsspec.

Every value comes with the ``Content-Encoding`` the object store recorded for it (obstore
reports it among the object's attributes). Each request is one attempt (obstore's retries
are off) bounded by the store's timeout; :class:`ObstoreReads` retries with the store's
:class:`~bigarrays_core.kvstore.retry.RetryPolicy`. obstore is imported when a reader is
first made (and is optional).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bigarrays_core.kvstore.base import ByteRange, Value
from bigarrays_core.kvstore.cloud_env import CloudEnv, read_cloud_env
from bigarrays_core.kvstore.encodings import ENCODING_OF_SUFFIX, encoding_of_header
from bigarrays_core.kvstore.failures import MISSING, OUT_OF_RANGE, Failure, classify
from bigarrays_core.kvstore.ranges import cut, plan_runs
from bigarrays_core.kvstore.retry import RetryPolicy, storage_error

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

__all__ = ["ObjectReader", "ObstoreReads", "object_reader"]

_COMMON_OPTIONS = frozenset({"use_listings_cache", "skip_instance_cache"})
_S3_OPTIONS = _COMMON_OPTIONS | {"anon", "key", "secret", "token", "endpoint_url", "client_kwargs"}
_S3_CLIENT_KWARGS = frozenset({"endpoint_url", "region_name"})
_GCS_OPTIONS = _COMMON_OPTIONS | {"anon", "token", "project", "endpoint_url"}


class ObjectReader:
    """Reads the objects under one bucket prefix; one HTTP attempt per call.

    Every call blocks the calling thread (without the GIL) for one request and raises
    obstore's errors as they are: a missing object raises ``FileNotFoundError``, a range
    starting past the end an error with status 416.
    """

    __slots__ = ("_get", "_get_range", "store")

    def __init__(self, store: Any) -> None:
        import obstore

        self.store = store
        self._get = obstore.get
        self._get_range = obstore.get_range

    def get(self, key: str) -> Value:
        """The bytes of the object at ``key`` (relative to the prefix) as stored, with the
        content encoding its ``Content-Encoding`` records."""
        result = self._get(self.store, key)
        encoding = encoding_of_header(result.attributes.get("Content-Encoding"))
        return Value(memoryview(result.bytes()), encoding)

    def get_range(self, key: str, start: int, stop: int | None) -> memoryview:
        """Bytes ``[start, stop)`` of the object at ``key`` as stored (``stop=None``: to its
        end), fewer where it ends first. ``start < stop`` when ``stop`` is given."""
        if stop is None:
            return memoryview(self._get(self.store, key, options={"range": {"offset": start}}).bytes())
        return memoryview(self._get_range(self.store, key, start=start, end=stop))


def object_reader(protocol: str, url: str, storage_options: Mapping[str, Any], timeout: float,
                  env: CloudEnv | None = None) -> ObjectReader | None:
    """An :class:`ObjectReader` for ``url`` (``gs://`` / ``gcs://`` / ``s3://``), or ``None``
    when obstore is not installed, the options are not ones this module translates (see the
    module docstring) or obstore refuses them. ``env`` is the cloud environment the store read
    (read now when not given). Makes no request."""
    if protocol not in ("gs", "gcs", "s3"):
        return None
    try:
        from obstore.store import GCSStore, S3Store
    except ImportError:
        return None
    bucket, _, prefix = url.split("://", 1)[1].partition("/")
    if not bucket:
        return None
    env = read_cloud_env() if env is None else env
    config = _gcs_config(storage_options, env) if protocol != "s3" else _s3_config(storage_options, env)
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


def _s3_config(options: Mapping[str, Any], env: CloudEnv) -> dict[str, Any] | None:
    client = dict(options.get("client_kwargs") or {})
    if set(options) - _S3_OPTIONS or set(client) - _S3_CLIENT_KWARGS:
        return None
    endpoint = options.get("endpoint_url") or client.get("endpoint_url") or env.s3_endpoint
    if not endpoint:
        return None
    region = client.get("region_name") or env.s3_region or "us-east-1"
    config: dict[str, Any] = {"endpoint": endpoint, "region": region}
    if options.get("anon"):
        config["skip_signature"] = True
        return config
    if options.get("key") or options.get("secret"):
        if not (options.get("key") and options.get("secret")):
            return None
        if not options.get("token") and env.aws_session_token:
            return None  # obstore would add the environment's token to explicit keys
        config.update(access_key_id=options["key"], secret_access_key=options["secret"])
        if options.get("token"):
            config["token"] = options["token"]
        return config
    if env.aws_access_key_id and env.aws_secret_access_key:
        config.update(access_key_id=env.aws_access_key_id, secret_access_key=env.aws_secret_access_key)
        if env.aws_session_token:
            config["token"] = env.aws_session_token
        return config
    return None


def _gcs_config(options: Mapping[str, Any], env: CloudEnv) -> dict[str, Any] | None:
    if set(options) - _GCS_OPTIONS:
        return None
    endpoint = options.get("endpoint_url") or env.gcs_emulator_url
    config: dict[str, Any] = {}
    if endpoint:
        config["base_url"] = endpoint if "://" in endpoint else "http://" + endpoint
    token = options.get("token")
    if token is None and options.get("anon"):
        token = "anon"
    if token is None:
        token = "anon" if env.gcs_emulator else env.google_credentials
    if token == "anon":
        config["skip_signature"] = True
    elif isinstance(token, str) and os.path.isfile(token):
        config["application_credentials"] = token
    else:  # gcloud's cached login, a metadata server, a credentials object: gcsfs knows them
        return None
    return config


class ObstoreReads:
    """The store's reads through one :class:`ObjectReader`: retried, concurrent, in order.

    ``describe`` names a key for messages (the store's URL of it); ``variants`` are the
    suffixes tried in turn when a key is missing (``""`` first). Requests block in a pool of
    ``max_concurrency`` threads, one request each.
    """

    def __init__(self, reader: ObjectReader, policy: RetryPolicy, describe: Callable[[str], str],
                 variants: Sequence[str], max_concurrency: int) -> None:
        self.reader = reader
        self.policy = policy
        self._describe = describe
        self._variants = tuple(variants)
        self._max_concurrency = max_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._max_concurrency,
                                                thread_name_prefix="bigarrays-obstore")
            return self._pool

    def _give_up(self, action: str, name: str) -> Callable[[Exception, Failure, int], None]:
        def give_up(exc: Exception, failure: Failure, attempts: int) -> None:
            if failure.kind == MISSING:
                return None
            raise storage_error(action, self._describe(name), failure, attempts) from exc

        return give_up

    def read(self, key: str) -> Value | None:
        """``key`` (or its first suffixed variant that exists), with the encoding the object
        records or, for a variant, the one its suffix records; None when none exists."""
        for suffix in self._variants:
            name = key + suffix
            value = self.policy.call(lambda name=name: self.reader.get(name), classify,  # type: ignore[misc]
                                     self._give_up("read", name))
            if value is not None:
                return value if not suffix else Value(value.data, ENCODING_OF_SUFFIX[suffix])
        return None

    def iter_values(self, keys: Sequence[str]) -> Iterator[Value | None]:
        """:meth:`read` of every key, all started at once (at most ``max_concurrency`` in
        flight), yielded in order as each arrives; requests not yet started are dropped when
        the caller stops early or one fails."""
        pool = self._threads()
        futures = [pool.submit(self.read, k) for k in keys]
        try:
            for f in futures:
                yield f.result()
        finally:
            for f in futures:
                f.cancel()

    def _read_run(self, key: str, start: int, stop: int | None) -> memoryview | None:
        """Bytes ``[start, stop)`` of ``key`` (or its first variant that exists): fewer where the
        value ends first, empty when it ends before ``start``, None when it does not exist."""
        for suffix in self._variants:
            name = key + suffix

            def give_up(exc: Exception, failure: Failure, attempts: int, name: str = name) -> memoryview | None:
                if failure.kind == OUT_OF_RANGE:
                    return memoryview(b"")
                if failure.kind == MISSING:
                    return None
                where = f"bytes {start}-{'' if stop is None else stop} of {self._describe(name)}"
                raise storage_error("read", where, failure, attempts) from exc

            data = self.policy.call(lambda name=name: self.reader.get_range(name, start, stop),  # type: ignore[misc]
                                    classify, give_up)
            if data is not None:
                return data
        return None

    def get_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes | memoryview | None]:
        """The bytes of each range (see :meth:`KVStore.get_ranges`): one request per run of
        nearby ranges (:mod:`~bigarrays_core.kvstore.ranges`), all runs concurrently."""
        runs = plan_runs(ranges)
        pool = self._threads()
        futures: list[Future[memoryview | None]] = [
            pool.submit(self._read_run, run.key, run.start, run.request_stop) for run in runs]
        out: list[bytes | memoryview | None] = [None] * len(ranges)
        try:
            for run, f in zip(runs, futures):
                data = f.result()
                if data is not None:
                    for i, part in zip(run.members, cut(run, data, ranges)):
                        out[i] = part
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        return out

    def close(self) -> None:
        """Shut the thread pool down (requests in flight finish in the background)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
