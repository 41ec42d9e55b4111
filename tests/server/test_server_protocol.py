"""The workers' HTTP protocol answers fast-path requests itself: byte for byte what the app
sends through uvicorn's ASGI cycle (but the date), kept-alive and pipelined in order."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from server_live import LiveServer

import bigarrays_core as bc


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, np.ndarray]]:
    root = tmp_path_factory.mktemp("protocol")
    url = f"file://{root / 'v'}"
    ba = bc.create(url, dtype="uint16", size=(96, 80, 40), chunk_size=(32, 32, 16))
    data = np.random.default_rng(4).integers(0, 2**16, size=ba.shape, dtype=np.uint16)
    ba[:, :, :] = data
    server = LiveServer({"v": url}, str(root / "server.log"), args=["--cache-revalidate", "60"])
    yield server, data
    server.stop()


def exchange(server: LiveServer, requests: bytes, answers: int, heads: frozenset[int] = frozenset()) -> list[bytes]:
    """Send ``requests`` on one connection; the raw answers (head and body) in order
    (``heads``: the indexes of HEAD requests, whose answers have no body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(requests)
        buf = b""
        out: list[bytes] = []
        while len(out) < answers:
            part = s.recv(1 << 20)
            assert part, f"connection closed after {len(out)} answers"
            buf += part
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end + 4]
                m = re.search(rb"content-length: (\d+)", head)
                bodiless = head.startswith(b"HTTP/1.1 304") or len(out) in heads
                size = int(m.group(1)) if m and not bodiless else 0
                if len(buf) < end + 4 + size:
                    break
                out.append(buf[:end + 4 + size])
                buf = buf[end + 4 + size:]
        return out


def without_date(answer: bytes) -> bytes:
    return re.sub(rb"date: [^\r]*\r\n", b"", answer)


@pytest.mark.parametrize("path", ["/v1/v/chunks/0/32-64_0-32_16-32", "/precomputed/v/1_1_1/64-96_64-80_32-40",
                                  "/v1/v/cutout/0/5:40,3:30,1:20", "/v1/v/cutout/0/5:40,3:30,1:20?format=npy"])
def test_a_direct_answer_is_the_routed_answer(served: tuple[LiveServer, np.ndarray], path: str) -> None:
    server, _ = served
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nOrigin: http://viewer.example\r\n\r\n".encode()
    first, second, third = exchange(server, request * 3, 3)  # the first loads the chunks (routed)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert without_date(first) == without_date(second) == without_date(third)
    tag = re.search(rb"etag: ([^\r]*)", first).group(1)  # type: ignore[union-attr]
    (not_modified,) = exchange(server, f"GET {path} HTTP/1.1\r\nHost: x\r\nIf-None-Match: ".encode() + tag
                               + b"\r\n\r\n", 1)
    assert not_modified.startswith(b"HTTP/1.1 304 ") and b"etag: " + tag in not_modified


def test_pipelined_requests_are_answered_in_order(served: tuple[LiveServer, np.ndarray]) -> None:
    server, data = served
    paths = ["/v1/v/chunks/0/0-32_0-32_0-16", "/v1/datasets", "/v1/v/chunks/0/0-32_0-32_0-16",
             "/v1/v/cutout/0/0:32,0:32,0:16", "/healthz", "/v1/v/chunks/0/0-32_0-32_0-16"]
    answers = exchange(server, b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths), len(paths))
    chunk = data[0:32, 0:32, 0:16].tobytes(order="F")
    for path, answer in zip(paths, answers, strict=True):
        assert answer.startswith(b"HTTP/1.1 200 "), (path, answer[:100])
        body = answer.split(b"\r\n\r\n", 1)[1]
        if "chunks" in path or "cutout" in path:
            assert body == chunk, path
        else:
            assert body.startswith(b"[") or body.startswith(b"{"), path


def test_http_1_0_and_connection_close_are_honoured(served: tuple[LiveServer, np.ndarray]) -> None:
    server, _ = served
    path = "/v1/v/chunks/0/0-32_0-32_0-16"
    exchange(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 1)  # cached now
    for request in (f"GET {path} HTTP/1.0\r\n\r\n", f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(request.encode())
            got = b""
            while True:
                part = s.recv(1 << 20)
                if not part:
                    break  # the server closed the connection after the answer
                got += part
        assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"\r\n\r\n") is False
        assert len(got.split(b"\r\n\r\n", 1)[1]) == 32 * 32 * 16 * 2


def test_a_head_is_answered_without_a_body(served: tuple[LiveServer, np.ndarray], tmp_path: Path) -> None:
    server, _ = served
    path = "/v1/v/chunks/0/0-32_0-32_0-16"
    get, head, after = exchange(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\nHEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"
                                f"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 3, frozenset({1}))
    assert without_date(head) == without_date(get.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
    assert after.startswith(b"HTTP/1.1 200 ") and b'"status":"ok"' in after
