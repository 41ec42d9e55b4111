"""A caller's storage deadline bounds object-store calls, retries included
(``bigarrays_core.kvstore.deadline``): with a store that hangs, every kind of call gives up at
the deadline with ``StorageTimeoutError`` instead of after its own timeout and retries.
Timing assertions are generous upper bounds (3x the deadline)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from bigarrays_core.errors import StorageTimeoutError
from bigarrays_core.kvstore import LocalStore, deadline
from bigarrays_core.kvstore.fsspec_store import FsspecStore
from tests.services import FaultPlan, FaultProxy, Service, StaticHTTPServer, new_bucket_url

from .cases import IGNORE_LARGE_BODY_WARNING

pytestmark = [pytest.mark.cloud, pytest.mark.filterwarnings(IGNORE_LARGE_BODY_WARNING)]

HANG = FaultPlan(mode="slow", fraction=1.0, delay=120)


@pytest.fixture
def hanging(request: pytest.FixtureRequest, http_server: StaticHTTPServer) -> Iterator[tuple[FsspecStore, FaultProxy]]:
    """A store (patient: 30 s per attempt, 5 retries) behind a proxy that will hang."""
    kind = request.param
    if kind == "http":
        name = f"deadline-{uuid.uuid4().hex[:8]}"
        LocalStore(os.path.join(http_server.root, name)).set("1_1_1/0-1_0-1_0-1", b"v")
        proxy = FaultProxy(http_server.endpoint).start()
        store = FsspecStore(f"{proxy.endpoint}/{name}", timeout=30, retries=5)
    else:
        s3: Service = request.getfixturevalue("s3_server")
        url = new_bucket_url("s3", s3.endpoint, "prefix")
        FsspecStore(url).set("1_1_1/0-1_0-1_0-1", b"v")
        proxy = FaultProxy(s3.endpoint).start()
        store = FsspecStore(url, storage_options={"endpoint_url": proxy.endpoint}, timeout=30, retries=5,
                            obstore_reads=kind == "s3")
    proxy.set_plan(HANG)
    try:
        yield store, proxy
    finally:
        proxy.set_plan(FaultPlan())
        proxy.stop()


CALLS: dict[str, Callable[[FsspecStore], object]] = {
    "get": lambda s: s.get_many(["1_1_1/0-1_0-1_0-1"]),
    "iter": lambda s: list(s.iter_values(["1_1_1/0-1_0-1_0-1"])),
    "stat": lambda s: s.stat_many(["1_1_1/0-1_0-1_0-1"]),
    "exists": lambda s: s.exists_many(["1_1_1/0-1_0-1_0-1"]),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("hanging", ["http", "s3", "s3-fsspec"], indirect=True)
def test_a_hanging_store_gives_up_at_the_deadline(hanging: tuple[FsspecStore, FaultProxy], call: str) -> None:
    store, _ = hanging
    start = time.monotonic()
    with deadline.within(1.5), pytest.raises(StorageTimeoutError):
        CALLS[call](store)
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
