"""HTTP semantics of every route, in-process: Range (206/416), ETag / If-None-Match (304),
If-Match (412), Last-Modified, Cache-Control, content codings, OPTIONS and Allow."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator

import numpy as np
import pytest
import zstandard
from bigarrays_server import Settings, create_app
from server_live import InProcess, make_datasets

import bigarrays_core as bc

DATA_ROUTES = [
    "/v1/em/cutout/0/-70:20,0:60,0:40",
    "/v1/em/chunks/0/0-64_10-74_5-37",
    "/v1/em/chunks/0/0-64_10-74_5-37?format=npy",
    "/v1/em/chunks/0/0-64_10-74_5-37?format=encoded",
    "/v1/gz/chunks/0/0-64_0-64_0-32?format=encoded",
    "/precomputed/em/8_8_40/0-64_10-74_5-37",
    "/precomputed/zst/8_8_40/0-64_0-64_0-32",
    "/precomputed/seg/8_8_40/0-32_0-32_0-16",
    "/precomputed/em/mesh/info",
    "/precomputed/em/mesh/7:0:0-64_0-64_0-64",
    "/precomputed/em/8_8_40/0.shard",
    "/v1/em/image/0/-64:86,10:110,20:21",
]
JSON_ROUTES = ["/v1/datasets", "/v1/em/info", "/v1/em/chunks/0?bbox=0:64,10:74,5:37", "/precomputed/em/info",
               "/healthz", "/openapi.json"]
SHARD = bytes(range(256)) * 40  # a stand-in file of a scale's directory: passed through as stored
MESH = b"\x01\x02\x03" * 1000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, np.ndarray], str]:
    """The server datasets, plus files beside em's scales: a shard-like file, a mesh (one
    fragment gzip-stored as CloudVolume stores it), hidden bigarrays files."""
    root = str(tmp_path_factory.mktemp("http"))
    urls, arrays = make_datasets(root, np.random.default_rng(11))
    em = os.path.join(root, "em")
    with open(os.path.join(em, "8_8_40", "0.shard"), "wb") as f:
        f.write(SHARD)
    os.makedirs(os.path.join(em, "mesh"))
    with open(os.path.join(em, "mesh", "info"), "w") as f:
        json.dump({"@type": "neuroglancer_legacy_mesh"}, f)
    with open(os.path.join(em, "mesh", "7:0:0-64_0-64_0-64.gz"), "wb") as f:
        f.write(gzip.compress(MESH))
    os.makedirs(os.path.join(em, ".bigarrays", "progress"))
    with open(os.path.join(em, ".bigarrays", "progress", "job"), "w") as f:
        f.write("{}")
    with open(os.path.join(em, "8_8_40", ".bigarrays-tmp-0123"), "wb") as f:
        f.write(b"half-written")
    return urls, arrays, root


@pytest.fixture(scope="module")
def web(files: tuple[dict[str, str], dict[str, np.ndarray], str]) -> Iterator[InProcess]:
    urls, _, _ = files
    client = InProcess(create_app(Settings(datasets=urls, cache_mb=64, cache_revalidate=0,
                                           cache_control="public, max-age=7")))
    yield client
    client.close()


def raw_body(web: InProcess, url: str, headers: dict[str, str]) -> bytes:
    """The body as sent (no content coding undone)."""

    async def fetch() -> bytes:
        async with web.client.stream("GET", url, headers=headers) as r:
            return b"".join([part async for part in r.aiter_raw()])

    return web._portal.call(fetch)


def whole(web: InProcess, url: str) -> bytes:
    r = web.get(url)
    assert r.status_code == 200, (url, r.text)
    return r.content


@pytest.mark.parametrize("url", DATA_ROUTES + JSON_ROUTES)
def test_every_get_has_an_etag_and_if_none_match_gives_304(web: InProcess, url: str) -> None:
    r = web.get(url)
    assert r.status_code == 200, r.text
    tag = r.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')
    assert web.get(url).headers["etag"] == tag  # stable while nothing changes
    again = web.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert web.head(url, headers={"If-None-Match": f'"other", {tag}'}).status_code == 304
    assert web.get(url, headers={"If-None-Match": "*"}).status_code == 304
    assert web.get(url, headers={"If-None-Match": '"not-it"'}).status_code == 200
    assert web.get(url, headers={"If-Match": '"not-it"'}).status_code == 412
    assert web.get(url, headers={"If-Match": tag}).status_code == 200
    assert web.head(url).headers["etag"] == tag


@pytest.mark.parametrize("url", DATA_ROUTES)
def test_data_answers_carry_cache_control_last_modified_and_accept_ranges(web: InProcess, url: str) -> None:
    r = web.get(url)
    assert r.headers["cache-control"] == "public, max-age=7"
    assert r.headers["last-modified"].endswith(" GMT")
    if "/image/" not in url:
        assert r.headers["accept-ranges"] == "bytes"
    missing = web.get("/v1/holes/chunks/0/64-128_64-128_32-64")
    assert missing.status_code == 404 and missing.headers["cache-control"] == "public, max-age=7"


@pytest.mark.parametrize("url", [u for u in DATA_ROUTES if "/image/" not in u])
def test_ranges_of_every_data_route(web: InProcess, url: str) -> None:
    body = whole(web, url)
    n = len(body)
    tag = web.get(url).headers["etag"]
    for spec, (a, b) in ((f"bytes=0-{min(99, n - 1)}", (0, min(100, n))), (f"bytes={n // 3}-", (n // 3, n)),
                         ("bytes=-7", (n - 7, n)), (f"bytes=5-{n + 1000}", (5, n)),
                         (f"bytes={n - 1}-{n - 1}", (n - 1, n))):
        r = web.get(url, headers={"Range": spec})
        assert r.status_code == 206, (url, spec, r.text)
        assert r.content == body[a:b], (url, spec)
        assert r.headers["content-range"] == f"bytes {a}-{b - 1}/{n}"
        assert int(r.headers["content-length"]) == b - a
        assert "content-encoding" not in r.headers
        assert r.headers["etag"] == tag
    for spec in (f"bytes={n}-", f"bytes={n + 5}-{n + 9}", "bytes=-0"):
        r = web.get(url, headers={"Range": spec})
        assert r.status_code == 416, (url, spec)
        assert r.headers["content-range"] == f"bytes */{n}"
        assert r.json()["error"] == "bad_range"
    # Ignored, as the RFC allows: another unit, several ranges, nonsense, a stale If-Range; and HEAD.
    for headers in ({"Range": "items=0-5"}, {"Range": "bytes=0-1,4-5"}, {"Range": "bytes=x-y"},
                    {"Range": "bytes=5-2"}, {"Range": "bytes=0-9", "If-Range": '"stale"'}):
        r = web.get(url, headers=headers)
        assert r.status_code == 200 and r.content == body, (url, headers)
    assert web.get(url, headers={"Range": "bytes=0-9", "If-Range": tag}).status_code == 206
    h = web.head(url, headers={"Range": "bytes=0-9"})
    assert h.status_code == 200 and h.headers["content-length"] == str(n)


def test_ranges_of_cutouts_read_any_span_of_the_body(web: InProcess, files) -> None:  # type: ignore[no-untyped-def]
    """Spans that start and end inside voxels, inside the .npy header, across channels."""
    urls, _, _ = files
    rng = np.random.default_rng(3)
    for url in ("/v1/em/cutout/0/-70:20,0:60,0:40", "/v1/rgb/cutout/0/3:60,1:40,2:19?format=npy",
                "/v1/rgb/cutout/0/0:64,0:48,0:20,1:3", "/v1/seg/cutout/0/-5:40,3:9,0:32"):
        body = whole(web, url)
        n = len(body)
        for _ in range(12):
            a = int(rng.integers(0, n))
            b = int(rng.integers(a, n))
            r = web.get(url, headers={"Range": f"bytes={a}-{b}"})
            assert r.status_code == 206 and r.content == body[a:b + 1], (url, a, b)


def test_head_of_a_cutout_is_a_dry_run_of_stamps_only(web: InProcess) -> None:
    url = "/v1/em/cutout/0/-70:20,0:60,0:40"
    g, h = web.get(url), web.head(url)
    assert h.content == b"" and h.headers["etag"] == g.headers["etag"]
    assert h.headers["content-length"] == str(len(g.content))


def test_a_write_beside_the_server_changes_the_etag_and_is_served(files, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The cutout's tag covers every chunk it touches: an out-of-band write (the library,
    another process) to one of them gives a new tag and the new voxels, never a 304."""
    import shutil

    urls, _, _ = files
    root = tmp_path / "copy"
    shutil.copytree(urls["em"][len("file://"):], root)
    web = InProcess(create_app(Settings(datasets={"em": f"file://{root}"}, cache_mb=64, cache_revalidate=0)))
    try:
        urls_checked = ["/v1/em/cutout/0/-70:20,0:60,0:40", "/v1/em/chunks/0/0-64_10-74_5-37",
                        "/precomputed/em/8_8_40/0-64_10-74_5-37", "/v1/em/image/0/-64:86,10:110,20:21"]
        before = {u: web.get(u) for u in urls_checked}
        ba = bc.open(f"file://{root}")
        ba[0:64, 10:74, 5:37] = np.full((64, 64, 32, 1), 4321, np.uint16)  # one chunk of the cutout
        for u, old in before.items():
            r = web.get(u, headers={"If-None-Match": old.headers["etag"]})
            assert r.status_code == 200, u
            assert r.headers["etag"] != old.headers["etag"] and r.content != old.content, u
        got = np.frombuffer(web.get("/v1/em/cutout/0/0:64,10:74,5:37").content, np.uint16)
        assert (got == 4321).all()
    finally:
        web.close()


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_cutouts_in_a_content_coding(web: InProcess, coding: str) -> None:
    url = "/v1/rgb/cutout/0/0:64,0:48,0:20?format=npy"
    plain = whole(web, url)
    r = web.get(url, headers={"Accept-Encoding": coding})
    assert r.status_code == 200 and r.headers["content-encoding"] == coding
    assert "content-length" not in r.headers and r.headers["vary"].startswith("Accept-Encoding")
    assert r.content == plain  # httpx undid the coding
    wire = raw_body(web, url, {"Accept-Encoding": coding})
    undo = gzip.decompress if coding == "gzip" else zstandard.ZstdDecompressor().decompressobj().decompress
    assert wire != plain and undo(wire) == plain
    assert r.headers["etag"] != web.get(url).headers["etag"]  # another representation
    if coding == "gzip":
        assert r.headers["etag"] != web.get(url, headers={"Accept-Encoding": "zstd"}).headers["etag"]
    assert web.get(url, headers={"Accept-Encoding": f"{coding};q=0"}).headers.get("content-encoding") is None
    h = web.head(url, headers={"Accept-Encoding": coding})
    assert h.headers["content-encoding"] == coding and h.headers["etag"] == r.headers["etag"]
    ranged = web.get(url, headers={"Accept-Encoding": coding, "Range": "bytes=10-19"})
    assert ranged.status_code == 206 and "content-encoding" not in ranged.headers and ranged.content == plain[10:20]


