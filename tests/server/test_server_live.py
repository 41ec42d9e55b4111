"""A real ``bigarrays serve --workers 2`` process driven over HTTP, and the Python client."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from conftest import TOKEN
from server_live import LiveServer, make_datasets

import bigarrays_core as bc
from bigarrays_core.array.indexing import parse_selection
from bigarrays_core.client import _BodyReader, _Wire

Live = tuple[LiveServer, dict[str, str], dict[str, np.ndarray]]

#: The live server's revalidation interval: reads made longer than this after a write (through
#: either worker, or beside the server) see it.
REVALIDATE = 0.3
IDENTITY = {"Accept-Encoding": "identity"}


def after_the_interval() -> None:
    time.sleep(REVALIDATE + 0.1)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("live")
    urls, arrays = make_datasets(str(root / "data"), np.random.default_rng(99))
    server = LiveServer(urls, str(root / "server.log"), workers=2,
                        args=["--write-token", TOKEN, "--max-cutout-mb", "1", "--cache-mb", "32",
                              "--cache-revalidate", str(REVALIDATE)])
    yield server, urls, arrays
    server.stop()


def test_raw_and_npy_cutouts_equal_the_library(live: Live) -> None:
    server, urls, _ = live
    ba = bc.open(urls["em"])
    for bbox in ("-70:20,0:60,0:40", "-64--10_10-30_5-15", "60:90,100:120,70:80"):
        box = bc.Box.parse(bbox)
        r = httpx.get(f"{server.url}/v1/em/cutout/0/{bbox}", headers=IDENTITY)
        assert r.status_code == 200, r.text
        got = np.frombuffer(r.content, np.uint16).reshape(tuple(map(int, r.headers["x-shape"].split(","))), order="F")
        np.testing.assert_array_equal(got, ba.read(box))
        n = httpx.get(f"{server.url}/v1/em/cutout/0/{bbox}", params={"format": "npy"})
        np.testing.assert_array_equal(np.load(io.BytesIO(n.content)), ba.read(box))
        h = httpx.head(f"{server.url}/v1/em/cutout/0/{bbox}", headers=IDENTITY)
        assert h.status_code == 200 and h.content == b"" and h.headers["content-length"] == str(len(r.content))
        assert h.headers["etag"] == r.headers["etag"]


def test_put_with_and_without_token(live: Live) -> None:
    server, urls, arrays = live
    data = np.full((32, 32, 16), 77, dtype=np.uint16)
    url = f"{server.url}/v1/bl/cutout/0/32:64,32:64,16:32"
    assert httpx.put(url, content=data.tobytes(order="F")).status_code == 401
    assert httpx.put(url, content=data.tobytes(order="F"), headers={"Authorization": "Bearer no"}).status_code == 403
    np.testing.assert_array_equal(bc.open(urls["bl"])[32:64, 32:64, 16:32, 0], arrays["bl"][32:64, 32:64, 16:32, 0])
    r = httpx.put(url, content=data.tobytes(order="F"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(bc.open(urls["bl"])[32:64, 32:64, 16:32, 0], data)


def test_concurrent_clients_get_the_right_regions(live: Live) -> None:
    server, urls, arrays = live
    rng = np.random.default_rng(5)
    boxes = []
    for _ in range(24):
        start = rng.integers(0, [100, 60, 40])
        boxes.append(bc.Box(tuple(int(v) for v in start), tuple(int(v) for v in start + rng.integers(1, 30, 3))))

    def fetch(box: bc.Box) -> np.ndarray:
        with httpx.Client(base_url=server.url) as c:
            r = c.get(f"/v1/zst/cutout/0/{box.to_colon()}")
            assert r.status_code == 200, r.text
            return np.frombuffer(r.content, np.uint8).reshape(box.shape + (1,), order="F")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, boxes))
    ba = bc.open(urls["zst"])
    for box, got in zip(boxes, results, strict=False):
        np.testing.assert_array_equal(got, ba.read(box))


def test_client_indexes_like_a_bigarray(live: Live) -> None:
    server, urls, _ = live
    with bc.Client(server.url, piece_bytes=64 * 1024) as client:
        assert {d["name"] for d in client.datasets()} == set(urls)
        for name in ("em", "rgb", "seg", "holes"):
            remote, local = client[name], bc.open(urls[name])
            assert (remote.shape, remote.dtype, remote.voxel_offset, remote.chunk_size) == \
                (local.shape, local.dtype, local.voxel_offset, local.chunk_size)
            assert remote.info == local.info
            x0, y0, z0 = local.voxel_offset
            for key in (np.s_[:, :, :], np.s_[x0 - 3:x0 + 70, y0 + 1, z0:z0 + 33], np.s_[..., 0],
                        np.s_[x0 + 5, y0 + 7, z0 + 2], np.s_[x0 - 100:x0 - 90, :, 3]):
                want, got = local[key], remote[key]
                assert got.shape == want.shape and got.dtype == want.dtype, (name, key)
                np.testing.assert_array_equal(got, want)
        assert client["em"].at_mip(1).shape == bc.open(urls["em"]).at_mip(1).shape
        with pytest.raises(bc.DatasetNotFoundError, match="nope"):
            client["nope"]


def test_client_follows_a_413_split(live: Live) -> None:
    server, urls, _ = live  # the server's limit is 1 MiB; ask for pieces far larger
    with bc.Client(server.url, piece_bytes=2**30) as client:
        got = client["em"][-64:86, 10:110, 5:75]
    assert got.nbytes > 2**20
    np.testing.assert_array_equal(got, bc.open(urls["em"])[-64:86, 10:110, 5:75])


def test_client_writes_with_the_token_and_maps_errors(live: Live) -> None:
    server, urls, _ = live
    new = np.arange(64 * 64 * 32, dtype=np.uint32).reshape((64, 64, 32), order="F") % 7
    with bc.Client(server.url) as anonymous:
        with pytest.raises(bc.StoragePermissionError, match="401"):
            anonymous["holes"][64:128, 0:64, 0:32] = new.astype(np.uint8)
    with bc.Client(server.url, token=TOKEN) as client:
        client["holes"][64:128, 0:64, 0:32] = new.astype(np.uint8)
        np.testing.assert_array_equal(bc.open(urls["holes"])[64:128, 0:64, 0:32, 0], new)
        with pytest.raises(bc.AlignmentError) as info:
            client["holes"][60:128, 0:64, 0:32] = 1
        assert info.value.nearest == bc.Box((0, 0, 0), (128, 64, 32))
        with pytest.raises(bc.WriteDataError):
            client["holes"][0:64, 0:64, 0:32] = np.zeros((64, 64, 31), np.uint8)


def test_open_over_http_reads_the_precomputed_tree(live: Live) -> None:
    server, urls, _ = live
    after_the_interval()  # other tests wrote through one worker
    for name in ("zst", "gz", "holes", "em"):
        remote = bc.open(f"{server.url}/precomputed/{name}", read_only=True)
        local = bc.open(urls[name])
        # The served info describes the chunks as served: never byte-compressed (a content
        # coding on the wire instead), so without the scales' "compression".
        stored = local.info
        for scale in stored["scales"]:
            scale.pop("compression", None)
        assert remote.info == stored
        np.testing.assert_array_equal(remote[:, :, :], local[:, :, :])


def test_streaming_a_cutout_of_gigabytes_keeps_server_memory_bounded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import psutil

    # 4096 x 4096 x 256 uint8 = 4 GiB declared, one chunk written: the rest reads as zeros.
    url = f"file://{tmp_path / 'sparse'}"
    ba = bc.create(url, dtype="uint8", size=(4096, 4096, 256), chunk_size=(256, 256, 64))
    ba[256:512, 256:512, 64:128] = 9
    server = LiveServer({"sparse": url}, str(tmp_path / "server.log"),
                        args=["--max-cutout-mb", "8192", "--cache-mb", "64"])
    try:
        peak = 0
        total = 0
        nines = 0
        procs = [psutil.Process(p) for p in server.pids()]
        with httpx.stream("GET", f"{server.url}/v1/sparse/cutout/0/0:4096,0:4096,0:256", timeout=120,
                          headers=IDENTITY) as r:
            assert r.status_code == 200
            assert int(r.headers["content-length"]) == 4096 * 4096 * 256
            for i, part in enumerate(r.iter_raw(2**22)):
                total += len(part)
                if i % 8 == 0:
                    nines += part.count(9)
                    peak = max(peak, sum(p.memory_info().rss for p in procs))
        assert total == 4096 * 4096 * 256
        assert nines > 0  # the one written chunk came through
        assert peak < 600 * 2**20, f"server RSS reached {peak / 2**20:.0f} MiB"
    finally:
        server.stop()


def test_client_reads_whole_z_pieces_straight_into_the_output(live: Live) -> None:
    server, urls, _ = live
    # (dataset, selection, piece bytes): z-pieces of one channel, of three channels (received,
    # then pasted), and a chunk-row larger than a piece (tiles). Only datasets that no other test
    # here writes, so the expected values are the ones made at the start.
    for name, key, piece_bytes in (("gz", np.s_[:, :, :], 600_000), ("zst", np.s_[3:128, 0:96, 1:64], 600_000),
                                   ("rgb", np.s_[:, :, :], 150_000), ("em", np.s_[-64:86, 10:110, 5:75], 600_000)):
        with bc.Client(server.url, piece_bytes=piece_bytes) as client:
            remote, local = client[name], bc.open(urls[name])
            sel = parse_selection(key, local.bounds, local.num_channels)
            pieces = list(remote._pieces(sel.box, sel.channels))
            whole_planes = all(p.start[:2] == sel.box.start[:2] and p.stop[:2] == sel.box.stop[:2] for p in pieces)
            assert len(pieces) >= 2 and whole_planes == (name != "em"), (name, pieces)
            np.testing.assert_array_equal(remote[key], local[key])


def test_body_reader_reads_only_a_whole_200(live: Live) -> None:
    server, urls, arrays = live
    reader = _BodyReader(server.url, 10.0)
    try:
        want = arrays["zst"][0:64, 0:64, 0:32]
        buf = bytearray(want.nbytes)
        assert reader.get_into("/v1/zst/cutout/0/0:64,0:64,0:32?format=raw", memoryview(buf))
        assert bytes(buf) == want.tobytes(order="F")
        for _ in range(3):  # the kept-alive connection is reused
            assert reader.get_into("/v1/zst/cutout/0/0:64,0:64,0:32?format=raw", memoryview(buf))
        assert not reader.get_into("/v1/zst/cutout/0/0:64,0:64,0:31?format=raw", memoryview(buf))  # shorter
        assert not reader.get_into("/v1/nope/cutout/0/0:64,0:64,0:32?format=raw", memoryview(buf))  # 404
        assert not reader.get_into("/v1/zst/cutout/0/0:2000,0:2000,0:64?format=raw", memoryview(buf))  # 413
        assert reader.get_into("/v1/zst/cutout/0/0:64,0:64,0:32?format=raw", memoryview(buf))
    finally:
        reader.close()


def test_cutouts_name_their_worker_and_a_read_spreads_its_pieces_over_the_workers(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    server, urls, arrays = live
    names = []
    for _ in range(12):  # new connections: each goes to the worker the kernel picks
        with httpx.Client(base_url=server.url) as h:
            first, again = (h.get("/v1/zst/cutout/0/0:8,0:8,0:8").headers["x-bigarrays-worker"] for _ in range(2))
        assert first == again and len(first) == 12  # one connection, one worker
        names.append(first)
    assert len(set(names)) == 2, names
    # A client whose idle connections all reach one worker: a read of two pieces opens another
    # connection for its second piece; once it has learnt which worker each connection
    # reaches, the two pieces of every read go to different workers.
    workers_of_reads: list[list[bytes | None]] = []
    get_into = _BodyReader.get_into

    def recording(self: _BodyReader, path: str, into: memoryview, wire: object = None) -> bool:
        ok = get_into(self, path, into, wire)  # type: ignore[arg-type]
        workers_of_reads[-1].append(getattr(wire, "worker", None))
        return ok

    monkeypatch.setattr(_BodyReader, "get_into", recording)
    with bc.Client(server.url, piece_bytes=400_000) as client:
        bodies = client._bodies
        assert bodies is not None
        kept: list[_Wire] = []
        while len(kept) < 2:
            wire = bodies._new_wire()
            assert get_into(bodies, "/v1/zst/cutout/0/0:8,0:8,0:8", memoryview(bytearray(512)), wire)
            if kept and wire.worker != kept[0].worker:
                wire.close()
                bodies._all.remove(wire)
            else:
                kept.append(wire)
        for wire in kept:
            bodies.release(wire)
        remote = client["zst"]
        assert len(remote._pieces(remote.bounds, (0, 1))) == 2
        for _ in range(12):
            workers_of_reads.append([])
            np.testing.assert_array_equal(remote[:, :, :], arrays["zst"])
    assert all(len(w) == 2 and None not in w for w in workers_of_reads), workers_of_reads
    assert all(a != b for a, b in workers_of_reads[-6:]), workers_of_reads


def test_a_read_of_many_pieces_holds_no_more_connections_than_its_threads_and_spares(live: Live) -> None:
    server, urls, _ = live
    with bc.Client(server.url, piece_bytes=64 * 1024, max_workers=2) as client:
        remote = client["em"]
        assert len(remote._pieces(remote.bounds, (0, 1))) > 12
        for _ in range(3):
            np.testing.assert_array_equal(remote[:, :, :], bc.open(urls["em"])[:, :, :])
        assert client._bodies is not None
        assert len(client._bodies._all) <= 2 + _BodyReader.SPARE_CONNECTIONS


def test_body_reader_is_not_used_where_httpx_would_take_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert _BodyReader.for_url("http://127.0.0.1:8000", 5.0) is not None
    assert _BodyReader.for_url("memory://x", 5.0) is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert _BodyReader.for_url("http://data.example:8000", 5.0) is None
    monkeypatch.setenv("NO_PROXY", "data.example")
    assert _BodyReader.for_url("http://data.example:8000", 5.0) is not None


def test_a_write_through_one_worker_is_read_by_every_worker_after_the_interval(live: Live) -> None:
    """Both workers cache a chunk; once the revalidation interval has passed after a PUT
    through either, no worker serves the old voxels (and the worker that took the PUT at once)."""
    server, _, _ = live
    url = f"{server.url}/v1/holes/cutout/0/64:128,64:128,32:64"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def read_fresh_connections(n: int = 24) -> set[bytes]:
        bodies = set()
        for _ in range(n):  # a new connection each time: the kernel spreads them over the workers
            with httpx.Client() as http:
                bodies.add(http.get(url).content)
        return bodies

    assert read_fresh_connections() == {bytes(64 * 64 * 32)}  # missing chunk: zeros, now cached
    for value in (7, 9):
        with httpx.Client() as http:
            put = http.put(url, content=bytes([value]) * (64 * 64 * 32), headers=headers)
            assert put.status_code == 200, put.text
            assert http.get(url).content == bytes([value]) * (64 * 64 * 32)  # same connection, same worker
        after_the_interval()
        assert read_fresh_connections() == {bytes([value]) * (64 * 64 * 32)}


@pytest.mark.parametrize("coding", ["zstd", "gzip"])
def test_client_asks_for_a_content_coding_when_told(live: Live, coding: str) -> None:
    server, urls, _ = live
    after_the_interval()
    for name, key in (("seg", np.s_[:, :, :]), ("rgb", np.s_[3:60, 1:40, 2:19]), ("em", np.s_[-64:86, 10:110, 5:75])):
        with bc.Client(server.url, transport_compression=coding, piece_bytes=100_000) as client:
            np.testing.assert_array_equal(client[name][key], bc.open(urls[name])[key])
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'status="5' not in metrics
    with pytest.raises(ValueError, match="transport_compression"):
        bc.Client(server.url, transport_compression="br")


def test_body_reader_decodes_a_coded_body_and_refuses_a_wrong_size(live: Live) -> None:
    server, _, arrays = live
    want = arrays["zst"][0:64, 0:64, 0:32]
    for coding in ("zstd", "gzip"):
        reader = _BodyReader(server.url, 10.0, coding)
        try:
            buf = bytearray(want.nbytes)
            for _ in range(2):  # and again on the kept-alive connection
                assert reader.get_into("/v1/zst/cutout/0/0:64,0:64,0:32?format=raw", memoryview(buf))
                assert bytes(buf) == want.tobytes(order="F")
            small = bytearray(want.nbytes - 1)
            assert not reader.get_into("/v1/zst/cutout/0/0:64,0:64,0:32?format=raw", memoryview(small))
            big = bytearray(want.nbytes + 1)
            assert not reader.get_into("/v1/zst/cutout/0/0:64,0:64,0:32?format=raw", memoryview(big))
            assert reader.get_into("/v1/zst/cutout/0/0:64,0:64,0:32?format=raw", memoryview(buf))
        finally:
            reader.close()
