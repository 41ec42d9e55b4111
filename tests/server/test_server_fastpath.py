"""The chunk fast path: cache hits answered in pure ASGI exactly as the routed chunk route answers."""

from __future__ import annotations

import errno
import gc
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from bigarrays_server import Settings, create_app
from bigarrays_server.cors import CorsPolicy
from bigarrays_server.fastpath import ROUTE, ChunkFastPath
from bigarrays_server.reader import ChunkReader, body_view
from bigarrays_server.state import ServerState
from conftest import TOKEN
from server_live import InProcess

import bigarrays_core as bc
from tests.page_cache import evict

Writable = tuple[InProcess, dict[str, str], dict[str, np.ndarray]]

# (dataset, chunk): a clipped uint16 edge chunk at a negative offset, a 3-channel chunk, a zstd chunk.
CHUNKS = [("em", "64-86_74-110_69-75"), ("rgb", "32-64_32-48_16-20"), ("zst", "64-128_64-96_32-64")]


def chunk_voxels(urls: dict[str, str], name: str, chunk: str) -> np.ndarray:
    return bc.open(urls[name]).read(bc.Box.parse(chunk))


@pytest.fixture
def fresh(urls: dict[str, str]) -> Iterator[InProcess]:
    """An app of its own (empty cache), allowing one origin."""
    client = InProcess(create_app(Settings(datasets=urls, cache_mb=64, cors_origins=["http://viewer.example"])))
    yield client
    client.close()


@contextmanager
def through_the_route(api: InProcess) -> Iterator[None]:
    """Requests inside the block skip the fast path: FastAPI's routes answer them."""
    fast, api.app.fast = api.app.fast, None
    try:
        yield
    finally:
        api.app.fast = fast


class Refuser:
    """An app that answers 599 to everything: what reaches it was not answered by the fast path."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class FastOnly:
    """Requests to a ChunkFastPath over ``api``'s worker state whose fall-through is a :class:`Refuser`."""

    def __init__(self, api: InProcess) -> None:
        state: ServerState = api.app.state.bigarrays
        self.refuser = Refuser()
        fast = ChunkFastPath(self.refuser, CorsPolicy(state.settings.cors_origins), state.metrics, lambda: state)
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=fast), base_url="http://testserver",
                                        headers={"Accept-Encoding": "identity"})

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(lambda: self.client.request(method, url, **kwargs))

    def close(self) -> None:
        self._portal.call(self.client.aclose)
        self._portal_cm.__exit__(None, None, None)


@pytest.mark.parametrize("name,chunk", CHUNKS)
def test_a_cache_hit_is_answered_exactly_as_the_route_answers_it(fresh: InProcess, urls: dict[str, str],
                                                                 name: str, chunk: str) -> None:
    url = f"/v1/{name}/chunks/0/{chunk}"
    cache = fresh.app.state.bigarrays.cache
    for headers in ({}, {"Origin": "http://viewer.example"}, {"Origin": "http://elsewhere.example"},
                    {"Accept": "application/octet-stream, application/x-npy;q=0.5"}):
        for method in ("GET", "HEAD"):
            cache.clear()
            with through_the_route(fresh):
                routed = fresh.request(method, url, headers=headers)  # a miss, loaded by the route
            fast = fresh.request(method, url, headers=headers)  # a hit
            assert routed.status_code == fast.status_code == 200, routed.text
            assert fast.headers.raw == routed.headers.raw, (method, headers)
            assert fast.content == routed.content
            allowed = headers.get("Origin") == "http://viewer.example"
            assert fast.headers.get("access-control-allow-origin") == ("http://viewer.example" if allowed else None)
            assert (fast.headers.get("vary") == "Origin") == allowed
    got = fresh.get(url).content
    assert got == chunk_voxels(urls, name, chunk).tobytes(order="F")