def test_stored_codings_pass_through_when_accepted(web: InProcess, files) -> None:  # type: ignore[no-untyped-def]
    urls, arrays, root = files
    want = arrays["zst"][0:64, 0:64, 0:32].tobytes(order="F")
    with open(os.path.join(root, "zst", "8_8_40", "0-64_0-64_0-32.zstd"), "rb") as f:
        stored = f.read()
    r = web.get("/precomputed/zst/8_8_40/0-64_0-64_0-32", headers={"Accept-Encoding": "zstd"})
    assert r.headers["content-encoding"] == "zstd" and r.content == want
    assert zstandard.ZstdDecompressor().decompress(stored) == want
    assert web.get("/precomputed/zst/8_8_40/0-64_0-64_0-32").content == want  # decompressed for identity
    gz = web.get("/precomputed/em/mesh/7:0:0-64_0-64_0-64", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.content == MESH
    assert web.get("/precomputed/em/mesh/7:0:0-64_0-64_0-64").content == MESH


def test_every_file_of_the_dataset_and_nothing_else(web: InProcess, files) -> None:  # type: ignore[no-untyped-def]
    _, _, root = files
    assert web.get("/precomputed/em/mesh/info").json() == {"@type": "neuroglancer_legacy_mesh"}
    assert web.get("/precomputed/em/mesh/info").headers["content-type"] == "application/json"
    assert whole(web, "/precomputed/em/8_8_40/0.shard") == SHARD
    r = web.get("/precomputed/em/8_8_40/0.shard", headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == SHARD[1000:2000]
    h = web.head("/precomputed/em/8_8_40/0.shard")
    assert h.headers["content-length"] == str(len(SHARD)) and h.headers["accept-ranges"] == "bytes"
    for path in (".bigarrays/progress/job", "8_8_40/.bigarrays-tmp-0123", "mesh/nope", "8_8_40",
                 "8_8_40/0-64_10-74_5-38", "info/x", "mesh//info", "no/such/file"):
        r = web.get(f"/precomputed/em/{path}")
        assert r.status_code == 404, (path, r.status_code)
        assert r.json()["error"] in ("not_found", "missing_chunk")
    assert web.get("/precomputed/nope/mesh/info").status_code == 404


def test_options_lists_the_methods_of_the_path_and_405_agrees(web: InProcess) -> None:
    cases = {"/v1/em/cutout/0/0:1,0:1,0:1": "GET, HEAD, PUT, OPTIONS", "/v1/datasets": "GET, HEAD, OPTIONS",
             "/metrics": "GET, OPTIONS", "/precomputed/em/mesh/info": "GET, HEAD, OPTIONS"}
    for url, allow in cases.items():
        r = web.options(url)
        assert r.status_code == 204 and r.headers["allow"] == allow, (url, r.headers.get("allow"))
    r = web.request("DELETE", "/v1/datasets")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS"
    assert web.request("POST", "/v1/em/cutout/0/0:1,0:1,0:1").headers["allow"] == "GET, HEAD, PUT, OPTIONS"
    assert web.options("/no/such/route").status_code == 404


def test_npy_ranges_reassemble_to_the_array(web: InProcess, files) -> None:  # type: ignore[no-untyped-def]
    urls, _, _ = files
    url = "/v1/em/cutout/0/-64:86,10:110,5:75?format=npy"
    n = int(web.head(url).headers["content-length"])
    parts = [web.get(url, headers={"Range": f"bytes={a}-{min(a + 99_999, n - 1)}"}).content
             for a in range(0, n, 100_000)]
    arr = np.load(io.BytesIO(b"".join(parts)))
    np.testing.assert_array_equal(arr, bc.open(urls["em"]).read(bc.Box.parse("-64:86,10:110,5:75")))
