"""A store over object storage through fsspec: ``gs://`` / ``gcs://`` (gcsfs), ``s3://`` (s3fs),
``http(s)://`` (read-only) and any other protocol an installed fsspec implementation serves.

What this module owns
---------------------
* Mapping keys (checked with :func:`check_key`) to object paths under the store's root URL.
* Batch I/O. Every batch call turns its keys into coroutines of the filesystem's async methods
  (``_cat_file``, ``_pipe_file``, ``_info``, ``_rm_file``, ``_find``) gathered on fsspec's IO
  event loop, with at most ``max_concurrency`` requests in flight per store (one
  :class:`asyncio.Semaphore`, shared by every thread that calls the store). A filesystem without
  async methods runs the same coroutines through a small thread pool.
* Reads through obstore: where :func:`~bigarrays_core.kvstore.obstore_reads.object_reader`
  translates the configuration (S3-compatible endpoints, GCS with anonymous or file
  credentials), ``get_many`` / ``iter_get`` read values with obstore instead, in a pool of
  ``max_concurrency`` threads that block without the GIL; ``iter_get`` yields each value as it
  arrives. Everything else (writes, deletes, listings, existence checks) stays with fsspec.
* The failure policy, here and nowhere else: a timeout on every request, retries with exponential
  backoff and full jitter, and errors translated (by :mod:`bigarrays_core.kvstore.failures`)
  into :class:`~bigarrays_core.errors.StorageError` and its subclasses. The SDKs' own retry
  loops are switched off (see :func:`_gcs_class`, :func:`_s3_class` and obstore's
  ``max_retries=0``) so that ``retries`` means what it says.
* CloudVolume's ``Content-Encoding`` conventions on object stores (below).

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

Reads return the stored bytes as stored where the protocol allows it:

* **S3**: the stored bytes (neither obstore nor botocore decodes).
* **GCS**: the stored bytes. Both obstore and gcsfs ask with ``Accept-Encoding: gzip`` (the
  gcsfs session with aiohttp's ``auto_decompress`` off); GCS (and fake-gcs-server) then serve
  a gzip object as stored instead of transcoding it. A caller that turns decompression back on
  through ``storage_options={"session_kwargs": {"auto_decompress": True}}`` gets the decoded
  bytes (and reads through gcsfs).
* **HTTP(S)**: the body after aiohttp's transport decoding: a server that answers with
  ``Content-Encoding: gzip`` is decoded, a ``.gz`` file served as a plain file is not.

Either way the bytes are the gzip / zstd stream or its plain content, never garbage, and callers
sniff gzip / zstd magic bytes. When a key is missing, the reader then tries ``key.gz`` and
``key.zstd`` (CloudVolume's suffixes on local disk and on some copied buckets), only on a miss.

Retries and timeouts
--------------------
Each request attempt is bounded by ``timeout`` seconds (:func:`asyncio.wait_for`, or obstore's
client timeout for its reads). A 5xx, 408, 429 (and S3's ``SlowDown``), a reset or dropped
connection, a body cut short or a timed-out attempt is retried at most ``retries`` times,
sleeping ``uniform(0, min(max_backoff, backoff * 2**n))`` before retry ``n + 1``; then
:class:`StorageError` (:class:`StorageTimeoutError` when the last attempt timed out) names the
URL, the number of attempts and the last error. A missing object (404) is a value, permission
or credential errors (401, 403, ``AccessDenied``, ``InvalidAccessKeyId``,
``SignatureDoesNotMatch``, google-auth errors) raise :class:`StoragePermissionError` at once,
and anything else raises :class:`StorageError` at once. A whole listing is bounded by
``list_timeout``. A caller's deadline (:func:`bigarrays_core.kvstore.deadline.within`, set in
the calling thread) bounds everything further: each attempt is cut to the time left, and no
attempt starts (nor backoff sleeps) past it; then :class:`StorageTimeoutError`.

Stamps
------
:meth:`FsspecStore.stat_many` asks for each object's metadata (S3 ``HeadObject``, the GCS
object resource, an HTTP ``HEAD``, fsspec's ``info`` elsewhere), never its bytes: the stamp is
its size, modification time and generation / ETag, and the encoding its suffix records (what
a read reports). Where the metadata has neither a generation, an ETag nor a time, the value is
read and digested instead (correct, not cheap). S3 ETags and GCS generations change with every
write; an HTTP server that gives only ``Last-Modified`` (whole seconds) and a size cannot tell
two writes of the same size in the same second apart (the server's cache treats such recent
stamps as racy and reads again).
"""

