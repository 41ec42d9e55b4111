"""Byte ranges: one request per run of nearby ranges, runs concurrent, and never wrong bytes.

The conformance suite checks what ``get_ranges`` returns on every store kind. These tests check
how: requests counted on the wire (a pass-through proxy in front of moto and fake-gcs-server, and
a static server that records ``Range`` headers), servers that answer ranges wrongly (the store
must refuse, never return other bytes), and a local file far larger than memory.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bigarrays_core.errors import StorageError
from bigarrays_core.kvstore import LocalStore, open_store
from bigarrays_core.kvstore.base import ByteRange
from bigarrays_core.kvstore.fsspec_store import FsspecStore
from bigarrays_core.kvstore.ranges import COALESCE_GAP, plan_runs
from tests.cloud.recording_proxy import RecordingProxy
from tests.services import FaultPlan, Service

from .cases import IGNORE_LARGE_BODY_WARNING, gcsfs_client
from .range_http import RangeHTTPServer

pytestmark = pytest.mark.filterwarnings(IGNORE_LARGE_BODY_WARNING)

VALUE = os.urandom(300_000)
#: Three runs of ``a`` (the first of three ranges within 4 KiB of each other), one of ``b``.
RANGES = [ByteRange("a", 0, 100), ByteRange("a", 2000, 2100), ByteRange("a", 2050, 6000),
          ByteRange("a", 100_000, 100_010), ByteRange("a", 250_000, None), ByteRange("b", 10, 20)]
EXPECTED_RUNS = [("a", 0, 6000), ("a", 100_000, 100_010), ("a", 250_000, None), ("b", 10, 20)]


def _expected(values: dict[str, bytes]) -> list[bytes]:
    return [values[r.key][r.start:r.stop] for r in RANGES]


def test_plan_runs_merges_nearby_ranges_per_key() -> None:
    assert [(r.key, r.start, r.stop) for r in plan_runs(RANGES)] == EXPECTED_RUNS
    # Members keep the caller's indexes; a gap of exactly COALESCE_GAP still merges, one more does not.
    gap = COALESCE_GAP
    runs = plan_runs([ByteRange("k", 10, 20), ByteRange("k", 0, 5), ByteRange("k", 20 + gap, 30 + gap),
                      ByteRange("k", 31 + 2 * gap, 40 + 2 * gap)])
    assert [(r.start, r.stop, r.members) for r in runs] == [
        (0, 30 + gap, (1, 0, 2)), (31 + 2 * gap, 40 + 2 * gap, (3,))]
    assert [r.request_stop for r in plan_runs([ByteRange("k", 7, 7)])] == [8]  # never an empty request


@pytest.fixture
def recorded_s3(s3_server: Service, store_url: Callable[[str], str]) -> Iterator[tuple[str, RecordingProxy]]:
    url = store_url("s3")
    open_store(url).set_many({"a": VALUE, "b": VALUE[:50]})
    with RecordingProxy(s3_server.endpoint).start() as proxy:
        yield url, proxy


@pytest.mark.cloud
@pytest.mark.parametrize("obstore_reads", [True, False], ids=["obstore", "fsspec"])
def test_s3_one_get_per_run(recorded_s3: tuple[str, RecordingProxy], obstore_reads: bool) -> None:
    url, proxy = recorded_s3
    store = FsspecStore(url, storage_options={"endpoint_url": proxy.endpoint}, obstore_reads=obstore_reads)
    proxy.take()
    got = store.get_ranges(RANGES)
    assert [bytes(g) for g in got if g is not None] == _expected({"a": VALUE, "b": VALUE[:50]})
    assert sorted(r.method for r in proxy.take()) == ["GET"] * len(EXPECTED_RUNS)


@pytest.mark.cloud
@pytest.mark.parametrize("obstore_reads", [True, False], ids=["obstore", "fsspec"])
def test_runs_are_requested_concurrently(recorded_s3: tuple[str, RecordingProxy], obstore_reads: bool) -> None:
    url, proxy = recorded_s3
    store = FsspecStore(url, storage_options={"endpoint_url": proxy.endpoint}, obstore_reads=obstore_reads,
                        max_concurrency=3)
    ranges = [ByteRange("a", i * 20_000, i * 20_000 + 10) for i in range(8)]
    proxy.set_plan(FaultPlan(delay_all=0.3))
    got = store.get_ranges(ranges)
    assert [bytes(g) for g in got if g is not None] == [VALUE[r.start:r.stop] for r in ranges]
    assert proxy.requests == 8
    assert 2 <= proxy.max_in_flight <= 3


@pytest.mark.cloud
def test_gcs_one_get_per_run_through_gcsfs(gcs_server: Service, store_url: Callable[[str], str]) -> None:
    url = store_url("gcs")
    open_store(url).set_many({"a": VALUE, "b": VALUE[:50]})
    with RecordingProxy(gcs_server.endpoint).start() as proxy:
        store = FsspecStore(url, storage_options={"endpoint_url": proxy.endpoint, "token": "anon"},
                            obstore_reads=False)
        got = store.get_ranges(RANGES)
        assert [bytes(g) for g in got if g is not None] == _expected({"a": VALUE, "b": VALUE[:50]})
        assert [r.method for r in proxy.take()] == ["GET"] * len(EXPECTED_RUNS)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[[str], tuple[RangeHTTPServer, FsspecStore]]]:
    """``served(mode)``: a :class:`RangeHTTPServer` in ``mode`` over ``a`` and ``b``, and a store on it."""
    (tmp_path / "a").write_bytes(VALUE)
    (tmp_path / "b").write_bytes(VALUE[:50])
    started: list[RangeHTTPServer] = []

    def make(mode: str) -> tuple[RangeHTTPServer, FsspecStore]:
        server = RangeHTTPServer(str(tmp_path), mode).start()
        started.append(server)
        return server, FsspecStore(server.endpoint, retries=0)

    yield make
    for server in started:
        server.stop()


def test_http_one_request_per_run_with_the_range_header(served: Callable[[str], tuple[RangeHTTPServer, FsspecStore]],
                                                        ) -> None:
    server, store = served("honour")
    got = store.get_ranges(RANGES)
    assert [bytes(g) for g in got if g is not None] == _expected({"a": VALUE, "b": VALUE[:50]})
    assert sorted(server.ranges) == sorted(["bytes=0-5999", "bytes=100000-100009", "bytes=250000-", "bytes=10-19"])


@pytest.mark.parametrize(("mode", "message"),
                         [("wrong-start", "answered bytes 1-"), ("gzip", "Content-Encoding: gzip")])
def test_http_answers_that_do_not_fit_the_range_are_refused(
    served: Callable[[str], tuple[RangeHTTPServer, FsspecStore]], mode: str, message: str
) -> None:
    server, store = served(mode)
    with pytest.raises(StorageError) as info:
        store.get_ranges([ByteRange("a", 0, 100)])
    assert message in str(info.value)
    assert f"{server.endpoint}/a" in str(info.value)
    assert server.requests == 1  # not retried: asking again gets the same answer


def test_http_a_server_that_ignores_range_is_sliced(http_server: object, tmp_path: Path) -> None:
    """Python's http.server answers every Range request with a 200 and the whole file."""
    from tests.services import StaticHTTPServer

    assert isinstance(http_server, StaticHTTPServer)
    name = tmp_path.name
    os.makedirs(os.path.join(http_server.root, name))
    LocalStore(os.path.join(http_server.root, name)).set_many({"a": VALUE, "b": VALUE[:50]})
    store = open_store(f"{http_server.endpoint}/{name}")
    got = store.get_ranges(RANGES)
    assert [bytes(g) for g in got if g is not None] == _expected({"a": VALUE, "b": VALUE[:50]})


