"""Every error a server can send arrives at the REST client as the class it was raised as.

A real server process (``bigarrays_server.run`` under uvicorn) serves local datasets, one
with broken chunks, and one over HTTP through a fault proxy (read-only by nature, and
made to refuse or stall on demand). Each error is caused for real, and the client must
raise exactly the core's class, with the code, status and detail the server sent, and a
message that names no storage path of the server.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from script_server import ScriptServer
from server_live import make_datasets

import bigarrays_core as bc
from bigarrays_core.errors import error_class
from tests.services import FaultPlan, FaultProxy, StaticHTTPServer

TOKEN = "round-trip-token"


class Site:
    """The server, its client, the proxy in front of the HTTP dataset, and the data root."""

    def __init__(self, server: ScriptServer, proxy: FaultProxy, root: str, urls: dict[str, str]) -> None:
        self.server = server
        self.proxy = proxy
        self.root = root
        self.urls = urls
        self.client = bc.Client(server.url, token=TOKEN, retries=0)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, http_server: StaticHTTPServer) -> Iterator[Site]:
    root = str(tmp_path_factory.mktemp("round-trip"))
    urls, _ = make_datasets(os.path.join(root, "data"), np.random.default_rng(3))
    served = {name: urls[name] for name in ("em", "holes", "zst")}
    # "broken": a copy of zst with one chunk of junk and one stored only as a .bz2 file that is
    # no bzip2 stream (CloudVolume's suffix, decompressed on read).
    broken = os.path.join(root, "data", "broken")
    shutil.copytree(os.path.join(root, "data", "zst"), broken)
    ba = bc.open(broken)
    junk, foreign = (os.path.join(broken, ref.key) for ref in ba.chunks()[:2])
    (stored,) = (junk + s for s in ("", ".zstd") if os.path.exists(junk + s))
    with open(stored, "wb") as f:
        f.write(b"these bytes are no zstd frame")
    for suffix in ("", ".zstd"):
        if os.path.exists(foreign + suffix):
            os.remove(foreign + suffix)
    with open(foreign + ".bz2", "wb") as f:
        f.write(b"BZh9 and then nonsense")
    served["broken"] = f"file://{broken}"
    # "web": the em dataset on the static HTTP server, reached through a fault proxy.
    shutil.copytree(os.path.join(root, "data", "em"), os.path.join(http_server.root, "round-trip-em"))
    proxy = FaultProxy(http_server.endpoint).start()
    served["web"] = f"impatient+http://127.0.0.1:{proxy.port}/round-trip-em"
    server = ScriptServer(served, os.path.join(root, "server.log"), write_token=TOKEN, max_cutout_mb=1, cache_mb=0)
    site = Site(server, proxy, root, served)
    try:
        yield site
    finally:
        site.client.close()
        server.stop()
        proxy.stop()
    assert "Traceback" not in server.log(), server.log()  # every error was an answer, none a crash


def _raised(call: object) -> BaseException:
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:  # noqa: BLE001 - returned for inspection
        return exc
    raise AssertionError("no error was raised")


def _check(site: Site, exc: BaseException, cls: type[bc.BigArraysError], status: int, *words: str) -> None:
    assert type(exc) is cls, f"{type(exc).__name__} instead of {cls.__name__}: {exc}"
    assert exc.status == status  # type: ignore[attr-defined]
    assert f"{status} {cls.code}:" in str(exc)
    for w in words:
        assert w in str(exc), (w, str(exc))
    # The server names datasets, never where it keeps them.
    text = str(exc)
    assert site.root not in text and "file://" not in text and f"127.0.0.1:{site.proxy.port}" not in text


def test_every_code_names_its_own_class() -> None:
    """The lookup the client uses is a bijection over the error tree."""
    seen: dict[str, type[bc.BigArraysError]] = {}
    todo: list[type[bc.BigArraysError]] = [bc.BigArraysError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__ != "bigarrays_core.errors":
            continue
        assert "code" in cls.__dict__, f"{cls.__name__} has no code of its own"
        assert cls.code not in seen, f"{cls.__name__} and {seen[cls.code].__name__} share {cls.code!r}"
        seen[cls.code] = cls
        assert error_class(cls.code) is cls
    assert {c.__name__ for c in seen.values()} == {n for n in bc.errors.__all__ if n.endswith("Error")}
    assert error_class("no_such_code") is None

    class Mine(bc.StorageError):  # a store's own error keeps its parent's code ...
        pass

    class Yours(bc.StorageError):  # ... or brings its own
        code = "yours_failed"

    assert error_class(bc.StorageError.code) is bc.StorageError and error_class("yours_failed") is Yours


def test_statuses_cover_the_tree() -> None:
    from bigarrays_server.errors import STATUS_OF

    for name in bc.errors.__all__:
        cls = getattr(bc.errors, name)
        if isinstance(cls, type) and issubclass(cls, bc.BigArraysError):
            assert cls in STATUS_OF, f"{name} has no deliberate HTTP status"


def test_selection_and_too_large(site: Site) -> None:
    c = site.client
    exc = _raised(lambda: c.request("GET", "/v1/em/cutout/0/0:1,0:1"))
    _check(site, exc, bc.SelectionError, 400, "bad bbox")
    exc = _raised(lambda: c.request("GET", "/v1/em/cutout/0/-64:86,10:110,5:75"))
    _check(site, exc, bc.TooLargeError, 413, "over this server's limit")
    assert exc.detail["split"]  # type: ignore[attr-defined]
    assert isinstance(exc, bc.SelectionError)  # as 413s were before TooLargeError existed


def test_out_of_bounds_write(site: Site) -> None:
    em = site.client["em"]
    exc = _raised(lambda: em.__setitem__((slice(1000, 1064), slice(10, 74), slice(5, 37)), 1))
    _check(site, exc, bc.OutOfBoundsError, 400, "[1000:1064,10:74,5:37]", "wholly outside", "dataset 'em'")


def test_invalid_key_and_missing_chunk(site: Site) -> None:
    c = site.client
    _check(site, _raised(lambda: c.request("GET", "/v1/holes/chunks/0/not-a-chunk")), bc.InvalidKeyError, 400,
           "not-a-chunk")
    exc = _raised(lambda: c.request("GET", "/v1/holes/chunks/0/64-128_64-128_32-64"))
    _check(site, exc, bc.ChunkNotFoundError, 404, "holes/")
    assert exc.key == "8_8_40/64-128_64-128_32-64"  # type: ignore[attr-defined]


def test_write_data_and_not_found(site: Site) -> None:
    c = site.client
    exc = _raised(lambda: c.request("PUT", "/v1/em/cutout/0/-64:0,10:74,5:37", content=b"xyz",
                                    headers={"Authorization": f"Bearer {TOKEN}"}))
    _check(site, exc, bc.WriteDataError, 400, "3 bytes")
    _check(site, _raised(lambda: c["nope"]), bc.DatasetNotFoundError, 404, "nope")
    _check(site, _raised(lambda: c.request("GET", "/v1/em/cutout/7/0:1,0:1,0:1")), bc.DatasetNotFoundError, 404,
           "mip 7")


def test_alignment_gives_a_rest_callers_advice(site: Site) -> None:
    em = site.client["em"]
    exc = _raised(lambda: em.__setitem__((slice(0, 10), slice(10, 20), slice(5, 15)), 3))
    _check(site, exc, bc.AlignmentError, 409, "dataset 'em'", "GET the chunk-aligned box", "PUT that whole box")
    assert "non_aligned_writes" not in str(exc)
    assert exc.nearest == bc.Box((0, 10, 5), (64, 74, 37))  # type: ignore[attr-defined]
    assert exc.box == bc.Box((0, 10, 5), (10, 20, 15))  # type: ignore[attr-defined]
    assert "not aligned to the chunk grid" in exc.reason  # type: ignore[attr-defined]
    rgb_like = site.client["zst"]
    exc = _raised(lambda: rgb_like.__setitem__((slice(0, 10), slice(0, 64), slice(0, 32)), 1))
    _check(site, exc, bc.AlignmentError, 409, "0:64,0:64,0:32,0:1")


def test_read_only_store(site: Site) -> None:
    web = site.client["web"]
    exc = _raised(lambda: web.__setitem__((slice(-64, 0), slice(10, 74), slice(5, 37)), 1))
    _check(site, exc, bc.ReadOnlyError, 403, "read-only", "dataset 'web'")


def test_broken_chunks(site: Site) -> None:
    c = site.client
    exc = _raised(lambda: c["broken"][0:64, 0:64, 0:32])
    _check(site, exc, bc.ChunkDecodeError, 502, "broken/8_8_40/0-64_0-64_0-32")
    assert exc.key == "8_8_40/0-64_0-64_0-32"  # type: ignore[attr-defined]
    exc = _raised(lambda: c["broken"][64:128, 0:64, 0:32])
    # A junk .bz2 file: CloudVolume's suffix records bz2, and the bytes do not decompress.
    _check(site, exc, bc.ChunkDecodeError, 502, "broken/8_8_40/64-128_0-64_0-32", "content encoding bz2")


def test_storage_refusal_and_timeout(site: Site) -> None:
    web = site.client["web"]
    try:
        site.proxy.set_plan(FaultPlan(mode="status", status=403, first=10**9))
        _check(site, _raised(lambda: web[-64:0, 10:74, 5:37]), bc.StoragePermissionError, 502,
               "web/8_8_40/-64-0_10-74_5-37", "403")
        site.proxy.set_plan(FaultPlan(mode="slow", delay=4.0, first=10**9))
        _check(site, _raised(lambda: web[0:64, 10:74, 5:37]), bc.StorageTimeoutError, 504)
    finally:
        site.proxy.set_plan(FaultPlan())
    np.testing.assert_array_equal(web[-64:0, 10:74, 5:37], bc.open(site.urls["em"])[-64:0, 10:74, 5:37])


def test_http_level_answers_map_by_status(site: Site) -> None:
    anonymous = bc.Client(site.server.url, retries=0)
    try:
        exc = _raised(lambda: anonymous["em"].__setitem__((slice(-64, 0), slice(10, 74), slice(5, 37)), 1))
        assert type(exc) is bc.StoragePermissionError and exc.status == 401  # type: ignore[attr-defined]
        exc = _raised(lambda: anonymous.request("GET", "/v1/em/cutout/0/0:1,0:1,0:1", params={"format": "tiff"}))
        assert type(exc) is bc.SelectionError and exc.status == 406  # type: ignore[attr-defined]
    finally:
        anonymous.close()
    plain = httpx.get(f"{site.server.url}/v1/em/cutout/0/0:1,0:1,0:1", params={"format": "tiff"})
    assert plain.json()["error"] == "unsupported_format"
