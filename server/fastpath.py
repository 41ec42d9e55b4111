"""The hot path: the chunk routes answered in pure ASGI, without FastAPI's routing.

Owns: :class:`ChunkFastPath`, the outermost middleware of the app. It answers ``GET`` and
``HEAD`` of

* ``/v1/{ds}/chunks/{mip}/{chunk}`` in the raw format (no query string or ``?format=raw``;
  no ``Accept`` or one that negotiates to raw), and
* ``/precomputed/{ds}/{scale key}/{chunk}`` of a scale whose chunk files are served from
  the decoded-chunk cache (raw, no byte compression), and
* ``/v1/{ds}/cutout/{mip}/{bbox}`` (raw or npy, plain bytes) of a box of at most
  ``INLINE_BYTES`` (the cutout is pasted right here, from cached chunks).

A chunk in the worker's cache and within its revalidation interval (or, for stores on
local disk or in memory, its stamp checked there and then: one ``stat``) is answered from
:meth:`ChunkFastPath.answer`, which never blocks (the protocol calls it as soon as a head is
parsed): prebuilt headers, and the cached array itself as the body (a view, no copy); a
matching ``If-None-Match`` gets the 304. A chunk that is not in the cache, or is stale, is
loaded through the cache in a worker thread (:func:`~bigarrays_server.storage_calls.run_storage`,
as the route loads it) and answered the same way: FastAPI's layers cost about as much as
loading a local chunk (a cutout's chunks are loaded together, for a ``GET`` without
``If-None-Match`` of a scale of plain raw chunks). A request with ``Range``, ``If-Match`` or ``If-Range``, a chunk that
is not stored, a malformed name, another format, another route, any error -- all fall
through to the FastAPI app, which is the reference for every answer; a failed load is
handed to it (:func:`~bigarrays_server.storage_calls.handed_failure`), so storage is asked
once. What the fast path sends is exactly what the route would send for the same request:
the same status, headers in the same order (the route's, then CORS from the same
:class:`~bigarrays_server.cors.CorsPolicy`), body, cache counts and metrics line.

What a path resolves to is kept in a bounded table, with the headers of the stamp last
seen; it holds no chunk data (bodies are attached per request), so the cache's byte budget
alone bounds what a worker keeps. The table is dropped when a dataset is reopened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final, NamedTuple

from bigarrays_server.bbox import RequestBox, parse_bbox
from bigarrays_server.cache import MISSING, Entry
from bigarrays_server.conditional import precondition
from bigarrays_server.content_coding import choose
from bigarrays_server.cors import CorsPolicy
from bigarrays_server.datasets import Dataset
from bigarrays_server.errors import ApiError
from bigarrays_server.formats import MEDIA_TYPES, negotiate, npy_header
from bigarrays_server.metrics import Metrics
from bigarrays_server.reader import ChunkReader
from bigarrays_server.responses import not_modified, whole_headers
from bigarrays_server.routes_chunks import chunk_ref, decoded_chunk_headers, reading_chunk
from bigarrays_server.routes_cutout import INLINE_BYTES, cutout_headers, held_body
from bigarrays_server.routes_precomputed import OCTETS, decoded_file_headers, reading_file, serves_decoded
from bigarrays_server.state import ServerState
from bigarrays_server.storage_calls import FAILED_LOAD, run_storage
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

import bigarrays_core as bc
from bigarrays_core.kvstore import Stamp

__all__ = ["CUTOUT_ROUTE", "FILE_ROUTE", "ROUTE", "Answer", "ChunkFastPath"]

#: The route templates the fast path serves (and counts its requests under in /metrics).
ROUTE: Final = "/v1/{ds}/chunks/{mip}/{chunk}"
FILE_ROUTE: Final = "/precomputed/{ds}/{path:path}"
_RAW_QUERIES: Final = frozenset({b"", b"format=raw"})
_CUTOUT_QUERIES: Final = frozenset({b"", b"format=raw", b"format=npy"})
CUTOUT_ROUTE: Final = "/v1/{ds}/cutout/{mip}/{bbox}"
_PLAIN_ACCEPTS: Final = frozenset({b"*/*", b"application/octet-stream"})
#: Request headers that make an answer something other than a whole 200 or a 304.
_FALL_THROUGH: Final = frozenset({b"range", b"if-match", b"if-range"})
_MAX_TARGETS: Final = 65536
_UNSEEN: Final = object()

Headers = list[tuple[bytes, bytes]]


class Answer:
    """One answer of the fast path: status, raw headers (CORS included), body, route template."""

    __slots__ = ("_lines", "body", "headers", "route", "status")

    def __init__(self, status: int, headers: Headers, body: memoryview | bytes, route: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.route = route
        self._lines: bytes | None = None

    def header_lines(self) -> bytes:
        """The headers as ``name: value\\r\\n`` lines, names in lower case (as uvicorn writes them)."""
        if self._lines is None:
            self._lines = b"".join(b"%s: %s\r\n" % (name.lower(), value) for name, value in self.headers)
        return self._lines

    def without_body(self) -> Answer:
        return self.with_body(b"")

    def with_body(self, body: memoryview | bytes) -> Answer:
        """This answer with ``body`` (its header lines are shared, not made again)."""
        answer = Answer(self.status, self.headers, body, self.route)
        answer._lines = self._lines
        return answer


class _Target:
    """What one URL path resolves to: the chunk's cache key, its route, how to make its
    headers, how to load it, and the body-less answers made for the stamp last seen (by
    status and origin). No chunk data is kept here: only the cache holds chunks, within its
    byte budget."""

    __slots__ = ("answers", "at_hand", "cache_key", "etag", "headers", "length", "load", "make", "media_type", "route",
                 "stamp", "stat", "what")

    def __init__(self, cache_key: object, route: str,
                 make: Callable[[Stamp | None], tuple[dict[str, str], str, str, int]],
                 stat: Callable[[Sequence[object]], Sequence[Stamp | None]] | None,
                 load: Callable[[], list[Entry]], what: str,
                 at_hand: Callable[[], Entry | None] | None = None) -> None:
        self.cache_key = cache_key
        self.route = route
        self.make = make
        #: Stats the chunk on the event loop, for stores where that is a cheap local call.
        self.stat = stat
        #: Loads the chunk's cache entry (blocking: run in a worker thread), as the route does,
        #: and what that is, for a storage error's message (the route's words).
        self.load = load
        self.what = what
        #: Loads the chunk on the event loop when its bytes are in memory (None: not at hand),
        #: for stores that read at hand; None for others.
        self.at_hand = at_hand
        self.stamp: Stamp | None | object = _UNSEEN
        self.etag = ""
        self.headers: dict[str, str] = {}
        self.media_type = ""
        self.length = 0
        self.answers: dict[tuple[int, str | None], Answer] = {}

    def answer(self, entry: Entry, origin: str | None, if_none_match: str | None, cors: CorsPolicy) -> Answer | None:
        """The 200 (or the 304 a matching ``If-None-Match`` gets) for ``entry``; None to fall through."""
        if entry.stamp != self.stamp:
            self.stamp, self.answers = entry.stamp, {}
            self.headers, self.etag, self.media_type, self.length = self.make(entry.stamp)
        status = 200
        if if_none_match is not None:
            condition = precondition({"if-none-match": if_none_match}, self.etag)
            if condition is not None and condition != 304:
                return None
            status = condition or 200
        key = (status, origin if not cors.any_origin else None)
        found = self.answers.get(key)
        if found is None:
            if len(self.answers) > 64:
                self.answers.clear()
            headers = self.headers
            if status == 304:
                raw = not_modified({**headers, "ETag": self.etag}).raw_headers
            else:
                whole = whole_headers(headers, self.etag, self.length, True)
                # The route's own Response classes build the raw headers, so both send the same.
                raw = Response(b"", headers=whole, media_type=self.media_type).raw_headers
            found = Answer(status, cors.add_to(raw, origin), b"", self.route)
            found.header_lines()
            self.answers[key] = found
        return found.with_body(entry.view) if status == 200 else found


class ChunkFastPath:
    """Answer the chunk routes (and small cached cutouts) directly; pass everything else to ``app``.

    Parameters
    ----------
    app:
        The app to fall through to (FastAPI's middleware stack).
    cors:
        The CORS policy the app's :class:`~bigarrays_server.cors.CorsMiddleware` applies.
    metrics:
        The worker's metrics, where fast answers are counted like routed ones.
    state:
        Returns the worker's :class:`ServerState`, or None before the lifespan has built it
        (then every request falls through).
    """

    def __init__(self, app: ASGIApp, cors: CorsPolicy, metrics: Metrics,
                 state: Callable[[], ServerState | None]) -> None:
        self.app = app
        self.cors = cors
        self.metrics = metrics
        self.state = state
        self._targets: dict[str, _Target | None] = {}
        self._version = -1
        self._state: ServerState | None = None

    def answer(self, method: str, path: str, query: bytes, headers: Sequence[tuple[bytes, bytes]]
               ) -> Answer | None:
        """The answer of a request the fast path answers from the cache (no body for HEAD);
        None to fall through. Never blocks: no I/O but a local stat."""
        found = self._lookup(method, path, query, headers)
        return found if isinstance(found, Answer) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            start = time.perf_counter()
            method = scope["method"]
            found = self._lookup(method, scope["path"], scope["query_string"], scope["headers"])
            answer = found if not isinstance(found, _Load) else await self._loaded(found, method, scope)
            if answer is not None:
                sent_status, sent = 500, 0  # what MetricsMiddleware records when sending fails
                try:
                    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
                    sent_status = answer.status
                    await send({"type": "http.response.body", "body": answer.body})
                    sent = len(answer.body)
                finally:
                    self.metrics.observe(method, answer.route, sent_status, time.perf_counter() - start, sent)
                return
        await self.app(scope, receive, send)

    def _lookup(self, method: str, path: str, query: bytes, headers: Sequence[tuple[bytes, bytes]]
                ) -> Answer | _Load | None:
        """The answer from the cache; or, for a request the fast path serves whose chunks are
        not all cached and fresh, what to load (see :meth:`_loaded`); None to fall through."""
        state = self._state or self.state()
        if state is None or method not in ("GET", "HEAD") or query not in _CUTOUT_QUERIES:
            return None
        self._state = state
        found = self._chunk(path, query, headers, state) if query in _RAW_QUERIES else None
        if found is None and path.startswith("/v1/"):
            found = self._cutout(method, path, query, headers, state)
        if isinstance(found, Answer) and method == "HEAD":
            found = found.without_body()
        return found

    def _chunk(self, path: str, query: bytes, headers: Sequence[tuple[bytes, bytes]],
               state: ServerState) -> Answer | _Load | None:
        """The answer for a fresh cache hit of a chunk, or the chunk to load; None to fall through."""
        found = self._target(path, query, headers, state)
        if found is None:
            return None
        target, origin, if_none_match = found
        entry = state.cache.fresh(target.cache_key)
        if entry is None and target.stat is not None:  # stale: a local stat is cheap enough to make here
            entry = state.cache.renew(target.cache_key, target.stat)
        if entry is None and target.at_hand is not None:  # a miss whose bytes are in memory: read them here
            entry = target.at_hand()
        if entry is None:
            return _Load(target.what, target.load, partial(self._chunk_answer, target, origin, if_none_match))
        return self._chunk_answer(target, origin, if_none_match, [entry])

    def _chunk_answer(self, target: _Target, origin: str | None, if_none_match: str | None,
                      entries: list[Entry]) -> Answer | None:
        (entry,) = entries
        if entry.value is MISSING:
            return None  # not stored: the route answers the 404 from the cache entry
        return target.answer(entry, origin, if_none_match, self.cors)

    async def _loaded(self, load: _Load, method: str, scope: Scope) -> Answer | None:
        """The answer of a request whose chunks were not all cached and fresh: they are loaded
        (or revalidated) through the cache in a worker thread, as the route loads them, then
        answered as a hit is. None to fall through; a failed load is handed to the route in
        ``scope`` (:func:`~bigarrays_server.storage_calls.handed_failure`), so storage is
        asked once."""
        state = self._state
        assert state is not None  # a _Load comes from _lookup, which set it
        try:
            entries = await run_storage(state.settings.storage_timeout, load.what, load.load)
        except Exception as exc:
            scope[FAILED_LOAD] = exc
            return None
        answer = load.answer(entries)
        return answer.without_body() if answer is not None and method == "HEAD" else answer

    def _target(self, path: str, query: bytes, headers: Sequence[tuple[bytes, bytes]],
                state: ServerState) -> tuple[_Target, str | None, str | None] | None:
        """The chunk a request for a whole plain chunk names, with its ``Origin`` and
        ``If-None-Match``; None for any other request."""
        if path.startswith("/v1/"):
            if path.count("/") != 5 or path.split("/", 4)[3] != "chunks":
                return None
        elif not path.startswith("/precomputed/") or path.count("/") != 4 or query != b"":
            return None
        head = _Head.of(headers)
        if head is None:
            return None
        if path[1] == "v" and head.accept is not None and head.accept not in _PLAIN_ACCEPTS \
                and not _negotiates_raw(head.accept):
            return None
        if state.datasets.version != self._version:
            self._targets.clear()  # a dataset was reopened: resolve paths afresh
            self._version = state.datasets.version
        target = self._targets.get(path)
        if target is None:
            if path in self._targets:
                return None  # known not to be a chunk the fast path serves
            target = _resolve(state, path)
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            self._targets[path] = target
            if target is None:
                return None
        return target, head.origin, head.if_none_match

    def _cutout(self, method: str, path: str, query: bytes, headers: Sequence[tuple[bytes, bytes]],
                state: ServerState) -> Answer | _Load | None:
        """(status, headers, body, route) of a small cutout whose chunks are all at hand in
        the cache (see :meth:`ChunkReader.held`), in plain bytes; or, for a ``GET`` without
        ``If-None-Match`` of a scale of plain raw chunks, its chunks to load; None to fall
        through. Falling through when not all at hand: ``HEAD`` and conditional requests
        (the route answers them from the chunks' stamps alone, without loading them), and
        scales whose chunks need decoding (the route's read decodes misses on several
        threads; one load here would decode them one after another)."""
        cut = _small_cutout(path, query, headers, state)
        if cut is None:
            return None
        held = state.reader.held(cut.ba, cut.refs)
        if held is not None:
            return self._cutout_answer(method, cut, held, state)
        if method != "GET" or cut.if_none_match is not None or not cut.ba.scale_io.pipeline.plain_raw:
            return None
        reader = state.reader
        return _Load(cut.what, partial(reader.chunks, cut.ba, cut.refs),
                     lambda entries: self._cutout_answer(
                         method, cut, {r.key: e for r, e in zip(cut.refs, entries, strict=True)}, state))

    def _cutout_answer(self, method: str, cut: _Cutout, held: dict[str, Entry], state: ServerState
                       ) -> Answer | None:
        ba, req, fmt = cut.ba, cut.req, cut.fmt
        stamps = [e.stamp for e in held.values()]
        prefix = npy_header(req.dtype, req.shape) if fmt == "npy" else b""
        out, etag = cutout_headers(cut.dataset, ba, req, fmt, None, stamps, state.settings.cache_control,
                                   len(prefix) + req.nbytes)
        if cut.if_none_match is not None:
            status = precondition({"if-none-match": cut.if_none_match}, etag)
            if status == 304:
                return Answer(304, self.cors.add_to(not_modified(out).raw_headers, cut.origin), b"", CUTOUT_ROUTE)
            if status is not None:
                return None
        body = held_body(state, ba, req, prefix, held) if method == "GET" else b""
        raw = Response(b"", headers=out, media_type=MEDIA_TYPES[fmt]).raw_headers
        return Answer(200, self.cors.add_to(raw, cut.origin), body, CUTOUT_ROUTE)


class _Load(NamedTuple):
    """What the fast path loads for a request whose chunks are not all cached and fresh:
    what that is called in a storage error, the blocking load (cache entries, in a worker
    thread), and the answer from the entries (None to fall through)."""

    what: str
    load: Callable[[], list[Entry]]
    answer: Callable[[list[Entry]], Answer | None]


class _Head(NamedTuple):
    """The request headers the fast path reads: the first of each, as the routes read them
    (``request.headers.get``)."""

    accept: bytes | None
    accept_encoding: bytes | None
    origin: str | None
    if_none_match: str | None

    @classmethod
    def of(cls, headers: Sequence[tuple[bytes, bytes]]) -> _Head | None:
        """The headers; None when one makes the answer other than a whole 200 or a 304
        (``Range``, ``If-Match``, ``If-Range``)."""
        accept = accept_encoding = origin = if_none_match = None
        for name, value in headers:
            if name == b"accept":
                accept = value if accept is None else accept
            elif name == b"accept-encoding":
                accept_encoding = value if accept_encoding is None else accept_encoding
            elif name == b"origin":
                origin = value.decode("latin-1") if origin is None else origin
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1") if if_none_match is None else if_none_match
            elif name in _FALL_THROUGH:
                return None
        return cls(accept, accept_encoding, origin, if_none_match)


class _Cutout(NamedTuple):
    """A small plain cutout the fast path may answer: what it is, and the request's
    ``Origin`` and ``If-None-Match``."""

    dataset: Dataset
    ba: bc.BigArray
    req: RequestBox
    fmt: str
    refs: list[bc.ChunkRef]
    origin: str | None
    if_none_match: str | None

    @property
    def what(self) -> str:
        """Loading its chunks, as a storage error's message says."""
        return f"reading the chunks of {self.req.to_text()} of dataset {self.dataset.name!r}"


def _small_cutout(path: str, query: bytes, headers: Sequence[tuple[bytes, bytes]], state: ServerState
                  ) -> _Cutout | None:
    """The cutout a request names when the fast path may answer it: ``GET``/``HEAD`` of at
    most ``INLINE_BYTES``, raw or npy, no content coding, ``Range``, ``If-Match`` or
    ``If-Range``; None otherwise."""
    parts = path.split("/")
    if len(parts) != 6 or parts[3] != "cutout":
        return None
    mip = _canonical_mip(parts[4])
    if mip is None:
        return None
    head = _Head.of(headers)
    if head is None or (head.accept_encoding is not None and choose(head.accept_encoding.decode("latin-1"))):
        return None  # a content coding: the route compresses
    try:
        dataset = state.datasets.get(parts[2])
        ba = dataset.at(mip)
        req = parse_bbox(parts[5], ba)
        accept = None if head.accept is None else head.accept.decode("latin-1")
        fmt = negotiate(query[len(b"format="):].decode() if query else None, accept)
    except (ApiError, bc.BigArraysError):
        return None
    if req.nbytes > min(INLINE_BYTES, state.settings.max_cutout_bytes):
        return None
    return _Cutout(dataset, ba, req, fmt, ba.chunks(req.box), head.origin, head.if_none_match)


def _negotiates_raw(accept: bytes) -> bool:
    try:
        return negotiate(None, accept.decode("latin-1"), ("raw", "npy", "encoded")) == "raw"
    except ApiError:
        return False


def _canonical_mip(text: str) -> int | None:
    # Only the canonical spelling of a mip (and none too long to be one).
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or str(int(text)) != text:
        return None
    return int(text)


def _resolve(state: ServerState, path: str) -> _Target | None:
    """The target of a chunk path the fast path serves, or None for any other (or bad) path."""
    parts = path.split("/")
    try:
        dataset = state.datasets.get(parts[2])
        if parts[1] == "v1":
            mip = _canonical_mip(parts[4])
            if mip is None:
                return None
            ba = dataset.at(mip)
            ref = chunk_ref(ba, parts[5])
            return _Target(ChunkReader.cache_key(ba, ref), ROUTE, _v1_headers(state, dataset, ba, ref),
                           _local_stat(ba, ref), _loader(state, ba, ref), reading_chunk(dataset, ref),
                           _at_hand(state, ba, ref))
        slot = dataset.slot_of_key(parts[3])
        if slot is None or slot.array is None or not serves_decoded(slot.array):
            return None
        ba = slot.array
        ref = chunk_ref(ba, parts[4])
        return _Target(ChunkReader.cache_key(ba, ref), FILE_ROUTE, _file_headers(state, dataset, ba, ref),
                       _local_stat(ba, ref), _loader(state, ba, ref), reading_file(dataset, ref.key),
                       _at_hand(state, ba, ref))
    except (ApiError, bc.BigArraysError):
        return None


def _v1_headers(state: ServerState, dataset: Dataset, ba: bc.BigArray, ref: bc.ChunkRef
                ) -> Callable[[Stamp | None], tuple[dict[str, str], str, str, int]]:
    length = _nbytes(ba, ref)

    def make(stamp: Stamp | None) -> tuple[dict[str, str], str, str, int]:
        headers, etag = decoded_chunk_headers(dataset, ba, ref, "raw", stamp, state.settings.cache_control)
        return headers, etag, MEDIA_TYPES["raw"], length

    return make


def _file_headers(state: ServerState, dataset: Dataset, ba: bc.BigArray, ref: bc.ChunkRef
                  ) -> Callable[[Stamp | None], tuple[dict[str, str], str, str, int]]:
    length = _nbytes(ba, ref)

    def make(stamp: Stamp | None) -> tuple[dict[str, str], str, str, int]:
        headers, etag = decoded_file_headers(dataset, ref.key, stamp, state.settings.cache_control)
        return headers, etag, OCTETS, length

    return make


def _local_stat(ba: bc.BigArray, ref: bc.ChunkRef) -> Callable[[Sequence[object]], Sequence[Stamp | None]] | None:
    """A stat of the chunk to run on the event loop, when its store is local (disk, memory)."""
    store = ba.scale_io.store
    if not store.local_stat:
        return None
    return lambda keys: store.stat_many([ref.key])


def _loader(state: ServerState, ba: bc.BigArray, ref: bc.ChunkRef) -> Callable[[], list[Entry]]:
    reader = state.reader
    return lambda: reader.chunks(ba, [ref])


def _at_hand(state: ServerState, ba: bc.BigArray, ref: bc.ChunkRef) -> Callable[[], Entry | None] | None:
    """A load of the chunk on the event loop from what is in memory, for scales that allow it."""
    reader = state.reader
    if not reader.reads_at_hand(ba):
        return None
    return lambda: reader.chunk_at_hand(ba, ref)


def _nbytes(ba: bc.BigArray, ref: bc.ChunkRef) -> int:
    x, y, z = ref.box.shape
    return x * y * z * ba.num_channels * ba.dtype.itemsize