@pytest.mark.cloud
def test_http_ranges_of_a_transcoding_server_are_of_what_get_returns(
    gcs_server: Service, store_url: Callable[[str], str]
) -> None:
    """fake-gcs-server, like GCS, decompresses a gzip object for a client that does not accept
    gzip and then ignores Range. Over HTTP a range is of the resource's identity representation,
    the same bytes ``get`` returns: asked for with ``Accept-Encoding: identity``, the whole
    decoded body comes back (200) and is sliced."""
    root = store_url("gcs")[len("gs://"):]
    payload = os.urandom(30_000) + bytes(30_000)
    gcsfs_client().pipe_file(f"{root}/k", gzip.compress(payload), fixed_key_metadata={"content_encoding": "gzip"})
    store = open_store(f"{gcs_server.endpoint}/{root}")
    assert store.get("k") == payload
    got = store.get_ranges([ByteRange("k", 0, 10), ByteRange("k", 40_000, 40_100)])
    assert [bytes(g) for g in got if g is not None] == [payload[0:10], payload[40_000:40_100]]


def test_local_ranges_of_a_file_larger_than_memory(tmp_path: Path) -> None:
    """pread: a 1 TiB sparse file is never read whole."""
    path = tmp_path / "huge"
    with open(path, "wb") as f:
        f.truncate(1 << 40)
        f.seek((1 << 39) - 3)
        f.write(b"abcdef")
    store = LocalStore(str(tmp_path))
    got = store.get_ranges([ByteRange("huge", (1 << 39) - 3, (1 << 39) + 3), ByteRange("huge", (1 << 40) - 2, None),
                            ByteRange("huge", 1 << 41, (1 << 41) + 5)])
    assert [bytes(g) for g in got if g is not None] == [b"abcdef", b"\x00\x00", b""]