def test_hits_are_answered_without_the_app_and_everything_else_falls_through(api: InProcess,
                                                                             urls: dict[str, str]) -> None:
    name, chunk = CHUNKS[0]
    url = f"/v1/{name}/chunks/0/{chunk}"
    assert api.get(url).status_code == 200  # now cached
    fast = FastOnly(api)
    try:
        r = fast.request("GET", url)
        assert r.status_code == 200 and fast.refuser.paths == []
        assert r.content == chunk_voxels(urls, name, chunk).tobytes(order="F")
        assert r.headers["x-shape"] == "22,36,6,1" and r.headers["access-control-allow-origin"] == "*"
        assert fast.request("GET", url, params={"format": "raw"}).status_code == 200
        assert fast.request("HEAD", url).content == b""
        assert fast.refuser.paths == []
        for method, path, kwargs in (
                ("GET", url, {"params": {"format": "npy"}}),
                ("GET", url, {"headers": {"Accept": "application/x-npy"}}),
                ("GET", url, {"params": {"format": "raw", "x": "1"}}),
                ("PUT", url, {"content": b""}),
                ("GET", f"/v1/{name}/chunks/00/{chunk}", {}),
                ("GET", f"/v1/{name}/chunks/\u0660/{chunk}", {}),
                ("GET", f"/v1/{name}/chunks/0/1-64_10-74_5-37", {}),  # not on the grid
                ("GET", f"/v1/nope/chunks/0/{chunk}", {})):
            before = len(fast.refuser.paths)
            assert fast.request(method, path, **kwargs).status_code == 599, (method, path, kwargs)
            assert len(fast.refuser.paths) == before + 1
        # Of repeated headers the first counts, as in the route (request.headers.get).
        twice = [("Accept", "application/x-npy"), ("Accept", "application/octet-stream")]
        before = len(fast.refuser.paths)
        assert fast.request("GET", url, headers=twice).status_code == 599
        assert fast.request("GET", url, headers=twice[::-1]).status_code == 200
        assert len(fast.refuser.paths) == before + 1
        before = len(fast.refuser.paths)
        uncached = f"/v1/{name}/chunks/0/0-64_10-74_5-37"  # loaded by the fast path
        assert fast.request("GET", uncached).content == chunk_voxels(urls, name, "0-64_10-74_5-37").tobytes(order="F")
        assert len(fast.refuser.paths) == before
    finally:
        fast.close()


def test_fast_answers_count_as_cache_hits_and_requests(fresh: InProcess) -> None:
    name, chunk = CHUNKS[1]
    url = f"/v1/{name}/chunks/0/{chunk}"
    stats = fresh.app.state.bigarrays.cache.stats
    fresh.get(url)
    hits = stats.hits
    for _ in range(3):
        fresh.get(url)
    fresh.head(url)
    assert stats.hits == hits + 4
    text = fresh.get("/metrics").text
    assert f'bigarrays_requests_total{{method="GET",route="{ROUTE}",status="200"}} 4' in text
    assert f'bigarrays_requests_total{{method="HEAD",route="{ROUTE}",status="200"}} 1' in text