from __future__ import annotations

import os

# gcsfs >= 2025 switches to its "extended" zonal/HNS filesystem unless this is false, and that
# filesystem probes every bucket's layout through the Storage Control API first, which stalls
# for 60 s against an emulator (fake-gcs-server) and adds a request against real GCS
# (/work/shared/local-services.md §2c). gcsfs reads the variable once, when it is imported, so
# it must be set before anything imports gcsfs. setdefault: an explicit choice by the user wins.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import asyncio  # noqa: E402
import concurrent.futures  # noqa: E402
import contextvars  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import inspect  # noqa: E402
import random  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

from bigarrays_core.errors import (  # noqa: E402
    StorageError,
    StoragePermissionError,
    StorageTimeoutError,
    UnknownSchemeError,
)
from bigarrays_core.kvstore import deadline  # noqa: E402
from bigarrays_core.kvstore.base import (  # noqa: E402
    CONTENT_ENCODING_SUFFIX,
    ByteSpan,
    KVStore,
    Stamp,
    Value,
    WriteOptions,
    check_key,
)
from bigarrays_core.kvstore.failures import (  # noqa: E402
    FATAL,
    MISSING,
    PERMISSION,
    TIMEOUTS,
    TRANSIENT,
    Failure,
    classify,
)
from bigarrays_core.kvstore.obstore_reads import object_reader  # noqa: E402

__all__ = ["FsspecStore"]

T = TypeVar("T")

_SUFFIXES = tuple(CONTENT_ENCODING_SUFFIX.values())
_ENCODING_OF_SUFFIX = {suffix: encoding for encoding, suffix in CONTENT_ENCODING_SUFFIX.items()}
_VARIANTS = ("", *_SUFFIXES)
#: The caller's storage deadline (:mod:`bigarrays_core.kvstore.deadline`), carried onto the
#: IO event loop: :meth:`FsspecStore._run` sets it around the tasks it starts.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("bigarrays_deadline", default=None)
_GCS = frozenset({"gs", "gcs"})
_S3 = frozenset({"s3", "s3a"})
_HTTP = frozenset({"http", "https"})

class _Absent:
    """What a request returns when its object does not exist (404, FileNotFoundError)."""

    def __repr__(self) -> str:
        return "ABSENT"


_ABSENT = _Absent()


# -- filesystems -------------------------------------------------------------------------------


@functools.cache
def _gcs_class() -> type:
    """gcsfs's filesystem with its own retry loop off: :class:`FsspecStore` retries instead.

    gcsfs wraps every HTTP request in ``retry_request(retries=6)`` with sleeps of up to 32 s,
    which would run inside each of our attempts. The decorator keeps the plain coroutine as
    ``__wrapped__``; if a future gcsfs drops that, its own retries stay on (and our timeouts
    still bound every attempt).
    """
    import gcsfs

    base = gcsfs.GCSFileSystem
    single = getattr(base._request, "__wrapped__", None)
    if single is None:
        return base

    class GCSFileSystemSingleTry(base):  # type: ignore[misc, valid-type]
        """gcsfs, one HTTP attempt per request (bigarrays retries)."""

        _request = single

    GCSFileSystemSingleTry.__qualname__ = "GCSFileSystemSingleTry"  # picklable: see __getattr__
    return GCSFileSystemSingleTry


