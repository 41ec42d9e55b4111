"""Stateless replicas over shared storage: two ``bigarrays serve`` processes (two workers each,
separate caches, no shared files) answer the same data within the revalidation interval,
after writes through one of them and writes beside both; a 304 never hides newer data."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from conftest import TOKEN
from server_live import LiveServer

import bigarrays_core as bc

REVALIDATE = 0.3
SIZE = (128, 128, 64)
CHUNK = (64, 64, 32)
IDENTITY = {"Accept-Encoding": "identity"}

Pair = tuple[LiveServer, LiveServer, str]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp_path = tmp_path_factory.mktemp("replicas")
    url = f"file://{tmp_path / 'shared'}"
    ba = bc.create(url, dtype="uint8", size=SIZE, chunk_size=CHUNK)
    ba[:, :, :] = 1
    args = ["--write-token", TOKEN, "--cache-revalidate", str(REVALIDATE), "--cache-mb", "64"]
    a = LiveServer({"v": url}, str(tmp_path / "a.log"), workers=2, args=args)
    b = LiveServer({"v": url}, str(tmp_path / "b.log"), workers=2, args=args)
    yield a, b, url
    a.stop()
    b.stop()


PATHS = ["/v1/v/cutout/0/0:128,0:128,0:64", "/v1/v/cutout/0/10:70,20:90,5:40?format=npy",
         "/v1/v/chunks/0/0-64_0-64_0-32", "/v1/v/chunks/0/64-128_64-128_32-64",
         "/precomputed/v/1_1_1/0-64_0-64_0-32", "/precomputed/v/1_1_1/64-128_64-128_32-64"]


def expected(url: str) -> dict[str, bytes]:
    """What each path must answer now, from the library (a fresh open: no cache)."""
    ba = bc.open(url)
    out: dict[str, bytes] = {}
    out[PATHS[0]] = ba.read(bc.Box.parse("0:128,0:128,0:64")).tobytes(order="F")
    out[PATHS[2]] = out[PATHS[4]] = ba.read(bc.Box.parse("0:64,0:64,0:32")).tobytes(order="F")
    out[PATHS[3]] = out[PATHS[5]] = ba.read(bc.Box.parse("64:128,64:128,32:64")).tobytes(order="F")
    return out


def read_everywhere(servers: tuple[LiveServer, ...], rounds: int = 3) -> list[tuple[str, httpx.Response]]:
    """Every path through every server, on fresh connections (spread over the workers)."""
    out = []
    for _ in range(rounds):
        for server in servers:
            for path in PATHS:
                with httpx.Client(base_url=server.url, headers=IDENTITY) as http:
                    out.append((path, http.get(path)))
    return out


def stale(answers: list[tuple[str, httpx.Response]], want: dict[str, bytes]) -> list[str]:
    bad = []
    for path, r in answers:
        assert r.status_code == 200, (path, r.text)
        if path in want and r.content != want[path]:
            bad.append(path)
    return bad


def test_replicas_agree_after_writes_through_one_and_beside_both(pair: Pair) -> None:
    a, b, url = pair
    assert stale(read_everywhere((a, b)), expected(url)) == []  # every cache now holds the 1s
    # A write through one replica ...
    with httpx.Client(base_url=a.url) as http:
        r = http.put("/v1/v/cutout/0/0:64,0:64,0:32", content=bytes([2]) * (64 * 64 * 32),
                     headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
    # ... and one beside both (the library, as ingest or a proofreading tool would).
    bc.open(url)[64:128, 64:128, 32:64] = 3
    time.sleep(REVALIDATE + 0.1)
    answers = read_everywhere((a, b))
    assert stale(answers, expected(url)) == [], "a replica served voxels older than the interval"
    npy = [r for p, r in answers if "npy" in p]
    assert len({r.content for r in npy}) == 1  # the same bytes from every worker of both


def test_a_304_never_hides_newer_data_and_tags_agree_across_replicas(pair: Pair) -> None:
    a, b, url = pair
    old = {}
    for path in PATHS:
        tags = {httpx.get(f"{s.url}{path}", headers=IDENTITY).headers["etag"] for s in (a, b) for _ in range(4)}
        assert len(tags) == 1, (path, tags)  # every worker of both replicas: one tag for one version
        old[path] = tags.pop()
    for path, tag in old.items():
        assert httpx.get(f"{b.url}{path}", headers={**IDENTITY, "If-None-Match": tag}).status_code == 304
    bc.open(url)[0:128, 0:128, 0:64] = np.full((128, 128, 64, 1), 9, np.uint8)  # every chunk
    time.sleep(REVALIDATE + 0.1)
    want = expected(url)
    for server in (a, b):
        for _ in range(4):
            for path, tag in old.items():
                r = httpx.get(f"{server.url}{path}", headers={**IDENTITY, "If-None-Match": tag})
                assert r.status_code == 200 and r.headers["etag"] != tag, (server.url, path)
                if path in want:
                    assert r.content == want[path], path


def test_interval_zero_reads_every_write_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"file://{tmp_path / 'now'}"
    ba = bc.create(url, dtype="uint8", size=(64, 64, 32), chunk_size=(64, 64, 32))
    ba[:, :, :] = 1
    server = LiveServer({"v": url}, str(tmp_path / "s.log"), workers=2, args=["--cache-revalidate", "0"])
    try:
        for value in range(2, 8):
            bc.open(url)[:, :, :] = value
            for _ in range(4):
                with httpx.Client(base_url=server.url, headers=IDENTITY) as http:
                    assert set(http.get("/v1/v/cutout/0/0:64,0:64,0:32").content) == {value}
                    assert set(http.get("/precomputed/v/1_1_1/0-64_0-64_0-32").content) == {value}
    finally:
        server.stop()


#: Raw minishard indexes and raw chunk data: a shard rewritten with a chunk fewer moves every
#: later chunk, and stale offsets would find other chunks' bytes (of the same size) silently.
RAW_SHARDING = {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 1, "hash": "identity",
                "minishard_bits": 1, "shard_bits": 2, "minishard_index_encoding": "raw", "data_encoding": "raw"}

#: Run by another process: new voxels everywhere, then the first chunk of every shard removed.
REWRITE = """
import sys
import numpy as np
import bigarrays_core as bc
ba = bc.open(sys.argv[1])
ba[:, :, :] = np.random.default_rng(7).integers(1, 2**16, size=ba.shape, dtype=np.uint16)
store = ba.scale_io.store
first = {}
for ref in ba.chunks():
    first.setdefault(store.shard_key_of(ref.key), ref.key)