def test_a_write_is_seen_by_the_next_chunk_read(writable: Writable, rng: np.random.Generator) -> None:
    api, urls, _ = writable
    url = "/v1/em/chunks/0/0-64_10-74_5-37"
    old = api.get(url).content
    assert api.get(url).content == old  # a hit
    new = rng.integers(0, 2**16, size=(64, 64, 32, 1), dtype=np.uint16)
    r = api.put("/v1/em/cutout/0/0:64,10:74,5:37", content=new.tobytes(order="F"),
                headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert api.get(url).content == new.tobytes(order="F") != old
    assert api.get(url).content == new.tobytes(order="F")  # and the hit after it


def test_body_view_is_the_fortran_bytes_without_a_copy() -> None:
    arr = np.asfortranarray(np.arange(2 * 3 * 4 * 2, dtype="<u2").reshape(2, 3, 4, 2))
    view = body_view(arr)
    assert view.nbytes == len(view) == arr.nbytes
    assert bytes(view) == arr.tobytes(order="F")
    assert np.shares_memory(np.frombuffer(view, dtype=np.uint8), arr)
    c_ordered = np.ascontiguousarray(arr[:, :, 1:3])
    assert bytes(body_view(c_ordered)) == c_ordered.tobytes(order="F")
    assert bytes(body_view(arr.astype(">u2"))) == arr.tobytes(order="F")


CUTOUTS = [("em", "-70:20,0:60,0:40"), ("rgb", "3:60,1:40,2:19"), ("seg", "-5:40,3:9,0:32,0:1"),
           ("holes", "60:70,60:70,30:34")]


@pytest.mark.parametrize("name,bbox", [c for c in CUTOUTS if c[0] != "seg"])  # raw scales
def test_a_small_cutout_not_cached_is_loaded_and_answered_exactly_as_the_route_answers_it(
        fresh: InProcess, urls: dict[str, str], name: str, bbox: str) -> None:
    url = f"/v1/{name}/cutout/0/{bbox}"
    cache, stats = fresh.app.state.bigarrays.cache, fresh.app.state.bigarrays.cache.stats
    for headers in ({}, {"Origin": "http://viewer.example"}, {"Accept": "application/x-npy"}):
        for query in ({}, {"format": "npy"}):
            cache.clear()
            with through_the_route(fresh):
                routed = fresh.get(url, headers=headers, params=query)
            cache.clear()
            misses = stats.misses
            fast = fast_only(fresh, "GET", url, headers, params=query)
            assert stats.misses > misses
            assert (fast.status_code, fast.headers.raw, fast.content) == (
                routed.status_code, routed.headers.raw, routed.content), (headers, query)


@pytest.mark.parametrize("name,bbox", CUTOUTS)
def test_a_small_cached_cutout_is_answered_exactly_as_the_route_answers_it(fresh: InProcess, urls: dict[str, str],
                                                                          name: str, bbox: str) -> None:
    url = f"/v1/{name}/cutout/0/{bbox}"
    cache = fresh.app.state.bigarrays.cache
    for headers in ({}, {"Origin": "http://viewer.example"}, {"Accept": "application/x-npy"}):
        for query in ({}, {"format": "npy"}, {"format": "raw"}):
            for method in ("GET", "HEAD"):
                cache.clear()
                with through_the_route(fresh):
                    routed = fresh.request(method, url, headers=headers, params=query)  # misses: the route
                fast = fresh.request(method, url, headers=headers, params=query)
                assert routed.status_code == fast.status_code == 200, routed.text
                assert fast.headers.raw == routed.headers.raw, (method, headers, query)
                assert fast.content == routed.content
                tag = fast.headers["etag"]
                again = fresh.request(method, url, headers={**headers, "If-None-Match": tag}, params=query)
                assert again.status_code == 304 and again.headers["etag"] == tag
    want = bc.open(urls[name]).read(*_box_and_channels(bbox))
    assert fresh.get(url).content == want.tobytes(order="F")


def _box_and_channels(bbox: str) -> tuple[bc.Box, tuple[int, int] | None]:
    parts = bbox.split(",")
    if len(parts) == 4:
        c0, c1 = parts[3].split(":")
        return bc.Box.parse(",".join(parts[:3])), (int(c0), int(c1))
    return bc.Box.parse(bbox), None


def test_cached_cutouts_skip_the_app_and_everything_else_falls_through(api: InProcess) -> None:
    url = "/v1/em/cutout/0/-70:20,0:60,0:40"
    assert api.get(url).status_code == 200  # its chunks now cached
    fast = FastOnly(api)
    try:
        assert fast.request("GET", url).status_code == 200
        assert fast.request("GET", url, params={"format": "npy"}).status_code == 200
        assert fast.request("HEAD", url).status_code == 200
        assert fast.refuser.paths == []
        for kwargs in ({"headers": {"Range": "bytes=0-9"}}, {"headers": {"Accept-Encoding": "zstd"}},
                       {"headers": {"If-Match": '"x"'}}, {"params": {"format": "tiff"}},
                       {"params": {"format": "raw", "x": "1"}}):
            before = len(fast.refuser.paths)
            assert fast.request("GET", url, **kwargs).status_code == 599, kwargs
            assert len(fast.refuser.paths) == before + 1
        for method, path, kwargs in (
                ("GET", "/v1/em/cutout/0/0:150,0:100,0:70", {}),  # more than INLINE_BYTES
                ("GET", "/v1/em/cutout/0/0:0,0:1,0:1", {}), ("GET", "/v1/nope/cutout/0/0:1,0:1,0:1", {}),
                ("GET", "/v1/em/cutout/9/0:1,0:1,0:1", {}),
                ("HEAD", "/v1/holes/cutout/0/0:128,0:96,0:64", {}),  # not cached: stamps suffice, the route answers
                ("GET", "/v1/holes/cutout/0/0:128,0:96,0:64", {"headers": {"If-None-Match": '"x"'}}),
                ("GET", "/v1/zst/cutout/0/0:128,0:96,0:64", {}),  # compressed: the route decodes on several threads
                ("GET", "/v1/seg/cutout/0/0:64,0:64,0:32", {})):  # compressed_segmentation
            before = len(fast.refuser.paths)
            assert fast.request(method, path, **kwargs).status_code == 599, (method, path)
            assert len(fast.refuser.paths) == before + 1
        before = len(fast.refuser.paths)
        assert fast.request("GET", "/v1/holes/cutout/0/0:128,0:96,0:64").status_code == 200  # raw: loaded here
        assert len(fast.refuser.paths) == before
    finally:
        fast.close()


def _file_url(urls: dict[str, str], name: str, chunk: str) -> str:
    return f"/precomputed/{name}/{bc.open(urls[name]).key}/{chunk}"


# (url maker, dataset, chunk): a /v1 chunk and a /precomputed chunk file (raw, plain: served from the cache).
MISSES = [(lambda urls, name, chunk: f"/v1/{name}/chunks/0/{chunk}", "em", "64-86_74-110_69-75"),
          (_file_url, "em", "0-64_10-74_5-37"), (_file_url, "rgb", "32-64_32-48_16-20")]


@pytest.mark.parametrize("make_url,name,chunk", MISSES)
def test_a_miss_is_loaded_and_answered_exactly_as_the_route_answers_it(fresh: InProcess, urls: dict[str, str],
                                                                      make_url: Any, name: str, chunk: str) -> None:
    url = make_url(urls, name, chunk)
    state = fresh.app.state.bigarrays
    cache, stats = state.cache, state.cache.stats
    tag = fresh.get(url).headers["etag"]
    for headers in ({}, {"Origin": "http://viewer.example"}, {"If-None-Match": tag}, {"If-None-Match": '"other"'}):
        for method in ("GET", "HEAD"):
            cache.clear()
            with through_the_route(fresh):
                routed = fresh.request(method, url, headers=headers)
            cache.clear()
            misses = stats.misses
            fast = fast_only(fresh, method, url, headers)
            assert stats.misses == misses + 1  # loaded once, by the fast path
            assert (fast.status_code, fast.headers.raw, fast.content) == (
                routed.status_code, routed.headers.raw, routed.content), (method, headers)
    assert fresh.get(url).content == chunk_voxels(urls, name, chunk).tobytes(order="F")


def fast_only(api: InProcess, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    """``method url`` answered by the fast path over ``api``'s state (fails if it falls through)."""
    fast = FastOnly(api)
    try:
        r = fast.request(method, url, headers=headers, **kwargs)
        assert fast.refuser.paths == [], f"{method} {url} {headers} fell through"
        return r
    finally:
        fast.close()


def test_a_chunk_not_stored_is_read_once_and_answered_by_the_route(fresh: InProcess, urls: dict[str, str]) -> None:
    stats = fresh.app.state.bigarrays.cache.stats
    for url in ("/v1/holes/chunks/0/64-128_64-128_32-64", _file_url(urls, "holes", "64-128_64-128_32-64")):
        with through_the_route(fresh):
            routed = fresh.get(url)
        fresh.app.state.bigarrays.cache.clear()
        misses, hits = stats.misses, stats.hits
        r = fresh.get(url)
        assert (r.status_code, r.json()) == (routed.status_code, routed.json()) == (404, routed.json())
        assert r.json()["error"] == "missing_chunk"
        assert (stats.misses, stats.hits) == (misses + 1, hits + 1)  # the fast path's load; the route's hit


class FailingReads:
    """A stand-in for ``ChunkReader.chunks`` that fails (or hangs for ``hang`` seconds), counting calls."""

    def __init__(self, hang: float = 0.0) -> None:
        self.calls = 0
        self.hang = hang
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.calls += 1
        if self.hang:
            time.sleep(self.hang)
        raise bc.StorageError("the store broke while reading (injected)")


@pytest.mark.parametrize("route", ["v1", "file", "cutout"])
def test_a_failed_load_is_answered_by_the_route_without_asking_storage_again(
        urls: dict[str, str], monkeypatch: pytest.MonkeyPatch, route: str) -> None:
    api = InProcess(create_app(Settings(datasets=urls, cache_mb=64, storage_timeout=0.5)))
    try:
        reader = api.app.state.bigarrays.reader
        url = {"v1": "/v1/em/chunks/0/0-64_10-74_5-37", "file": _file_url(urls, "em", "0-64_10-74_5-37"),
               "cutout": "/v1/em/cutout/0/-70:20,0:60,0:40"}[route]
        monkeypatch.setattr(reader, "chunk_at_hand", lambda ba, ref: None)  # not in memory: loaded in a thread
        answers = []
        for fast in (False, True):
            failing = FailingReads()
            monkeypatch.setattr(reader, "chunks", failing)
            if fast:
                r = api.get(url)
            else:
                with through_the_route(api):
                    r = api.get(url)
            assert failing.calls == 1, (fast, failing.calls)
            answers.append((r.status_code, r.json()))
        assert answers[0] == answers[1]
        assert answers[1][0] == 502 and "injected" in answers[1][1]["message"]
        hanging = FailingReads(hang=2.0)
        monkeypatch.setattr(reader, "chunks", hanging)
        start = time.monotonic()
        r = api.get(url)
        took = time.monotonic() - start
        assert r.status_code == 504 and r.json()["error"] == "upstream_timeout", r.text
        assert hanging.calls == 1 and took < 1.5, (hanging.calls, took)  # one deadline, not one per layer
    finally:
        api.close()


def test_the_fast_path_keeps_no_chunk_the_cache_has_evicted(urls: dict[str, str]) -> None:
    # A budget of one em chunk (64 x 64 x 32 uint16 = 256 KiB): each load evicts the one before.
    api = InProcess(create_app(Settings(datasets=urls, cache_mb=0.3)))
    try:
        state = api.app.state.bigarrays
        ba = state.datasets.get("em").at(0)
        first, second = ba.chunks(bc.Box((-64, 10, 5), (0, 74, 37)))[0], ba.chunks(bc.Box((0, 10, 5), (64, 74, 37)))[0]
        for prefix in ("/v1/em/chunks/0/", _file_url(urls, "em", "")):
            state.cache.clear()
            assert api.get(prefix + first.name).status_code == 200
            assert api.get(prefix + first.name).status_code == 200  # a hit, answered from the table of paths
            entry = state.cache.fresh(ChunkReader.cache_key(ba, first))
            assert entry is not None
            held = weakref.ref(entry.value)
            del entry
            assert api.get(prefix + second.name).status_code == 200
            assert state.cache.fresh(ChunkReader.cache_key(ba, first)) is None  # evicted
            gc.collect()
            assert held() is None, "an evicted chunk is still held: the cache's byte budget does not bound memory"
    finally:
        api.close()


def _chunk_file(urls: dict[str, str], name: str, chunk: str) -> str:
    ba = bc.open(urls[name])
    store = ba.scale_io.store
    assert isinstance(store, bc.kvstore.LocalStore)
    return os.path.join(store.root, ba.key, chunk)


@pytest.mark.parametrize("make_url,name,chunk", MISSES)
def test_a_miss_in_the_page_cache_is_read_on_the_event_loop_without_a_worker_thread(
        fresh: InProcess, urls: dict[str, str], monkeypatch: pytest.MonkeyPatch, make_url: Any, name: str,
        chunk: str) -> None:
    url = make_url(urls, name, chunk)
    state = fresh.app.state.bigarrays
    with through_the_route(fresh):
        routed = fresh.get(url)
    state.cache.clear()
    threaded = FailingReads()
    monkeypatch.setattr(state.reader, "chunks", threaded)  # a load in a worker thread would fail
    misses = state.cache.stats.misses
    fast = fast_only(fresh, "GET", url, {})
    assert threaded.calls == 0
    assert state.cache.stats.misses == misses + 1
    assert (fast.status_code, fast.headers.raw, fast.content) == (routed.status_code, routed.headers.raw,
                                                                  routed.content)
    assert fast.content == chunk_voxels(urls, name, chunk).tobytes(order="F")


class CountingReads:
    """``ChunkReader.chunks`` (the load in a worker thread), counting its calls."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.real(*args, **kwargs)


def test_a_miss_not_in_the_page_cache_is_read_in_a_worker_thread(fresh: InProcess, urls: dict[str, str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    state = fresh.app.state.bigarrays
    for url, name, chunk in (("/v1/em/chunks/0/64-86_74-110_69-75", "em", "64-86_74-110_69-75"),
                             (_file_url(urls, "rgb", "32-64_32-48_16-20"), "rgb", "32-64_32-48_16-20")):
        with through_the_route(fresh):
            routed = fresh.get(url)
        state.cache.clear()
        evict(_chunk_file(urls, name, chunk))
        threaded = CountingReads(state.reader.chunks)
        monkeypatch.setattr(state.reader, "chunks", threaded)
        fast = fast_only(fresh, "GET", url, {})
        assert threaded.calls == 1  # not at hand: the worker thread read it from the disk
        assert (fast.status_code, fast.headers.raw, fast.content) == (routed.status_code, routed.headers.raw,
                                                                      routed.content)
        monkeypatch.undo()


def test_a_read_on_the_event_loop_that_fails_is_read_again_in_a_worker_thread(
        fresh: InProcess, urls: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    url = _file_url(urls, "em", "0-64_10-74_5-37")
    state = fresh.app.state.bigarrays
    with through_the_route(fresh):
        routed = fresh.get(url)
    state.cache.clear()

    def broken(self: Any, fd: int, view: memoryview, offset: int, key: str) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(bc.kvstore.LocalStore, "_pread_at_hand", broken)
    threaded = CountingReads(state.reader.chunks)
    monkeypatch.setattr(state.reader, "chunks", threaded)
    fast = fast_only(fresh, "GET", url, {})
    assert threaded.calls == 1
    assert (fast.status_code, fast.headers.raw, fast.content) == (routed.status_code, routed.headers.raw,
                                                                  routed.content)
    # And when the worker thread's read fails too, the route answers the error, as without the fast path.
    state.cache.clear()
    monkeypatch.setattr(state.reader, "chunks", FailingReads())
    r = fresh.get(url)
    assert r.status_code == 502 and "injected" in r.json()["message"]