@functools.cache
def _s3_class() -> type:
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
        return _gcs_class()
    if name == "S3FileSystemSingleTry":
        return _s3_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _gcs_options(options: dict[str, Any]) -> dict[str, Any]:
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        # An emulator takes no credentials, and looking for Google's default ones could reach
        # for the metadata server: anonymous unless a token is given.
        options.setdefault("endpoint_url", emulator if "://" in emulator else "http://" + emulator)
        options.setdefault("token", "anon")
    if options.pop("anon", False):
        options.setdefault("token", "anon")
    session = dict(options.get("session_kwargs") or {})
    session.setdefault("auto_decompress", False)
    session["headers"] = {"Accept-Encoding": "gzip", **dict(session.get("headers") or {})}
    options["session_kwargs"] = session
    return options


def _s3_options(options: dict[str, Any], timeout: float, concurrency: int) -> dict[str, Any]:
    client = dict(options.get("client_kwargs") or {})
    # botocore reads AWS_ENDPOINT_URL(_S3) itself, but passing it makes it part of fsspec's
    # instance-cache key, so a changed environment never reuses a client for the old endpoint.
    env_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if env_endpoint and not options.get("endpoint_url") and not client.get("endpoint_url"):
        options["endpoint_url"] = env_endpoint
    # botocore reads AWS_DEFAULT_REGION only; honour AWS_REGION too.
    region = os.environ.get("AWS_REGION")
    if region and not os.environ.get("AWS_DEFAULT_REGION") and "region_name" not in client:
        client["region_name"] = region
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


def _make_filesystem(
    url: str, protocol: str, storage_options: Mapping[str, Any], timeout: float, concurrency: int
) -> Any:
    """The fsspec filesystem for ``url``; SDK errors (a bad token file, ...) name the URL."""
    import fsspec

    options = dict(storage_options)
    # A key-value store must see other writers' objects: no stale directory listings.
    options.setdefault("use_listings_cache", False)
    if protocol in _GCS:
        cls, options = _gcs_class(), _gcs_options(options)
    elif protocol in _S3:
        cls, options = _s3_class(), _s3_options(options, timeout, concurrency)
    else:
        try:
            cls = fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as exc:
            raise UnknownSchemeError(
                f"cannot open {url!r}: no filesystem for {protocol}:// is installed ({exc})"
            ) from exc
    try:
        return cls(**options)
    except TypeError:  # an option the filesystem does not take: the caller's mistake, as it is
        raise
    except Exception as exc:
        failure = classify(exc)
        if failure.kind == PERMISSION:
            raise StoragePermissionError(f"cannot open {url}: credentials refused ({failure.detail})") from exc
        raise StorageError(f"cannot open {url}: {failure.detail}") from exc


