"""A caller's storage deadline bounds object-store calls, retries included
(``bigarrays_core.kvstore.deadline``): with a store that hangs, every kind of call (reads whole
and ranged, stats, existence checks, writes) gives up at the deadline with
``StorageTimeoutError`` naming the key, instead of after its own timeout and retries, on both
read paths (obstore's blocked requests are no longer waited for; fsspec's are cut).
Timing assertions are generous upper bounds (3x the deadline). The policy's own rules (no
attempt and no backoff sleep past the deadline) are checked in ``test_retry.py``."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from bigarrays_core.errors import StorageTimeoutError
from bigarrays_core.kvstore import ByteRange, LocalStore, deadline
from bigarrays_core.kvstore.fsspec_store import FsspecStore
from tests.services import FaultPlan, FaultProxy, Service, StaticHTTPServer, new_bucket_url

from .cases import IGNORE_LARGE_BODY_WARNING

pytestmark = [pytest.mark.cloud, pytest.mark.filterwarnings(IGNORE_LARGE_BODY_WARNING)]

HANG = FaultPlan(mode="slow", fraction=1.0, delay=120)
KEY = "1_1_1/0-1_0-1_0-1"


@pytest.fixture(scope="module")
def proxies(http_server: StaticHTTPServer) -> Iterator[dict[str, FaultProxy]]:
    """A fault proxy in front of the static server and one (started on first use) in front of
    moto, shared by the module's tests (answers a test left hanging are dropped at the end)."""
    started: dict[str, FaultProxy] = {"http": FaultProxy(http_server.endpoint).start()}
    try:
        yield started
    finally:
        for proxy in started.values():
            proxy.stop()


@pytest.fixture
def hanging(request: pytest.FixtureRequest, http_server: StaticHTTPServer,
            proxies: dict[str, FaultProxy]) -> Iterator[tuple[FsspecStore, FaultProxy]]:
    """A store (patient: 30 s per attempt, 5 retries) behind a proxy that will hang."""
    kind = request.param
    if kind == "http":
        name = f"deadline-{uuid.uuid4().hex[:8]}"
        LocalStore(os.path.join(http_server.root, name)).set(KEY, b"v")
        proxy = proxies["http"]
        store = FsspecStore(f"{proxy.endpoint}/{name}", timeout=30, retries=5)
    else:
        s3: Service = request.getfixturevalue("s3_server")
        if "s3" not in proxies:
            proxies["s3"] = FaultProxy(s3.endpoint).start()
        proxy = proxies["s3"]
        url = new_bucket_url("s3", s3.endpoint, "prefix")
        FsspecStore(url).set(KEY, b"v")
        store = FsspecStore(url, storage_options={"endpoint_url": proxy.endpoint}, timeout=30, retries=5,
                            obstore_reads=kind == "s3")
    proxy.set_plan(HANG)
    try:
        yield store, proxy
    finally:
        proxy.set_plan(FaultPlan())
        store.close()


CALLS: dict[str, Callable[[FsspecStore], object]] = {
    "get": lambda s: s.get_many([KEY]),
    "iter": lambda s: list(s.iter_values([KEY])),
    "ranges": lambda s: s.get_ranges([ByteRange(KEY, 0, 1)]),
    "stat": lambda s: s.stat_many([KEY]),
    "exists": lambda s: s.exists_many([KEY]),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("hanging", ["http", "s3", "s3-fsspec"], indirect=True)
def test_a_hanging_store_gives_up_at_the_deadline(hanging: tuple[FsspecStore, FaultProxy], call: str) -> None:
    store, _ = hanging
    start = time.monotonic()
    with deadline.within(1.5), pytest.raises(StorageTimeoutError) as raised:
        CALLS[call](store)
    assert time.monotonic() - start < 4.5
    assert f"{store.url}/{KEY}: the caller's deadline for storage passed" in str(raised.value)


@pytest.mark.parametrize("hanging", ["s3"], indirect=True)
def test_a_write_to_a_hanging_store_gives_up_at_the_deadline(hanging: tuple[FsspecStore, FaultProxy]) -> None:
    store, _ = hanging
    start = time.monotonic()
    with deadline.within(1.5), pytest.raises(StorageTimeoutError, match="passed after 1 attempt"):
        store.set(KEY, b"w")
    assert time.monotonic() - start < 4.5


@pytest.mark.parametrize("hanging", ["http"], indirect=True)
def test_without_a_deadline_the_store_keeps_its_own_budget(hanging: tuple[FsspecStore, FaultProxy]) -> None:
    store, proxy = hanging
    proxy.set_plan(FaultPlan(mode="slow", first=1, delay=2.0))  # one slow answer, then fine
    assert store.get_many(["1_1_1/0-1_0-1_0-1"]) == [b"v"]  # waited the slow attempt out: no deadline


def test_a_nested_deadline_never_extends_the_outer_one() -> None:
    with deadline.within(1.0) as outer:
        with deadline.within(100.0) as inner:
            assert inner == outer
        with deadline.within(0.1) as shorter:
            assert shorter < outer
        assert deadline.current() == outer
    assert deadline.current() is None
    with deadline.within(0):
        with pytest.raises(StorageTimeoutError, match="deadline"):
            deadline.check("read x")
