"""Bounded under faults and slow clients, against real server processes: a hanging store gives a
504 within the storage timeout (not after the store's own retries); connections that never
finish their headers or their body are closed; heads too large get a 431; a worker takes at
most its connection limit; a client that goes away is no server error; no path escapes a
dataset."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import TOKEN
from server_live import LiveServer

import bigarrays_core as bc
from tests.services import FaultPlan, FaultProxy, StaticHTTPServer

LIMITS = {"BIGARRAYS_HEADER_TIMEOUT": "1", "BIGARRAYS_BODY_TIMEOUT": "1", "BIGARRAYS_MAX_HEADER_KB": "8",
          "BIGARRAYS_MAX_CONNECTIONS": "40"}


def connect(server: LiveServer) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.settimeout(10)
    return s


def closed_by_server(s: socket.socket, within: float) -> tuple[bool, bytes]:
    """Whether the server closes ``s`` within ``within`` seconds, and what it sent first."""
    s.settimeout(within)
    got = b""
    try:
        while True:
            part = s.recv(65536)
            if not part:
                return True, got
            got += part
    except TimeoutError:
        return False, got
    except ConnectionResetError:
        return True, got


def metrics_5xx(server: LiveServer) -> list[str]:
    text = httpx.get(f"{server.url}/metrics").text
    return [line for line in text.splitlines() if line.startswith("bigarrays_requests_total") and 'status="5' in line]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    root = tmp_path_factory.mktemp("limits")
    url = f"file://{root / 'v'}"
    ba = bc.create(url, dtype="uint8", size=(512, 512, 128), chunk_size=(64, 64, 64))
    ba[:, :, :] = 5
    server = LiveServer({"v": url}, str(root / "server.log"), env=LIMITS,
                        args=["--write-token", TOKEN, "--max-cutout-mb", "64"])
    yield server, url
    server.stop()


def test_connections_that_never_finish_their_headers_are_closed(limited: tuple[LiveServer, str]) -> None:
    server, _ = limited
    socks = []
    for i in range(30):
        s = connect(server)
        if i % 3 == 0:
            s.sendall(b"GET /v1/datasets HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        elif i % 3 == 1:
            s.sendall(b"GET /v1/data")  # the request line cut short
        socks.append(s)  # the others send nothing at all
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # the worker still answers others
    for i, s in enumerate(socks):
        closed, sent = closed_by_server(s, 8)
        assert closed, f"connection {i} stayed open"
        if i % 3 != 2:
            assert sent.startswith(b"HTTP/1.1 408"), sent[:80]
        s.close()


def test_a_request_body_that_stalls_is_dropped_and_nothing_is_written(limited: tuple[LiveServer, str]) -> None:
    server, url = limited
    socks = []
    for _ in range(10):
        s = connect(server)
        s.sendall(b"PUT /v1/v/cutout/0/0:64,0:64,0:64 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                  + b"\r\nContent-Type: application/octet-stream\r\nContent-Length: 262144\r\n\r\n" + b"\x01" * 1000)
        socks.append(s)
    for s in socks:
        closed, _ = closed_by_server(s, 8)
        assert closed, "a PUT whose body stalled stayed open"
        s.close()
    assert (bc.open(url)[0:64, 0:64, 0:64] == 5).all()
    assert metrics_5xx(server) == []
    text = httpx.get(f"{server.url}/metrics").text
    assert 'method="PUT",route="/v1/{ds}/cutout/{mip}/{bbox}",status="499"' in text


def test_a_slow_but_steady_body_is_read(limited: tuple[LiveServer, str]) -> None:
    """The body timeout is a pause between reads, not a deadline for the whole body."""
    server, url = limited
    body = bytes([9]) * (64 * 64 * 64)
    s = connect(server)
    s.sendall(b"PUT /v1/v/cutout/0/64:128,0:64,0:64 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
              + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
    for i in range(0, len(body), len(body) // 4):
        s.sendall(body[i:i + len(body) // 4])
        time.sleep(0.6)  # four pauses shorter than the timeout, 2.4 s in all: longer than it
    closed, answer = closed_by_server(s, 10)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    s.close()
    assert (bc.open(url)[64:128, 0:64, 0:64] == 9).all()


def test_a_head_too_large_is_a_431(limited: tuple[LiveServer, str]) -> None:
    server, _ = limited
    for head in (b"GET /v1/datasets HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
                 b"GET /v1/datasets HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(3000))):
        s = connect(server)
        s.sendall(head)
        closed, answer = closed_by_server(s, 8)
        assert closed and answer.startswith(b"HTTP/1.1 431"), answer[:100]
        s.close()
    ok = httpx.get(f"{server.url}/v1/datasets", headers={"X-Fine": "a" * 4000})
    assert ok.status_code == 200


def test_a_worker_takes_at_most_its_connection_limit(limited: tuple[LiveServer, str]) -> None:
    server, _ = limited
    socks = [connect(server) for _ in range(50)]
    busy = 0
    for s in socks:
        s.settimeout(0.5)
        try:
            data = s.recv(200)
        except TimeoutError:
            continue
        if data.startswith(b"HTTP/1.1 503"):
            assert b"retry-after: 1" in data
            busy += 1
    assert busy >= 10  # 40 allowed (less the connections of other clients)
    for s in socks:
        s.close()
    time.sleep(0.2)
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_a_client_that_goes_away_is_no_server_error(limited: tuple[LiveServer, str]) -> None:
    server, _ = limited
    for _ in range(5):
        s = connect(server)
        s.sendall(b"GET /v1/v/cutout/0/0:512,0:512,0:128 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(65536)  # the headers and a little of the 32 MiB body ...
        s.close()  # ... then gone
    s = connect(server)
    s.sendall(b"GET /v1/v/cutout/0/0:512,0:512,0:128 HTTP/1.1\r\nHost: x\r\n\r\n")
    s.close()  # gone before any answer
    time.sleep(0.5)
    assert metrics_5xx(server) == []
    assert "Traceback" not in server.log() and "ERROR" not in server.log()


def test_no_path_escapes_the_dataset(limited: tuple[LiveServer, str], tmp_path: Path) -> None:
    """Raw request lines (no client normalises them): dot segments, encoded ones, encoded
    slashes and backslashes, absolute paths, NUL bytes."""
    server, url = limited
    secret = Path(url[len("file://"):]).parent / "secret.txt"
    secret.write_text("not to be served")
    for path in ("/precomputed/v/../secret.txt", "/precomputed/v/%2e%2e/secret.txt",
                 "/precomputed/v/%2E%2E%2Fsecret.txt",
                 "/precomputed/v/1_1_1/..%2F..%2Fsecret.txt", "/precomputed/v/..%5Csecret.txt",
                 "/precomputed/v//etc/passwd", "/precomputed/v/%2Fetc%2Fpasswd", "/precomputed/v/info%00",
                 "/precomputed/v/./info/../../secret.txt", "/precomputed/..%2Fv/info"):
        s = connect(server)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        _, answer = closed_by_server(s, 8)
        s.close()
        assert b"not to be served" not in answer, path
        assert answer.split(b" ", 2)[1] in (b"400", b"404"), (path, answer[:120])


def test_a_hanging_store_gives_a_504_within_the_storage_timeout(http_server: StaticHTTPServer,
                                                                  tmp_path: Path) -> None:
    name = f"hang-{os.getpid()}"
    ba = bc.create(f"file://{http_server.root}/{name}", dtype="uint8", size=(128, 128, 64), chunk_size=(64, 64, 64))
    ba[:, :, :] = 3
    proxy = FaultProxy(http_server.endpoint).start()
    server = LiveServer({"web": f"{proxy.endpoint}/{name}"}, str(tmp_path / "server.log"),
                        args=["--storage-timeout", "2", "--cache-mb", "0"])
    try:
        assert httpx.get(f"{server.url}/v1/web/cutout/0/0:8,0:8,0:8").status_code == 200
        proxy.set_plan(FaultPlan(mode="slow", fraction=1.0, delay=120))  # the store's own timeout is 60 s
        for path in ("/v1/web/cutout/0/0:64,0:64,0:64", "/v1/web/chunks/0/64-128_0-64_0-64",
                     "/precomputed/web/1_1_1/0-64_64-128_0-64", "/v1/web/image/0/0:64,0:64,3:4"):
            start = time.monotonic()
            r = httpx.get(f"{server.url}{path}", timeout=60)
            took = time.monotonic() - start
            assert r.status_code == 504, (path, r.text)
            assert r.json()["error"] == "upstream_timeout" and "2 s" in r.json()["message"]
            assert took < 6, f"{path}: the 504 took {took:.1f} s"  # 3x the budget
        proxy.set_plan(FaultPlan())
        assert httpx.get(f"{server.url}/v1/web/cutout/0/0:8,0:8,0:8").status_code == 200  # it recovers
    finally:
        server.stop()
        proxy.stop()


def test_values_in_the_answers_are_the_stored_ones(limited: tuple[LiveServer, str]) -> None:
    server, url = limited
    r = httpx.get(f"{server.url}/v1/v/cutout/0/128:192,128:192,0:64", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and set(r.content) == {5}
    np.testing.assert_array_equal(bc.open(url)[128:192, 128:192, 0:64, 0], np.full((64, 64, 64), 5, np.uint8))


def test_a_put_to_a_hanging_store_answers_within_the_storage_timeout(s3_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.services import new_bucket_url

    url = new_bucket_url("s3", s3_server.endpoint, "ds")
    ba = bc.create(url, dtype="uint8", size=(64, 64, 64), chunk_size=(64, 64, 64))
    ba[:, :, :] = 1
    proxy = FaultProxy(s3_server.endpoint).start()
    server = LiveServer({"s": url}, str(tmp_path / "server.log"), env={"AWS_ENDPOINT_URL": proxy.endpoint},
                        args=["--storage-timeout", "2", "--write-token", TOKEN, "--cache-mb", "0"])
    try:
        proxy.set_plan(FaultPlan(mode="slow", fraction=1.0, delay=120))  # S3 clients wait 60 s per attempt
        start = time.monotonic()
        r = httpx.put(f"{server.url}/v1/s/cutout/0/0:64,0:64,0:64", content=bytes(64**3), timeout=60,
                      headers={"Authorization": f"Bearer {TOKEN}"})
        took = time.monotonic() - start
        assert r.status_code == 504 and r.json()["error"] == "upstream_timeout", r.text
        assert took < 8, f"the PUT's answer took {took:.1f} s"
    finally:
        server.stop()
        proxy.set_plan(FaultPlan())
        proxy.stop()
