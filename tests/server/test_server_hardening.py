"""What a server keeps to itself and what it never turns into a 500.

Integers longer than any coordinate (Python refuses to convert past 4,300 digits) are 400s
naming the parameter; a client that drops mid-PUT is a client disconnect (499), not a
server error; error messages and ``/v1/datasets`` show no storage paths unless the server
is configured to; a bug is a JSON 500 that reveals nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import anyio
import httpx
import numpy as np
import pytest
from bigarrays_server import Settings, create_app
from bigarrays_server.state import get_state
from conftest import TOKEN
from script_server import ScriptServer
from server_live import InProcess, make_datasets
from test_server_routes import assert_error

import bigarrays_core as bc

HUGE = "9" * 5000


# -- integers past any coordinate -------------------------------------------------------------


@pytest.mark.parametrize(("path", "code", "param"), [
    (f"/v1/em/cutout/0/0:{HUGE},10:20,5:6", "bad_bbox", "bbox"),
    (f"/v1/em/cutout/0/-{HUGE}:0,10:20,5:6", "bad_bbox", "bbox"),
    (f"/v1/em/cutout/0/0:1,10:20,5:6,0:{HUGE}", "bad_bbox", "bbox"),
    (f"/v1/em/cutout/0/0-{HUGE}_10-20_5-6", "bad_bbox", "bbox"),
    (f"/v1/em/cutout/0/0:{'1' * 25},10:20,5:6", "bad_bbox", "bbox"),
    (f"/v1/em/chunks/0?bbox=0:{HUGE},10:20,5:6", "bad_bbox", "bbox"),
    (f"/v1/em/chunks/0/0-{HUGE}_10-74_5-37", "bad_param", "chunk"),
    (f"/v1/em/chunks/0/0-64_10-74_5-37?format=npy&x={HUGE}", None, None),  # an unknown parameter: ignored
    (f"/v1/em/chunks/{HUGE}/0-64_10-74_5-37", "bad_param", "mip"),
    (f"/v1/em/cutout/{HUGE}/0:1,10:20,5:6", "bad_param", "mip"),
])
def test_huge_integers_are_400s_naming_the_parameter(api: InProcess, path: str, code: str | None,
                                                      param: str | None) -> None:
    r = api.get(path)
    if code is None:
        assert r.status_code == 200
        return
    body = assert_error(r, 400, code, param)  # type: ignore[arg-type]
    assert len(r.text) < 2000  # the number is quoted, not echoed whole
    if code == "bad_bbox" and "bbox" in path:
        assert "64-bit range" in body["message"] and body["detail"]["bbox"]


def test_huge_integers_in_the_precomputed_tree_and_a_put(api: InProcess, writable: tuple) -> None:  # type: ignore[type-arg]
    assert_error(api.get(f"/precomputed/em/8_8_40/0-{HUGE}_10-74_5-37"), 404, "not_found")
    app = writable[0]
    r = app.put(f"/v1/em/cutout/0/0:{HUGE},10:20,5:6", content=b"x", headers={"Authorization": f"Bearer {TOKEN}"})
    assert_error(r, 400, "bad_bbox", "bbox", "64-bit range")


# -- storage URLs --------------------------------------------------------------------------------


def test_storage_urls_are_not_shown_by_default(api: InProcess, urls: dict[str, str]) -> None:
    listing = api.get("/v1/datasets").json()
    assert all("url" not in d for d in listing) and {d["name"] for d in listing} == set(urls)
    body = assert_error(api.get("/v1/holes/chunks/0/64-128_64-128_32-64"), 404, "missing_chunk",
                        "holes/8_8_40/64-128_64-128_32-64")
    root = urls["holes"][len("file://"):]
    assert root not in str(body) and "file://" not in str(body)
    assert body["detail"]["key"] == "8_8_40/64-128_64-128_32-64"


def test_writes_name_the_dataset_not_its_path(writable: tuple) -> None:  # type: ignore[type-arg]
    app, urls, _ = writable
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = app.put("/v1/em/cutout/0/0:10,10:20,5:6", content=bytes(200), headers=auth)
    body = assert_error(r, 409, "unaligned", "dataset 'em' mip 0", "GET the chunk-aligned box 0:64,10:74,5:37,0:1",
                        "PUT that whole box back")
    assert "non_aligned_writes" not in body["message"] and urls["em"] not in str(body)
    assert body["detail"] == {"bbox": "0:10,10:20,5:6", "nearest": "0:64,10:74,5:37",
                              "reason": "it is not aligned to the chunk grid (voxel_offset [-64, 10, 5], "
                                        "chunk_size [64, 64, 32])"}
    r = app.put("/v1/em/cutout/0/1000:1064,10:74,5:37", content=bytes(64 * 64 * 32 * 2), headers=auth)
    body = assert_error(r, 400, "out_of_bounds", "dataset 'em' mip 0", "wholly outside", "[-64:86,10:110,5:75]")
    assert urls["em"] not in str(body)


def test_storage_urls_when_the_server_exposes_them(urls: dict[str, str]) -> None:
    app = InProcess(create_app(Settings(datasets=urls, expose_storage_urls=True)))
    try:
        listing = {d["name"]: d for d in app.get("/v1/datasets").json()}
        assert listing["em"]["url"] == urls["em"]
        body = assert_error(app.get("/v1/holes/chunks/0/64-128_64-128_32-64"), 404, "missing_chunk")
        assert f"{urls['holes']}/8_8_40/64-128_64-128_32-64" in body["message"]
    finally:
        app.close()


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIGARRAYS_EXPOSE_STORAGE_URLS", "true")
    assert Settings().expose_storage_urls is True
    assert Settings().to_env()["BIGARRAYS_EXPOSE_STORAGE_URLS"] == "true"
    monkeypatch.delenv("BIGARRAYS_EXPOSE_STORAGE_URLS")
    assert Settings().expose_storage_urls is False


def test_a_precomputed_url_is_a_dataset_url(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(str(tmp_path), "em")
    bc.create(root, dtype="uint8", size=(8, 8, 8), chunk_size=(8, 8, 8))[:, :, :] = 5
    app = InProcess(create_app(Settings(datasets={"em": f"precomputed://file://{root}"})))
    try:
        r = app.get("/v1/em/cutout/0/0:8,0:8,0:8")
        assert r.status_code == 200 and r.content == bytes([5]) * 512
    finally:
        app.close()


# -- bugs ----------------------------------------------------------------------------------------


def test_a_bug_is_a_json_500_that_reveals_nothing(urls: dict[str, str]) -> None:
    app = create_app(Settings(datasets=urls))

    def broken_state() -> None:
        raise RuntimeError(f"a bug that mentions {urls['em']}")

    app.dependency_overrides[get_state] = broken_state

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/healthz")

    r = anyio.run(get)
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == "internal" and "GET /healthz" in body["message"] and urls["em"] not in r.text


# -- clients that go away --------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScriptServer, dict[str, str]]]:
    root = str(tmp_path_factory.mktemp("hardening"))
    urls, _ = make_datasets(os.path.join(root, "data"), np.random.default_rng(5))
    server = ScriptServer({"em": urls["em"]}, os.path.join(root, "server.log"), write_token=TOKEN)
    try:
        yield server, urls
    finally:
        server.stop()


def _put_and_drop(server: ScriptServer, path: str, declared: int, sent: int) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                  f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n".encode())
        s.sendall(bytes(sent))


def _put_lines(server: ScriptServer) -> list[str]:
    text = httpx.get(f"{server.url}/metrics").text
    return [line for line in text.splitlines()
            if line.startswith("bigarrays_requests_total") and 'method="PUT"' in line]


def test_a_client_dropping_mid_put_is_no_server_error(live: tuple[ScriptServer, dict[str, str]]) -> None:
    server, urls = live
    before = bc.open(urls["em"])[-64:0, 10:74, 5:37]
    path = "/v1/em/cutout/0/-64:0,10:74,5:37"
    for sent in (0, 1000, 64 * 64 * 32):
        _put_and_drop(server, path, 64 * 64 * 32 * 2, sent)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the server has noticed all three
        lines = _put_lines(server)
        if any('status="499"} 3' in line for line in lines):
            break
        time.sleep(0.1)
    assert any('status="499"} 3' in line for line in lines), lines
    assert not any('status="5' in line for line in lines), lines
    log = server.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    assert log.count("the client disconnected before sending its whole body; nothing was written") == 3
    np.testing.assert_array_equal(bc.open(urls["em"])[-64:0, 10:74, 5:37], before)
    # A whole PUT on the same server still works.
    r = httpx.put(f"{server.url}{path}", content=bytes(64 * 64 * 32 * 2), headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text


def test_the_redactor_rewrites_whole_roots_only() -> None:
    from bigarrays_server.redaction import Redactor

    r = Redactor({"em": ["file:///srv/d/em", "data/em"], "em2": ["file:///srv/d/em2"], "g": ["gs://bucket/x"],
                  "m": ["memory://m"]})
    cases = {
        "cannot decode file:///srv/d/em/8_8_40/0-64_0-64_0-64: junk": "cannot decode em/8_8_40/0-64_0-64_0-64: junk",
        "cannot write [0:1,0:1,0:1] to file:///srv/d/em mip 0": "cannot write [0:1,0:1,0:1] to dataset 'em' mip 0",
        "open('/srv/d/em2/info') failed": "open('em2/info') failed",
        "gcsfs: bucket/x/8/y is gone; gs://bucket/x": "gcsfs: g/8/y is gone; dataset 'g'",
        "file:///srv/d/emx/a and xbucket/x/a": "file:///srv/d/emx/a and xbucket/x/a",  # other paths stay
        "data/em and m and memory://m/k": "data/em and m and m/k",  # relative paths and bare names stay
    }
    for text, want in cases.items():
        assert r.apply(text) == want
    assert r.apply_all({"a": ["file:///srv/d/em/k", 3], "b": None}) == {"a": ["em/k", 3], "b": None}
    assert Redactor({}).apply("file:///srv/d/em") == "file:///srv/d/em"