store.delete_many(list(first.values()))
"""


def test_a_shard_rewritten_by_another_process_is_served_fresh_after_the_interval(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A sharded dataset behind two workers with warm caches (decoded chunks, shard and
    minishard indexes); another process rewrites every shard. After the revalidation interval
    no answer is stale: the stat of a chunk stamps its shard file, and a changed shard has its
    cached indexes dropped before anything is read through them."""
    import subprocess
    import sys

    url = f"file://{tmp_path / 'sharded'}"
    ba = bc.create(url, dtype="uint16", size=(128, 96, 64), chunk_size=(32, 32, 32), sharding=RAW_SHARDING)
    ba[:, :, :] = np.random.default_rng(3).integers(0, 2**16, size=ba.shape, dtype=np.uint16)
    refs = ba.chunks()
    # Single chunks first: a cutout's batch reaching past the end of a shorter shard would
    # make the adapter read that shard afresh anyway.
    paths = [*(f"/v1/s/chunks/0/{ref.name}" for ref in refs), "/v1/s/cutout/0/0:128,0:96,0:64",
             "/v1/s/cutout/0/10:100,5:90,3:60?format=npy"]

    def expected() -> dict[str, tuple[int, bytes]]:
        now = bc.open(url)
        out = {paths[-2]: (200, now.read(bc.Box.parse("0:128,0:96,0:64")).tobytes(order="F"))}
        stored = dict(zip([r.key for r in refs], now.scale_io.store.exists_many([r.key for r in refs])))
        for ref, path in zip(refs, paths):
            out[path] = (200, now.read(ref.box).tobytes(order="F")) if stored[ref.key] else (404, b"")
        return out

    def wrong(server: LiveServer, want: dict[str, tuple[int, bytes]]) -> list[str]:
        bad = []
        for _ in range(3):  # fresh connections: both workers
            for path in paths:
                with httpx.Client(base_url=server.url, headers=IDENTITY) as http:
                    r = http.get(path)
                if path in want and (r.status_code, r.content if r.status_code == 200 else b"") != want[path]:
                    bad.append(path)
                elif path not in want and r.status_code != 200:
                    bad.append(path)
        return bad

    server = LiveServer({"s": url}, str(tmp_path / "s.log"), workers=2,
                        args=["--cache-revalidate", str(REVALIDATE), "--cache-mb", "64"])
    try:
        assert wrong(server, expected()) == []  # every worker's caches are warm
        subprocess.run([sys.executable, "-c", REWRITE, url], check=True, timeout=120)
        want = expected()
        shards = {ba.scale_io.store.shard_key_of(ref.key) for ref in refs}  # type: ignore[attr-defined]
        assert sum(status == 404 for status, _ in want.values()) == len(shards) > 1
        time.sleep(REVALIDATE + 0.1)
        assert wrong(server, want) == [], "a worker served a shard older than the interval"
        assert "Traceback" not in server.log()
    finally:
        server.stop()
