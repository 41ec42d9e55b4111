"""A store over object storage through fsspec: ``gs://`` / ``gcs://`` (gcsfs), ``s3://`` (s3fs),
``http(s)://`` (read-only) and any other protocol an installed fsspec implementation serves.

What this module owns
---------------------
* Mapping keys (checked with :func:`check_key`) to object paths under the store's root URL.
* Batch I/O. Every batch call turns its keys into coroutines of the filesystem's async methods
  gathered on fsspec's IO event loop, with at most ``max_concurrency`` requests in flight per
  store (one :class:`asyncio.Semaphore`, shared by every thread that calls the store). A
  filesystem without async methods runs the same coroutines through a small thread pool.
* CloudVolume's content-encoding conventions (below), for reads and writes.

Its neighbours do the rest, each in one place: :mod:`~bigarrays_core.kvstore.filesystems` makes
the filesystems (SDK retry loops off), from the environment snapshot
:mod:`~bigarrays_core.kvstore.cloud_env` reads once per store; :mod:`~bigarrays_core.kvstore.
fsspec_reads` makes each protocol's read requests (values with their recorded encoding, byte
ranges checked against what the server answered); :mod:`~bigarrays_core.kvstore.obstore_reads`
reads S3 and GCS through obstore where the configuration allows (then every value and range
read goes there; writes, deletes, listings and existence checks stay with fsspec);
:mod:`~bigarrays_core.kvstore.retry` is the failure policy (a timeout on every attempt, retries
with exponential backoff and full jitter) and :mod:`~bigarrays_core.kvstore.failures` the
translation of foreign errors into :class:`~bigarrays_core.errors.StorageError` and its
subclasses.

It imports nothing from bigarrays but the errors and its sibling kvstore modules; the SDKs
are imported lazily, when a store for their protocol is opened.

Content encodings
-----------------
Writes with ``WriteOptions(content_encoding="gzip" | "zstd")`` are given already-compressed bytes.

* **GCS and S3**: stored under the plain key (no suffix) with ``Content-Encoding``, and with
  ``Content-Type`` / ``Cache-Control`` when given: what CloudVolume does, and what Neuroglancer
  reads through a browser.
* **Other protocols** (no object metadata, e.g. sftp or fsspec's own ``memory``): the local-disk
  convention, a ``.gz`` / ``.zstd`` suffix on the key; other variants of the key are then removed
  so a stale one cannot shadow the new value.

Reads (:meth:`FsspecStore.iter_values`, what chunk reads use) return the bytes as stored with
the content encoding recorded for them: the ``Content-Encoding`` of S3 and GCS objects
(``gzip``, ``zstd``, and CloudVolume's ``br``, ``xz``, ``bz2``), the one an HTTP server
answers with (bodies are not decoded on the way), or the suffix of a suffixed variant. When a
key is missing, the reader tries ``key.gz`` and then ``key.zstd`` (CloudVolume's suffixes on
local disk and on some copied buckets), only on a miss. :meth:`FsspecStore.get_many` returns
the same stored bytes, except over HTTP(S), where it returns the body with its transport
coding undone (an ``info`` served gzipped by a web server reads as JSON).

Byte ranges (:meth:`FsspecStore.get_ranges`) read the stored bytes of S3 and GCS objects (never
a transcoded answer) and the identity representation of HTTP resources; nearby ranges of one
value are read in one request, all requests concurrently.

Stamps
------
:meth:`FsspecStore.stat_many` asks for each object's metadata, never its bytes where the
metadata names a version: S3 ``HeadObject`` (ETag and VersionId, LastModified, ContentLength,
ContentEncoding), the GCS object resource (generation, updated, size, contentEncoding), an HTTP
``HEAD`` (ETag, Last-Modified, Content-Length, Content-Encoding), fsspec's ``info`` elsewhere
(:mod:`~bigarrays_core.kvstore.stamps` turns each into a stamp); through obstore where values
are read through obstore. It tries the suffixed variants as the reads do, and a stamp's
``size`` and ``encoding`` are those of the value :meth:`FsspecStore.iter_values` returns for
the key. Where the metadata names no version (an HTTP server without ETags whose
``Last-Modified`` is too recent to tell writes apart, a filesystem without times) the value is
read and digested instead: correct, not cheap.

Deadlines
---------
Every request runs under the one retry policy, which honours the caller's storage deadline
(:mod:`~bigarrays_core.kvstore.deadline`): each batch call carries the deadline in force in the
calling thread to the tasks it starts on the IO event loop (and to obstore's pool threads), so
each attempt is cut to the time left, none starts (nor a backoff sleep) past it, and the call
raises :class:`~bigarrays_core.errors.StorageTimeoutError` naming the key and the attempts.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bigarrays_core.errors import StorageError, UnknownSchemeError
from bigarrays_core.kvstore import deadline
from bigarrays_core.kvstore.base import (
    CONTENT_ENCODING_SUFFIX,
    LOCK_KEY,
    ByteRange,
    ByteSpan,
    KVStore,
    Stamp,
    Value,
    Version,
    WriteOptions,
    check_key,
    check_range,
    digest_stamp,
)
from bigarrays_core.kvstore.cloud_env import read_cloud_env
from bigarrays_core.kvstore.encodings import ENCODING_OF_SUFFIX, PRIMARY_SUFFIXES
from bigarrays_core.kvstore.failures import DEADLINE, MISSING, OUT_OF_RANGE, Failure, classify
from bigarrays_core.kvstore.filesystems import GCS, HTTP, S3, make_filesystem
from bigarrays_core.kvstore.fsspec_reads import FsspecReads
from bigarrays_core.kvstore.obstore_reads import ObstoreReads, object_reader
from bigarrays_core.kvstore.ranges import Run, cut, plan_runs
from bigarrays_core.kvstore.retry import RetryPolicy, storage_error
from bigarrays_core.kvstore.stamps import variant_stamp

__all__ = ["FsspecStore"]

T = TypeVar("T")

_SUFFIXES = PRIMARY_SUFFIXES
_VARIANTS = ("", *_SUFFIXES)


class _Absent:
    """What a request returns when its object does not exist (404, FileNotFoundError)."""

    def __repr__(self) -> str:
        return "ABSENT"


_ABSENT = _Absent()


def __getattr__(name: str) -> type:
    # The SDK filesystem classes moved to filesystems.py; filesystems pickled by an earlier
    # version name them here.
    if name in ("GCSFileSystemSingleTry", "S3FileSystemSingleTry"):
        from bigarrays_core.kvstore import filesystems

        return getattr(filesystems, name)  # type: ignore[no-any-return]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FsspecStore(KVStore):
    """Keys as objects under a root URL, through an fsspec filesystem.

    Parameters
    ----------
    url:
        The root: ``gs://bucket/prefix``, ``gcs://...``, ``s3://bucket/prefix``,
        ``http(s)://host/path`` or ``<protocol>://...`` for any installed fsspec protocol.
    read_only:
        Refuse every write and delete with :class:`ReadOnlyError`. Always true for
        ``http(s)://``.
    storage_options:
        Passed to the fsspec filesystem (``anon``, ``key``/``secret``, ``endpoint_url``,
        ``token``, ``project``, ``client_kwargs``, ...). Without them, each SDK's standard
        environment applies, read once when the store is opened
        (:mod:`~bigarrays_core.kvstore.cloud_env`): ``AWS_ENDPOINT_URL`` (``_S3``),
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` (over
        ``AWS_DEFAULT_REGION``), ``STORAGE_EMULATOR_HOST`` (then ``token="anon"`` unless
        given), ``GOOGLE_APPLICATION_CREDENTIALS``. ``{"anon": True}`` means anonymous on S3
        and GCS.
    max_concurrency:
        Most requests in flight at once for this store, over all threads calling it.
    timeout:
        Seconds one request attempt may take.
    retries:
        Most retries of a request after a transient failure (5xx, 408, 429, dropped
        connection, timeout).
    backoff, max_backoff:
        Retry ``n`` (from 1) first sleeps ``uniform(0, min(max_backoff, backoff * 2**(n-1)))`` s.
    list_timeout:
        Seconds a whole :meth:`list` may take; default ``10 * timeout``.
    suffix_fallback:
        On a miss, also try ``key.gz`` and ``key.zstd`` (CloudVolume's suffixes). Costs two
        more requests per missing key; turn off for datasets known to have no suffixed keys.
    filesystem:
        An fsspec filesystem to use instead of making one (``storage_options`` then unused;
        reads then go through it too).
    obstore_reads:
        Read values through obstore where it is installed and the configuration allows it
        (:mod:`bigarrays_core.kvstore.obstore_reads`); ``False`` reads through fsspec.

    A store pickles as the arguments it was made with (credentials in ``storage_options``
    included: Dask sends them to its workers as fsspec's filesystems do) and is made again,
    with its own connections, where it is unpickled.

    Raises
    ------
    UnknownSchemeError
        No fsspec implementation serves the URL's protocol.
    """

    threaded_io = False

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        max_concurrency: int = 32,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        list_timeout: float | None = None,
        suffix_fallback: bool = True,
        filesystem: Any = None,
        obstore_reads: bool = True,
    ) -> None:
        if "://" not in url:
            raise UnknownSchemeError(f"{url!r} is not a URL: FsspecStore needs <protocol>://...")
        for name, value, ok in (
            ("max_concurrency", max_concurrency, max_concurrency >= 1),
            ("timeout", timeout, timeout > 0),
            ("retries", retries, retries >= 0),
            ("backoff", backoff, backoff >= 0),
            ("max_backoff", max_backoff, max_backoff >= 0),
        ):
            if not ok:
                raise ValueError(f"FsspecStore({url!r}): {name}={value!r} is out of range")
        #: What the store was made from: a store pickles as these and is made again where it is
        #: unpickled (a Dask worker), with its own connections, pools and caches.
        self._made_from = {
            "url": url, "read_only": read_only, "storage_options": dict(storage_options or {}),
            "max_concurrency": max_concurrency, "timeout": timeout, "retries": retries, "backoff": backoff,
            "max_backoff": max_backoff, "list_timeout": list_timeout, "suffix_fallback": suffix_fallback,
            "filesystem": filesystem, "obstore_reads": obstore_reads}
        self.protocol = url.split("://", 1)[0].lower()
        self.url = url.rstrip("/")
        self.read_only = read_only or self.protocol in HTTP
        self.max_concurrency = max_concurrency
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.policy = RetryPolicy(self.retries, self.backoff, self.max_backoff)
        self.list_timeout = float(list_timeout) if list_timeout is not None else 10 * self.timeout
        self.suffix_fallback = suffix_fallback
        self._variants = _VARIANTS if suffix_fallback else ("",)
        env = read_cloud_env()  # once: the filesystem and the obstore reader see the same one
        fs = filesystem if filesystem is not None else make_filesystem(
            self.url, self.protocol, storage_options or {}, env, self.timeout, max_concurrency
        )
        self.fs = fs
        self._root = fs._strip_protocol(self.url).rstrip("/")
        self._async = bool(getattr(fs, "async_impl", False))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        if self._async:
            self._loop = fs.loop
        else:
            import fsspec.asyn

            self._loop = fsspec.asyn.get_loop()
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.reads = FsspecReads(fs, self.protocol, self._async, self._op)
        # Values and ranges are read through obstore where the configuration allows.
        self._reader = None if filesystem is not None or not obstore_reads else object_reader(
            self.protocol, self.url, storage_options or {}, self.timeout, env
        )
        self._obstore = None if self._reader is None else ObstoreReads(
            self._reader, self.policy, self.describe, self._variants, max_concurrency
        )
        # Protocols with object metadata record content encodings as Content-Encoding.
        self._metadata_encoding = self.protocol in GCS or self.protocol in S3
        find_params = inspect.signature(fs._find if self._async else fs.find).parameters
        self._find_has_prefix = "prefix" in find_params

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_remade, (self._made_from,))

    # -- plumbing ----------------------------------------------------------------------------
    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def _op(self, name: str, *args: Any, **kwargs: Any) -> Callable[[], Awaitable[Any]]:
        """A factory for one request: ``fs._<name>(...)``, or ``fs.<name>(...)`` in the pool."""
        if self._async:
            method = getattr(self.fs, "_" + name)
            return lambda: method(*args, **kwargs)
        # A timed-out call cannot be stopped in its thread; the pool's size still bounds them.
        func = functools.partial(getattr(self.fs, name), *args, **kwargs)
        return lambda: self._loop.run_in_executor(self._thread_pool(), func)

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=min(self.max_concurrency, 8), thread_name_prefix="bigarrays-fsspec"
                )
            return self._pool

    async def _request(
        self, action: str, where: str, make: Callable[[], Awaitable[T]], *, timeout: float | None = None,
        ranged: bool = False,
    ) -> T | _Absent:
        """Run one request with the retry policy; ``_ABSENT`` if the object is missing.

        With ``ranged``, a range starting past the end of the object gives ``b""``. Raises
        :class:`StorageError` (a subclass where it fits) naming ``where`` otherwise, and
        :class:`StorageTimeoutError` when the caller's deadline (in force in this task) ends
        the retries.
        """

        def give_up(exc: Exception, failure: Failure, attempts: int) -> T | _Absent:
            if failure.kind != DEADLINE and isinstance(exc, StorageError):  # our own check of an answer
                raise exc
            if failure.kind == MISSING:
                return _ABSENT
            if ranged and failure.kind == OUT_OF_RANGE:
                return b""  # type: ignore[return-value]
            raise storage_error(action, where, failure, attempts) from exc

        limit = self.timeout if timeout is None else timeout
        return await self.policy.acall(make, classify, give_up, timeout=limit, gate=self._semaphore)

    def _run(self, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run the coroutines ``jobs`` make concurrently on the IO loop; results in order.

        The tasks run under the deadline in force in the calling thread (their requests'
        retries honour it). The first failure cancels the others and is raised.
        """
        if not jobs:
            return []
        import fsspec.asyn

        until = deadline.current()

        async def gather() -> tuple[list[T] | None, Exception | None]:
            with deadline.at(until):  # each task copies the context it is made in
                tasks = [asyncio.ensure_future(job()) for job in jobs]
            try:
                return list(await asyncio.gather(*tasks)), None
            except BaseException as exc:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if isinstance(exc, Exception):
                    return None, exc
                raise

        # The error travels back as a value: fsspec's sync() would replace any TimeoutError
        # (StorageTimeoutError is one) with its own FSTimeoutError.
        results: list[T] | None
        results, error = fsspec.asyn.sync(self._loop, gather)
        if error is not None:
            raise error
        assert results is not None
        return results

    # -- reads -------------------------------------------------------------------------------
    async def _get_one(self, key: str, transport_decoded: bool = False) -> Value | None:
        """``key`` or its first suffixed variant that exists, with its recorded encoding.

        ``transport_decoded``: over HTTP, the body with its transport coding undone (for
        :meth:`get_many`); elsewhere it changes nothing.
        """
        for suffix in self._variants:
            name = key + suffix
            where = self.describe(name)
            if transport_decoded and self.protocol in HTTP:
                cat = self._op("cat_file", self._path(name))

                async def make(cat: Callable[[], Awaitable[Any]] = cat) -> Value:
                    return Value(bytes(await cat()))
            else:
                make = self.reads.value(self._path(name), where)  # type: ignore[assignment]
            out = await self._request("read", where, make)
            if isinstance(out, Value):
                return out if not suffix else Value(out.data, ENCODING_OF_SUFFIX[suffix])
        return None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The stored bytes of each key, in order; ``None`` where a key (and its ``.gz`` /
        ``.zstd`` variants) is missing. Over HTTP(S), the bodies with their transport coding
        undone.

        Raises :class:`InvalidKeyError` for an unsafe key (before any request),
        :class:`StoragePermissionError` when credentials are refused, :class:`StorageError`
        (or :class:`StorageTimeoutError`) when the store fails after its retries.
        """
        keys = [check_key(k) for k in keys]
        if self._obstore is not None:
            values: Iterable[Value | None] = self._obstore.iter_values(keys)
        else:
            values = self._run([functools.partial(self._get_one, k, True) for k in keys])
        return [None if v is None else bytes(v.data) for v in values]

    def iter_values(self, keys: Sequence[str], spans: Sequence[ByteSpan | None] | None = None
                    ) -> Iterator[Value | None]:
        """The values of ``keys`` in order (``None`` where missing), whole (``spans`` is ignored),
        as stored, with the encoding recorded for each: the object's ``Content-Encoding`` (the
        HTTP answer's), or the suffix of the variant found (``.gz``, ``.zstd``).

        Through obstore, every request of the batch starts at once (at most
        ``max_concurrency`` in flight) and each value is yielded as soon as it and those before
        it have arrived, so the caller decodes value ``i`` while later ones are still on the
        wire; the values are views of obstore's buffers (no copy). Through fsspec the batch is
        fetched first (streaming it measured no faster). Raises as :meth:`get_many`, when the
        failed key's turn comes; obstore requests not yet started are then dropped, as they are
        when the caller stops iterating early.
        """
        keys = [check_key(k) for k in keys]
        if not keys:
            return iter(())
        if self._obstore is not None:
            return self._obstore.iter_values(keys)
        return iter(self._run([functools.partial(self._get_one, k) for k in keys]))

    def get_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes | memoryview | None]:
        """The bytes of each range, in order; ``None`` where its key (and its ``.gz`` / ``.zstd``
        variants) is missing; fewer bytes (or none) where the value ends first.

        Ranges of one key closer than 4 KiB are read in one request
        (:mod:`~bigarrays_core.kvstore.ranges`), all requests concurrently (at most
        ``max_concurrency`` in flight). S3 and GCS give the stored bytes of the object (GCS is
        asked with ``Accept-Encoding: gzip``, so it never transcodes and so never ignores the
        range); HTTP(S) gives ranges of the resource's identity representation, whether the
        server honours ``Range`` (206, checked against ``Content-Range``) or not (200: the body
        is sliced); an answer that cannot be mapped to the range raises :class:`StorageError`.
        Raises as :meth:`get_many`, and ``ValueError`` for an invalid range.
        """
        ranges = [check_range(r) for r in ranges]
        if not ranges:
            return []
        if self._obstore is not None:
            return self._obstore.get_ranges(ranges)
        runs = plan_runs(ranges)
        results = self._run([functools.partial(self._read_run, run) for run in runs])
        out: list[bytes | memoryview | None] = [None] * len(ranges)
        for run, data in zip(runs, results):
            if data is not None:
                for i, part in zip(run.members, cut(run, data, ranges)):
                    out[i] = part
        return out

    async def _read_run(self, run: Run) -> bytes | None:
        stop = run.request_stop
        for suffix in self._variants:
            name = run.key + suffix
            where = self.describe(name)
            what = f"bytes {run.start}-{'' if stop is None else stop} of {where}"
            out = await self._request("read", what, self.reads.range(self._path(name), run.start, stop, where),
                                      ranged=True)
            if not isinstance(out, _Absent):
                return out
        return None

    # -- stamps ------------------------------------------------------------------------------
    async def _stat_one(self, key: str) -> Stamp | None:
        """The stamp of ``key`` or of its first suffixed variant that exists (the one a read
        returns): from its metadata, or its bytes digested where that names no version."""
        for suffix in self._variants:
            name = key + suffix
            where = self.describe(name)
            path = self._path(name)
            stamp = await self._request("stat", where, self.reads.stat(path))
            if isinstance(stamp, _Absent):
                continue
            if stamp is None:  # the metadata names no version: the value itself, digested
                value = await self._request("read", where, self.reads.value(path, where))
                if isinstance(value, _Absent):
                    continue
                stamp = digest_stamp(value.data, value.encoding)
            return variant_stamp(stamp, suffix)
        return None

    def stat_many(self, keys: Sequence[str]) -> list[Stamp | None]:
        """The :class:`Stamp` of each key's stored value (see "Stamps" above), in order; ``None``
        where the key and its variants are missing. Batched and concurrent as the reads are
        (through obstore where they are). Raises as :meth:`get_many`."""
        keys = [check_key(k) for k in keys]
        if not keys:
            return []
        if self._obstore is not None:
            return self._obstore.stat_many(keys)
        return self._run([functools.partial(self._stat_one, k) for k in keys])

    # -- existence -----------------------------------------------------------------------------
    def _head(self, path: str) -> Callable[[], Awaitable[Any]]:
        """A factory for the cheapest "is this an object?" request the protocol has."""
        if self._async and self.protocol in S3:
            bucket, key, _ = self.fs.split_path(path)
            return self._op("call_s3", "head_object", Bucket=bucket, Key=key)
        if self._async and self.protocol in GCS:
            return self._op("get_object", path)  # one GET; _info also lists the "directory"
        return self._op("info", path)

    async def _exists_one(self, key: str) -> bool:
        for suffix in self._variants:
            out = await self._request("check", self.describe(key + suffix), self._head(self._path(key + suffix)))
            if out is not _ABSENT and not (isinstance(out, dict) and out.get("type") == "directory"):
                return True
        return False

    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key (or, with ``suffix_fallback``, its ``.gz`` / ``.zstd`` variant) is
        stored. Raises as :meth:`get_many`."""
        keys = [check_key(k) for k in keys]
        return self._run([functools.partial(self._exists_one, k) for k in keys])

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every stored key under the root that starts with ``prefix``, suffixes stripped.

        Runs one (paged) listing below the deepest directory ``prefix`` names. On ``http(s)``
        this works where the server serves HTML directory indexes; a missing directory lists
        nothing. Raises as :meth:`get_many`, bounded by ``list_timeout``.
        """
        head, _, name = prefix.rpartition("/")
        if head:
            check_key(head)
        top = self._path(head) if head else self._root
        kwargs = {"prefix": name} if self._find_has_prefix and name else {}
        where = self.describe(prefix) if prefix else self.url
        find = self._op("find", top, **kwargs)
        job = functools.partial(self._request, "list", where, find, timeout=self.list_timeout)
        (found,) = self._run([job])
        if isinstance(found, _Absent):
            return iter(())
        root = self._root + "/"
        keys: dict[str, None] = {}
        for path in found:
            if not path.startswith(root):
                continue
            key = path[len(root):]
            for suffix in _SUFFIXES:
                if key.endswith(suffix):
                    key = key[: -len(suffix)]
                    break
            if key and key.startswith(prefix) and key != LOCK_KEY:  # a local dataset's lock file is no value
                keys[key] = None
        return iter(list(keys))

    # -- writes ------------------------------------------------------------------------------
    def _write_kwargs(self, options: WriteOptions | None) -> dict[str, Any]:
        if options is None:
            return {}
        if self.protocol in S3:
            pairs = {
                "ContentEncoding": options.content_encoding,
                "ContentType": options.content_type,
                "CacheControl": options.cache_control,
            }
            return {k: v for k, v in pairs.items() if v}
        if self.protocol in GCS:
            kwargs: dict[str, Any] = {}
            if options.content_type:
                kwargs["content_type"] = options.content_type
            fixed = {"content_encoding": options.content_encoding, "cache_control": options.cache_control}
            fixed = {k: v for k, v in fixed.items() if v}
            if fixed:
                kwargs["fixed_key_metadata"] = fixed
            return kwargs
        return {}

    async def _set_one(self, key: str, value: bytes, suffix: str, kwargs: dict[str, Any]) -> None:
        where = self.describe(key + suffix)
        out = await self._request("write", where, self._op("pipe_file", self._path(key + suffix), value, **kwargs))
        if out is _ABSENT:
            raise StorageError(f"cannot write {where}: the bucket or parent directory does not exist")
        if not self._metadata_encoding:  # suffix convention: no stale variant may shadow the value
            for other in _VARIANTS:
                if other != suffix:
                    await self._delete_path(key + other)

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        """Store every value under its plain key (GCS/S3 record the content encoding as
        ``Content-Encoding``; other protocols use a ``.gz`` / ``.zstd`` suffix).

        Each object is replaced atomically by the object store. Raises :class:`ReadOnlyError`
        (nothing written) on a read-only store, :class:`InvalidKeyError` for an unsafe key
        (nothing written), otherwise as :meth:`get_many`.
        """
        keys = [check_key(k) for k in items]
        self._check_writable("write", keys[0] if keys else None)
        encoding = options.content_encoding if options is not None else None
        suffix = CONTENT_ENCODING_SUFFIX[encoding] if encoding and not self._metadata_encoding else ""
        kwargs = self._write_kwargs(options)
        jobs = []
        for key, value in items.items():
            data = value if isinstance(value, bytes) else bytes(value)
            jobs.append(functools.partial(self._set_one, key, data, suffix, kwargs))
        self._run(jobs)

    async def _delete_path(self, name: str) -> None:
        await self._request("delete", self.describe(name), self._op("rm_file", self._path(name)))

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete each key and its ``.gz`` / ``.zstd`` variants; missing keys are ignored.

        Raises :class:`ReadOnlyError` (nothing deleted) on a read-only store, otherwise as
        :meth:`get_many`.
        """
        keys = [check_key(k) for k in keys]
        self._check_writable("delete", keys[0] if keys else None)
        self._run([functools.partial(self._delete_path, k + s) for k in keys for s in _VARIANTS])

    # -- conditional writes ----------------------------------------------------------------
    @property
    def atomic_updates(self) -> bool:
        """True on S3 and GCS: conditional writes are the object store's own (``If-Match`` /
        ``If-None-Match``; ``ifGenerationMatch``), atomic for every writer anywhere. Other
        protocols use the default (this process only)."""
        return self._async and (self.protocol in S3 or self.protocol in GCS)

    def read_for_update(self, key: str) -> tuple[Value | None, Version]:
        """The value of the plain key (no suffixed variants) and, on S3 and GCS, the version
        the store gave it (ETag, generation). Raises as :meth:`get_many`."""
        if not self.atomic_updates:
            return super().read_for_update(key)
        key = check_key(key)
        where = self.describe(key)
        (out,) = self._run([functools.partial(self._request, "read", where,
                                              self.reads.versioned(self._path(key), where))])
        if isinstance(out, _Absent) or not out[0].data:
            return None, Version()
        return out[0], Version(out[1])

    def write_if_unchanged(self, key: str, value: bytes | None, expected: Version,
                           options: WriteOptions | None = None) -> bool:
        """On S3 and GCS, one conditional request: the store writes (or deletes) only if the
        object is still at ``expected`` (or still absent), and answers 412 otherwise (False).
        Transient failures are retried as any request. Raises as :meth:`set_many`."""
        if not self.atomic_updates:
            return super().write_if_unchanged(key, value, expected, options)
        key = check_key(key)
        self._check_writable("write", key)
        where = self.describe(key)
        data = None if value is None else bytes(value)
        conditional = self._conditional_s3 if self.protocol in S3 else self._conditional_gcs

        async def attempt() -> bool:
            return await conditional(self._path(key), data, expected.token, options)

        (out,) = self._run([functools.partial(self._request, "write", where, attempt)])
        return out is True

    async def _conditional_s3(self, path: str, data: bytes | None, token: object, options: WriteOptions | None
                              ) -> bool:
        from botocore.exceptions import ClientError

        fs = self.fs
        await fs.set_session()
        bucket, name, _ = fs.split_path(path)
        try:
            if data is None:
                if token is None:  # "still absent": nothing to delete
                    return await self._absent_s3(bucket, name)
                await fs.s3.delete_object(Bucket=bucket, Key=name, IfMatch=token)
            else:
                condition = {"IfMatch": token} if token is not None else {"IfNoneMatch": "*"}
                await fs.s3.put_object(Bucket=bucket, Key=name, Body=data, **condition, **self._write_kwargs(options))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412) or error.get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False  # another writer got there first
            if data is None and (status == 404 or error.get("Code") == "NoSuchKey"):
                return False  # deleted by another writer meanwhile
            raise
        return True

    async def _absent_s3(self, bucket: str, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await self.fs.s3.head_object(Bucket=bucket, Key=name)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return True
            raise
        return False

    async def _conditional_gcs(self, path: str, data: bytes | None, token: object, options: WriteOptions | None
                               ) -> bool:
        from urllib.parse import quote

        fs = self.fs
        bucket, name, _ = fs.split_path(path)
        generation = "0" if token is None else str(token)  # 0: only if the object does not exist
        try:
            if data is None:
                if token is None:
                    try:
                        await fs._call("GET", f"b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")
                    except FileNotFoundError:
                        return True
                    return False
                await fs._call("DELETE", f"b/{quote(bucket, safe='')}/o/{quote(name, safe='')}",
                               ifGenerationMatch=generation)
                return True
            meta: dict[str, str] = {"name": name}
            if options is not None:
                for field, given in (("contentType", options.content_type),
                                     ("contentEncoding", options.content_encoding),
                                     ("cacheControl", options.cache_control)):
                    if given:
                        meta[field] = given
            head = (f"--==0==\nContent-Type: application/json; charset=UTF-8\n\n{json.dumps(meta)}\n--==0==\n"
                    f"Content-Type: {meta.get('contentType', 'application/octet-stream')}\n\n").encode()
            await fs._call("POST", f"{fs._location}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
                           uploadType="multipart", ifGenerationMatch=generation,
                           headers={"Content-Type": 'multipart/related; boundary="==0=="'},
                           data=head + data + b"\n--==0==--", json_out=True)
        except FileExistsError:  # gcsfs's name for 412 Precondition Failed
            return False
        except FileNotFoundError:
            if data is None:
                return False  # deleted by another writer meanwhile
            raise
        return True

    def close(self) -> None:
        """Shut down the store's thread pools (the filesystem is shared and stays open)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
        if self._obstore is not None:
            self._obstore.close()


def _remade(made_from: Mapping[str, Any]) -> FsspecStore:
    """A store made again from what an unpickled one was made from (see ``FsspecStore.__reduce__``)."""
    return FsspecStore(**made_from)