# -- the store ---------------------------------------------------------------------------------


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
        environment applies: ``AWS_ENDPOINT_URL`` (``_S3``), ``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
        ``STORAGE_EMULATOR_HOST`` (then ``token="anon"`` unless given),
        ``GOOGLE_APPLICATION_CREDENTIALS``. ``{"anon": True}`` means anonymous on S3 and GCS.
    max_concurrency:
        Most requests in flight at once for this store, over all threads calling it.
    timeout:
        Seconds one request attempt may take.
    retries:
        Most retries of a request after a transient failure (5xx, 408, 429, dropped
        connection, timeout).
    backoff, max_backoff:
        Retry ``n`` (from 0) first sleeps ``uniform(0, min(max_backoff, backoff * 2**n))`` s.
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
        ):
            if not ok:
                raise ValueError(f"FsspecStore({url!r}): {name}={value!r} is out of range")
        self.protocol = url.split("://", 1)[0].lower()
        self.url = url.rstrip("/")
        self.read_only = read_only or self.protocol in _HTTP
        self.max_concurrency = max_concurrency
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.list_timeout = float(list_timeout) if list_timeout is not None else 10 * self.timeout
        self.suffix_fallback = suffix_fallback
        self._variants = _VARIANTS if suffix_fallback else ("",)
        fs = filesystem if filesystem is not None else _make_filesystem(
            self.url, self.protocol, storage_options or {}, self.timeout, max_concurrency
        )
        self.fs = fs
        # Chunk reads go through obstore where the configuration allows (obstore_reads.py).
        self._reader = None if filesystem is not None or not obstore_reads else object_reader(
            self.protocol, self.url, storage_options or {}, self.timeout
        )
        self._cat_kwargs = {"max_concurrency": 1} if self.protocol in _S3 else {}  # no HEAD before GET
        self._root = fs._strip_protocol(self.url).rstrip("/")
        self._async = bool(getattr(fs, "async_impl", False))
        self._pool: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        if self._async:
            self._loop = fs.loop
        else:
            import fsspec.asyn

            self._loop = fsspec.asyn.get_loop()
        self._semaphore = asyncio.Semaphore(max_concurrency)
        # Protocols with object metadata record content encodings as Content-Encoding.
        self._metadata_encoding = self.protocol in _GCS or self.protocol in _S3
        find_params = inspect.signature(fs._find if self._async else fs.find).parameters
        self._find_has_prefix = "prefix" in find_params

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

    def _after_failure(self, exc: Exception, action: str, where: str, attempts: int, limit: float) -> float | None:
        """The failure policy for attempt number ``attempts`` failing with ``exc``.

        Returns ``None`` when the object is missing, else the seconds to sleep before the next
        attempt; raises :class:`StoragePermissionError`, :class:`StorageError` or
        :class:`StorageTimeoutError` (naming ``where``) when there is to be no next attempt.
        """
        failure = classify(exc)
        if isinstance(exc, TIMEOUTS) and not str(exc):  # our asyncio.wait_for
            failure = Failure(TRANSIENT, f"no answer within {limit:g} s", timed_out=True)
        if failure.kind == MISSING:
            return None
        if failure.kind == PERMISSION:
            raise StoragePermissionError(
                f"cannot {action} {where}: permission or credentials refused ({failure.detail})"
            ) from exc
        if failure.kind == FATAL:
            raise StorageError(f"cannot {action} {where}: {failure.detail}") from exc
        if attempts > self.retries:
            cls = StorageTimeoutError if failure.timed_out else StorageError
            raise cls(
                f"cannot {action} {where}: gave up after {attempts} attempt"
                f"{'s' if attempts != 1 else ''}; last error: {failure.detail}"
            ) from exc
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempts - 1)))

    async def _request(
        self, action: str, where: str, make: Callable[[], Awaitable[T]], *, timeout: float | None = None
    ) -> T | _Absent:
        """Run one request with the timeout and retry policy; ``_ABSENT`` if the object is missing."""
        limit = self.timeout if timeout is None else timeout
        until = _DEADLINE.get()
        attempts = 0
        last = ""
        while True:
            attempts += 1
            left = deadline.remaining(until)
            if left is not None and left <= 0:
                raise StorageTimeoutError(f"cannot {action} {where}: the caller's deadline passed after {attempts - 1} "
                                          f"attempt{'s' if attempts != 2 else ''}{last}")
            this = limit if left is None else min(limit, left)
            try:
                async with self._semaphore:
                    return await asyncio.wait_for(make(), this)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # foreign errors are translated here, at the edge
                pause = self._after_failure(exc, action, where, attempts, this)
                if pause is None:
                    return _ABSENT
                last = f"; last error: {classify(exc).detail or type(exc).__name__}"
            left = deadline.remaining(until)
            await asyncio.sleep(pause if left is None else min(pause, left))

    def _read_direct(self, key: str, until: float | None = None) -> Value | None:
        """``key`` (or a suffixed variant) through obstore, in the calling thread, with the
        retry policy; each attempt is bounded by obstore's client timeout, and none starts
        past the caller's deadline ``until``."""
        assert self._reader is not None
        for suffix in self._variants:
            name = key + suffix
            attempts = 0
            while True:
                attempts += 1
                deadline.check(f"read {self.describe(name)}", until)
                try:
                    data = self._reader.get(name)
                    return None if data is None else Value(data, _ENCODING_OF_SUFFIX.get(suffix))
                except Exception as exc:  # foreign errors are translated here, at the edge
                    pause = self._after_failure(exc, "read", self.describe(name), attempts, self.timeout)
                    if pause is None:
                        break
                left = deadline.remaining(until)
                time.sleep(pause if left is None else min(pause, left))
        return None

    def _read_pool(self) -> ThreadPoolExecutor:
        """The threads obstore reads block in: ``max_concurrency`` of them, one request each."""
        with self._pool_lock:
            if self._readers is None:
                self._readers = ThreadPoolExecutor(
                    max_workers=self.max_concurrency, thread_name_prefix="bigarrays-obstore"
                )
            return self._readers

    def _run(self, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run the coroutines ``jobs`` make concurrently on the IO loop; results in order.

        The first failure cancels the others and is raised.
        """
        if not jobs:
            return []
        import fsspec.asyn

        until = deadline.current()

        async def gather() -> tuple[list[T] | None, Exception | None]:
            _DEADLINE.set(until)  # the tasks below copy this context: their requests see the deadline
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
        results, error = fsspec.asyn.sync(self._loop, gather)
        if error is not None:
            raise error
        assert results is not None
        return results

    # -- reads -------------------------------------------------------------------------------
    async def _get_one(self, key: str) -> Value | None:
        for suffix in self._variants:
            path = self._path(key + suffix)
            out = await self._request(
                "read", self.describe(key + suffix), self._op("cat_file", path, **self._cat_kwargs)
            )
            if out is not _ABSENT:
                return Value(bytes(out), _ENCODING_OF_SUFFIX.get(suffix))  # type: ignore[arg-type]
        return None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The stored bytes of each key, in order; ``None`` where a key (and its ``.gz`` /
        ``.zstd`` variants) is missing.

        Raises :class:`InvalidKeyError` for an unsafe key (before any request),
        :class:`StoragePermissionError` when credentials are refused, :class:`StorageError`
        (or :class:`StorageTimeoutError`) when the store fails after its retries.
        """
        keys = [check_key(k) for k in keys]
        values = self._iter_direct(keys) if self._reader is not None else self._run(
            [functools.partial(self._get_one, k) for k in keys])
        return [None if v is None else bytes(v.data) for v in values]

    def iter_values(self, keys: Sequence[str], spans: Sequence[ByteSpan | None] | None = None
                    ) -> Iterator[Value | None]:
        """The values of ``keys`` in order (``None`` where missing), whole (``spans`` is ignored),
        with the encoding of the suffixed variant found (``.gz``, ``.zstd``).

        Through obstore, every request of the batch starts at once (at most
        ``max_concurrency`` in flight) and each value is yielded as soon as it and those before
        it have arrived, so the caller decodes value ``i`` while later ones are still on the
        wire; the values are views of obstore's buffers (no copy). Through fsspec the batch is
        fetched as by :meth:`get_many` first (streaming it measured no faster). Raises as
        :meth:`get_many`, when the failed key's turn comes; obstore requests not yet started
        are then dropped, as they are when the caller stops iterating early.
        """
        keys = [check_key(k) for k in keys]
        if not keys:
            return iter(())
        if self._reader is not None:
            return self._iter_direct(keys)
        return iter(self._run([functools.partial(self._get_one, k) for k in keys]))

    def _iter_direct(self, keys: Sequence[str]) -> Iterator[Value | None]:
        pool = self._read_pool()
        until = deadline.current()
        futures = [pool.submit(self._read_direct, k, until) for k in keys]
        try:
            for k, f in zip(keys, futures):
                # A blocked obstore request cannot be cut short: at the deadline the caller stops waiting.
                done, _ = concurrent.futures.wait([f], timeout=deadline.remaining(until))
                if not done:
                    raise StorageTimeoutError(f"cannot read {self.describe(k)}: the caller's deadline passed")
                yield f.result()
        finally:
            for f in futures:
                f.cancel()

    def _head(self, path: str) -> Callable[[], Awaitable[Any]]:
        """A factory for the cheapest "is this an object?" request the protocol has."""
        if self._async and self.protocol in _S3:
            bucket, key, _ = self.fs.split_path(path)
            return self._op("call_s3", "head_object", Bucket=bucket, Key=key)
        if self._async and self.protocol in _GCS:
            return self._op("get_object", path)  # one GET; _info also lists the "directory"
        return self._op("info", path)

    async def _exists_one(self, key: str) -> bool:
        for suffix in self._variants:
            out = await self._request("check", self.describe(key + suffix), self._head(self._path(key + suffix)))
            if out is not _ABSENT and not (isinstance(out, dict) and out.get("type") == "directory"):
                return True
        return False

    def _metadata(self, path: str) -> Callable[[], Awaitable[Any]]:
        """A factory for the request that gives an object's metadata (not its bytes)."""
        if self._async and self.protocol in _S3:
            bucket, key, _ = self.fs.split_path(path)
            return self._op("call_s3", "head_object", Bucket=bucket, Key=key)
        if self._async and self.protocol in _GCS:
            return self._op("get_object", path)
        return self._op("info", path)

    @staticmethod
    def _stamp_of(meta: Any, suffix: str) -> Stamp | None:
        """The stamp an object's metadata gives, or None when it names no version (no
        generation, ETag or modification time)."""
        if not isinstance(meta, dict):
            return None
        size = meta.get("ContentLength", meta.get("size"))
        version = None
        for field in ("VersionId", "generation", "ETag", "etag"):
            if meta.get(field):
                version = f"{field}:{meta[field]}"
                break
        mtime = meta.get("LastModified", meta.get("updated", meta.get("Last-Modified", meta.get("mtime"))))
        mtime_ns = None
        if mtime is not None:
            import datetime
            from email.utils import parsedate_to_datetime

            try:
                if isinstance(mtime, str):
                    when = (datetime.datetime.fromisoformat(mtime.replace("Z", "+00:00")) if "T" in mtime
                            else parsedate_to_datetime(mtime))
                elif isinstance(mtime, (int, float)):
                    when = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc)
                else:
                    when = mtime
                mtime_ns = int(when.timestamp() * 1e9)
            except (TypeError, ValueError, AttributeError):
                mtime_ns = None
        if version is None and mtime_ns is None:
            return None
        return Stamp(size=None if size is None else int(size), mtime_ns=mtime_ns, version=version,
                     encoding=_ENCODING_OF_SUFFIX.get(suffix))

    async def _stat_one(self, key: str) -> Stamp | None:
        for suffix in self._variants:
            path = self._path(key + suffix)
            meta = await self._request("stat", self.describe(key + suffix), self._metadata(path))
            if meta is _ABSENT or (isinstance(meta, dict) and meta.get("type") == "directory"):
                continue
            stamp = self._stamp_of(meta, suffix)
            if stamp is not None:
                return stamp
            # No version in the metadata: the bytes themselves, digested (correct, not cheap).
            data = await self._request("read", self.describe(key + suffix),
                                       self._op("cat_file", path, **self._cat_kwargs))
            if data is _ABSENT:
                continue
            digest = hashlib.blake2b(bytes(data), digest_size=16).hexdigest()  # type: ignore[arg-type]
            return Stamp(size=len(data), version=f"blake2b:{digest}",  # type: ignore[arg-type]
                         encoding=_ENCODING_OF_SUFFIX.get(suffix))
        return None

    def stat_many(self, keys: Sequence[str]) -> list[Stamp | None]:
        """The stamp of each key's stored value from its metadata (see "Stamps" above), in
        order; ``None`` where the key and its variants are missing. Raises as :meth:`get_many`."""
        keys = [check_key(k) for k in keys]
        return self._run([functools.partial(self._stat_one, k) for k in keys])

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
        if found is _ABSENT:
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
            if key and key.startswith(prefix):
                keys[key] = None
        return iter(list(keys))

    # -- writes ------------------------------------------------------------------------------
    def _write_kwargs(self, options: WriteOptions | None) -> dict[str, Any]:
        if options is None:
            return {}
        if self.protocol in _S3:
            pairs = {
                "ContentEncoding": options.content_encoding,
                "ContentType": options.content_type,
                "CacheControl": options.cache_control,
            }
            return {k: v for k, v in pairs.items() if v}
        if self.protocol in _GCS:
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

    def close(self) -> None:
        """Shut down the store's thread pools (the filesystem is shared and stays open)."""
        with self._pool_lock:
            pools, self._pool, self._readers = (self._pool, self._readers), None, None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=False)
