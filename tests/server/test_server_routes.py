"""The HTTP API of docs/server.md, in-process: every route, format, header and error status."""

from __future__ import annotations

import io

import numpy as np
import pytest
import zstandard
from bigarrays_server.formats import npy_header
from conftest import TOKEN
from server_live import InProcess

import bigarrays_core as bc

Writable = tuple[InProcess, dict[str, str], dict[str, np.ndarray]]


def body_array(r, dtype: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    shape = tuple(int(n) for n in r.headers["x-shape"].split(","))
    return np.frombuffer(r.content, dtype=dtype).reshape(shape, order="F")


def assert_error(r, status: int, code: str, *words: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "message", "detail"}
    assert body["error"] == code, body
    for w in words:
        assert w in body["message"], (w, body["message"])
    assert r.headers["access-control-allow-origin"] == "*"
    return body  # type: ignore[no-any-return]


# -- discovery -------------------------------------------------------------------------
def test_datasets_lists_every_dataset_with_its_neuroglancer_url(api: InProcess, urls: dict[str, str]) -> None:
    r = api.get("/v1/datasets")
    assert r.status_code == 200
    by_name = {d["name"]: d for d in r.json()}
    assert set(by_name) == set(urls)
    assert by_name["em"]["shape"] == [150, 100, 70, 1] and by_name["em"]["dtype"] == "uint16"
    assert by_name["em"]["precomputed_url"] == "precomputed://http://testserver/precomputed/em"


def test_info_has_bounds_per_mip_dtype_axes_limits_formats(api: InProcess, urls: dict[str, str]) -> None:
    body = api.get("/v1/em/info").json()
    assert body["info"] == bc.open(urls["em"]).info
    assert body["dtype"] == "uint16" and body["axes"] == ["x", "y", "z", "c"] and body["order"] == "F"
    assert [s["bounds"] for s in body["scales"]] == ["-64:86,10:110,5:75", "-32:43,5:55,5:75"]
    assert body["limits"]["max_cutout_bytes"] == 4 * 2**20
    assert body["formats"]["cutout"] == {"raw": "application/octet-stream", "npy": "application/x-npy"}
    assert body["writable"] is False


def test_every_get_route_answers_head_with_the_get_headers_and_no_body(api: InProcess) -> None:
    for path in ("/v1/datasets", "/v1/em/info", "/v1/em/cutout/0/0:10,10:20,5:6", "/v1/em/chunks/0",
                 "/v1/em/chunks/0/0-64_10-74_5-37", "/precomputed/em/info", "/precomputed/em/8_8_40/0-64_10-74_5-37",
                 "/healthz"):
        get, head = api.get(path), api.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content)), path


# -- cutouts ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["em", "zst", "gz", "bl", "rgb", "seg", "holes"])
def test_raw_cutout_equals_the_library_read(api: InProcess, urls: dict[str, str], name: str) -> None:
    ba = bc.open(urls[name])
    lo, hi = ba.bounds.start, ba.bounds.stop
    box = bc.Box((lo[0] - 5, lo[1] + 3, lo[2] + 1), (hi[0] + 7, hi[1] - 2, hi[2] + 3))  # crosses every edge
    r = api.get(f"/v1/{name}/cutout/0/{box.to_colon()}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-dtype"] == ba.dtype.name and r.headers["x-order"] == "F" and r.headers["x-axes"] == "x,y,z,c"
    assert r.headers["x-bbox"] == f"{box.to_colon()},0:{ba.num_channels}"
    np.testing.assert_array_equal(body_array(r, ba.dtype.name), ba.read(box))


def test_cutout_in_negative_coordinates_and_the_dash_spelling(api: InProcess, arrays: dict[str, np.ndarray]) -> None:
    # em's voxel_offset is (-64, 10, 5): x -64:-10 are the first 54 columns.
    want = arrays["em"][0:54, 0:20, 0:10]
    for bbox in ("-64:-10,10:30,5:15", "-64--10_10-30_5-15"):
        r = api.get(f"/v1/em/cutout/0/{bbox}")
        assert r.status_code == 200, r.text
        np.testing.assert_array_equal(body_array(r, "uint16"), want)


def test_cutout_outside_the_volume_is_zeros(api: InProcess) -> None:
    r = api.get("/v1/em/cutout/0/1000:1010,0:5,0:5")
    assert r.status_code == 200
    assert r.content == bytes(10 * 5 * 5 * 2)


def test_npy_by_format_and_by_accept(api: InProcess, arrays: dict[str, np.ndarray]) -> None:
    want = arrays["rgb"][3:40, 5:33, 2:19, 1:3]
    for kwargs in ({"params": {"format": "npy"}}, {"headers": {"Accept": "application/x-npy"}}):
        r = api.get("/v1/rgb/cutout/0/3:40,5:33,2:19,1:3", **kwargs)
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-npy"
        arr = np.load(io.BytesIO(r.content))
        assert arr.flags.f_contiguous and arr.shape == (37, 28, 17, 2)
        np.testing.assert_array_equal(arr, want)
        assert int(r.headers["content-length"]) == len(r.content)


def test_format_parameter_wins_over_accept(api: InProcess) -> None:
    r = api.get("/v1/zst/cutout/0/0:4,0:4,0:4", params={"format": "raw"}, headers={"Accept": "application/x-npy"})
    assert r.headers["content-type"] == "application/octet-stream" and len(r.content) == 64


def test_npy_header_is_a_v1_header_numpy_reads() -> None:
    for dtype, shape in (("uint8", (1, 2, 3, 1)), ("uint64", (100000, 3, 2, 5)), ("float32", (7, 1, 1, 1))):
        head = npy_header(np.dtype(dtype), shape)
        assert len(head) % 64 == 0 and head[6:8] == b"\x01\x00"
        data = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape, order="F")
        np.testing.assert_array_equal(np.load(io.BytesIO(head + data.tobytes(order="F"))), data)


@pytest.mark.parametrize("bbox,word", [
    ("0:10,0:10", "bad bbox"),
    ("0:10,0:10,0:10,0:1,0:1", "bad bbox"),
    ("a:b,0:1,0:1", "bad bbox"),
    ("0:10,0:10,5:5", "axis z"),
    ("10:0,0:10,0:1", "axis x"),
    ("0:10,0:10,0:1,0:2", "channels 0:2"),
    ("0:10,0:10,0:1,x", "channel range"),
    ("0-10_0-10", "bad bbox"),
])
def test_bad_bbox_is_400_quoting_it(api: InProcess, bbox: str, word: str) -> None:
    body = assert_error(api.get(f"/v1/em/cutout/0/{bbox}"), 400, "bad_bbox", word)
    assert body["detail"]["bbox"] == bbox


def test_bad_parameters_are_400_never_422(api: InProcess) -> None:
    assert_error(api.get("/v1/em/cutout/zero/0:1,0:1,0:1"), 400, "bad_param", "mip")
    assert_error(api.put("/v1/em/cutout/zero/0:1,0:1,0:1", content=b"x"), 400, "bad_param", "mip")


def test_unknown_dataset_mip_and_route_are_404(api: InProcess) -> None:
    body = assert_error(api.get("/v1/nope/cutout/0/0:1,0:1,0:1"), 404, "not_found", "nope")
    assert "em" in body["detail"]["datasets"]
    assert_error(api.get("/v1/em/cutout/2/0:1,0:1,0:1"), 404, "not_found", "mip 2")
    assert_error(api.get("/v1/em/cutout/-1/0:1,0:1,0:1"), 404, "not_found", "mip -1")
    assert_error(api.get("/v1/nope/info"), 404, "not_found", "nope")
    assert_error(api.get("/v2/whatever"), 404, "not_found")


@pytest.mark.parametrize("kwargs", [{"params": {"format": "tiff"}}, {"headers": {"Accept": "image/png"}},
                                    {"headers": {"Accept": "application/x-npy;q=0"}}])
def test_unknown_format_is_406(api: InProcess, kwargs: dict) -> None:  # type: ignore[type-arg]
    assert_error(api.get("/v1/em/cutout/0/0:1,10:11,5:6", **kwargs), 406, "unsupported_format")


def test_too_large_is_413_with_a_chunk_aligned_split_that_tiles_the_box(api: InProcess, urls: dict[str, str]) -> None:
    # 4 MiB limit; 300x300x40 uint16 = 7.2 MB, reaching outside the volume on every side.
    bbox = "-100:200,-50:250,0:40"
    body = assert_error(api.get(f"/v1/em/cutout/0/{bbox}"), 413, "too_large", "4194304")
    assert body["detail"]["bytes"] == 300 * 300 * 40 * 2
    grid = bc.open(urls["em"]).grid
    covered = np.zeros((300, 300, 40), dtype=np.int32)
    for text in body["detail"]["split"]:
        spatial, _, chans = text.rpartition(",")
        assert chans == "0:1"
        piece = bc.Box.parse(spatial)
        assert piece.size * 2 <= 4 * 2**20
        for axis in range(3):  # every cut lies on a grid line or on the box's own edge
            for v in (piece.start[axis], piece.stop[axis]):
                assert v in ((-100, -50, 0)[axis], (200, 250, 40)[axis]) or \
                    (v - grid.voxel_offset[axis]) % grid.chunk_size[axis] == 0
        covered[piece.translate((100, 50, 0)).slices_in(bc.Box((0, 0, 0), (300, 300, 40)))] += 1
        r = api.head(f"/v1/em/cutout/0/{text}")
        assert r.status_code == 200
    assert (covered == 1).all()


def test_head_is_a_dry_run_that_needs_no_storage(api: InProcess) -> None:
    r = api.head("/v1/em/cutout/0/-64:86,10:110,5:75", params={"format": "npy"})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["x-shape"] == "150,100,70,1" and r.headers["x-chunks"] == str(3 * 2 * 3)
    header = npy_header(np.dtype("uint16"), (150, 100, 70, 1))
    assert int(r.headers["content-length"]) == 150 * 100 * 70 * 2 + len(header)


# -- chunks ----------------------------------------------------------------------------
def test_chunk_plan_lists_boxes_and_existence(api: InProcess) -> None:
    body = api.get("/v1/holes/chunks/0", params={"bbox": "0:100,0:64,0:40"}).json()
    assert body["count"] == 4
    got = {c["name"]: c["exists"] for c in body["chunks"]}
    assert got == {"0-64_0-64_0-32": True, "64-128_0-64_0-32": False, "0-64_0-64_32-64": False,
                   "64-128_0-64_32-64": False}
    assert body["chunks"][0]["key"] == "8_8_40/0-64_0-64_0-32" and body["chunks"][0]["grid"] == [0, 0, 0]
    whole = api.get("/v1/holes/chunks/0").json()
    assert whole["bbox"] == "0:128,0:128,0:64" and whole["count"] == 8
    assert_error(api.get("/v1/holes/chunks/0", params={"bbox": "0:1"}), 400, "bad_bbox")


def test_chunk_decoded_and_encoded(api: InProcess, urls: dict[str, str], arrays: dict[str, np.ndarray]) -> None:
    r = api.get("/v1/zst/chunks/0/64-128_64-96_32-64")
    assert r.status_code == 200 and r.headers["x-shape"] == "64,32,32,1"
    np.testing.assert_array_equal(body_array(r, "uint8"), arrays["zst"][64:128, 64:96, 32:64])
    npy = api.get("/v1/zst/chunks/0/64-128_64-96_32-64", params={"format": "npy"})
    np.testing.assert_array_equal(np.load(io.BytesIO(npy.content)), arrays["zst"][64:128, 64:96, 32:64])
    enc = api.get("/v1/zst/chunks/0/64-128_64-96_32-64", params={"format": "encoded"})
    assert enc.headers["x-encoding"] == "raw" and enc.headers["x-compression"] == "zstd"
    assert enc.content == bc.open(urls["zst"]).store.get("8_8_40/64-128_64-96_32-64")
    assert zstandard.ZstdDecompressor().decompress(enc.content) == r.content


def test_chunk_errors(api: InProcess) -> None:
    assert_error(api.get("/v1/holes/chunks/0/64-128_0-64_0-32"), 404, "missing_chunk", "64-128_0-64_0-32")
    assert_error(api.get("/v1/holes/chunks/0/64-128_0-64_0-32", params={"format": "encoded"}), 404, "missing_chunk")
    assert_error(api.get("/v1/holes/chunks/0/1-65_0-64_0-32"), 404, "not_found", "not on the chunk grid")
    assert_error(api.get("/v1/holes/chunks/0/0:64,0:64,0:32"), 400, "bad_param", "bad chunk name")


# -- Neuroglancer tree -----------------------------------------------------------------
def test_precomputed_info_is_the_datasets_info(api: InProcess, urls: dict[str, str]) -> None:
    r = api.get("/precomputed/em/info", headers={"Origin": "http://viewer.example"})
    assert r.json() == bc.open(urls["em"]).info
    assert r.headers["access-control-allow-origin"] == "*"
    assert "X-Shape" in r.headers["access-control-expose-headers"]


@pytest.mark.parametrize("name,chunk", [("zst", "0-64_0-64_0-32"), ("bl", "96-100_32-64_32-40"),
                                        ("gz", "64-128_64-96_32-64"), ("em", "64-86_74-110_69-75")])
def test_precomputed_chunk_is_plain_raw_or_gzip_when_accepted(api: InProcess, arrays: dict[str, np.ndarray],
                                                               name: str, chunk: str) -> None:
    box = bc.Box.parse(chunk)
    ba_key = "8_8_40"
    offset = {"em": (-64, 10, 5)}.get(name, (0, 0, 0))
    want = arrays[name][tuple(slice(a - o, b - o) for a, b, o in zip(box.start, box.stop, offset, strict=False))]
    plain = api.get(f"/precomputed/{name}/{ba_key}/{chunk}", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.content == want.tobytes(order="F")  # exactly the clipped chunk size
    zipped = api.get(f"/precomputed/{name}/{ba_key}/{chunk}", headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200
    assert zipped.content == plain.content  # httpx undid the Content-Encoding
    if name == "em":  # stored plain: sent as stored
        assert "content-encoding" not in zipped.headers
    else:  # gzip passed through, zstd and blosc transcoded, then gzip'd
        assert zipped.headers["content-encoding"] == "gzip"
        assert int(zipped.headers["content-length"]) != len(plain.content)


def test_precomputed_missing_chunk_is_404_with_cors(api: InProcess) -> None:
    r = api.get("/precomputed/holes/8_8_40/64-128_0-64_0-32", headers={"Origin": "http://viewer.example"})
    assert_error(r, 404, "missing_chunk")
    assert_error(api.get("/precomputed/holes/4_4_4/0-64_0-64_0-32"), 404, "not_found", "4_4_4")


def test_preflight_allows_the_viewers_requests(api: InProcess) -> None:
    r = api.options("/precomputed/em/info", headers={"Origin": "http://viewer.example",
                                                     "Access-Control-Request-Method": "GET",
                                                     "Access-Control-Request-Headers": "range"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "GET" in r.headers["access-control-allow-methods"] and r.headers["access-control-allow-headers"] == "range"


# -- writes ----------------------------------------------------------------------------
def test_put_needs_the_token(writable: Writable) -> None:
    api, urls, arrays = writable
    body = np.ones((64, 64, 32), dtype=np.uint8).tobytes(order="F")
    r = api.put("/v1/zst/cutout/0/0:64,0:64,0:32", content=body)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(api.put("/v1/zst/cutout/0/0:64,0:64,0:32", content=body,
                         headers={"Authorization": "Bearer wrong"}), 403, "forbidden")
    np.testing.assert_array_equal(bc.open(urls["zst"])[0:64, 0:64, 0:32], arrays["zst"][0:64, 0:64, 0:32])


def test_put_is_refused_by_a_read_only_server(api: InProcess) -> None:
    assert_error(api.put("/v1/zst/cutout/0/0:64,0:64,0:32", content=b"",
                         headers={"Authorization": f"Bearer {TOKEN}"}), 403, "writes_disabled")


def test_put_raw_and_npy_then_read_back_sees_the_write(writable: Writable,
                                                      rng: np.random.Generator) -> None:
    api, urls, _ = writable
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = api.get("/v1/em/cutout/0/-64:0,10:74,5:37")  # fills the cache with the old chunk
    new = rng.integers(0, 2**16, size=(64, 64, 32, 1), dtype=np.uint16)
    r = api.put("/v1/em/cutout/0/-64:0,10:74,5:37", content=new.tobytes(order="F"), headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["chunks"] == 1
    after = api.get("/v1/em/cutout/0/-64:0,10:74,5:37")
    assert after.content != before.content
    np.testing.assert_array_equal(body_array(after, "uint16"), new)
    np.testing.assert_array_equal(bc.open(urls["em"])[-64:0, 10:74, 5:37], new)
    # npy, 3-D, big-endian: converted; the box reaches past the volume's end (clipped, aligned).
    edge = rng.integers(0, 2**16, size=(22, 36, 6), dtype=np.uint16).astype(">u2")
    buf = io.BytesIO()
    np.save(buf, edge)
    r = api.put("/v1/em/cutout/0/64:86,74:110,69:75", content=buf.getvalue(),
                headers={**auth, "Content-Type": "application/x-npy"})
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(bc.open(urls["em"])[64:86, 74:110, 69:75, 0], edge.astype("<u2"))


def test_put_of_wrong_size_or_dtype_is_400_and_writes_nothing(
        writable: Writable) -> None:
    api, urls, arrays = writable
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = "/v1/zst/cutout/0/0:64,0:64,0:32"
    assert_error(api.put(url, content=bytes(64 * 64 * 32 - 1), headers=auth), 400, "bad_data", "131071")
    assert_error(api.put(url, content=bytes(64 * 64 * 32 + 1), headers=auth), 400, "bad_data")
    buf = io.BytesIO()
    np.save(buf, np.zeros((64, 64, 32), dtype=np.uint16))
    assert_error(api.put(url, content=buf.getvalue(), headers=auth), 400, "bad_data", "uint16")
    buf = io.BytesIO()
    np.save(buf, np.zeros((64, 64, 31), dtype=np.uint8))
    assert_error(api.put(url, content=buf.getvalue(), headers=auth), 400, "bad_data", "shape")
    assert_error(api.put(url, content=b"\x93NUMPY\x01\x00\x05\x00{'x'}", headers=auth), 400, "bad_data")
    np.testing.assert_array_equal(bc.open(urls["zst"])[0:64, 0:64, 0:32], arrays["zst"][0:64, 0:64, 0:32])


def test_unaligned_put_is_409_naming_the_nearest_aligned_box(
        writable: Writable) -> None:
    api, urls, arrays = writable
    body = assert_error(api.put("/v1/zst/cutout/0/1:64,0:64,0:32", content=bytes(63 * 64 * 32),
                                headers={"Authorization": f"Bearer {TOKEN}"}), 409, "unaligned", "0:64,0:64,0:32")
    assert body["detail"]["nearest"] == "0:64,0:64,0:32"
    np.testing.assert_array_equal(bc.open(urls["zst"])[:, :, :], arrays["zst"])
    assert_error(api.put("/v1/rgb/cutout/0/0:32,0:32,0:16,0:1", content=bytes(32 * 32 * 16),
                         headers={"Authorization": f"Bearer {TOKEN}"}), 409, "unaligned", "channels 0:1")


# -- operations ------------------------------------------------------------------------
def test_healthz_and_metrics(api: InProcess) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    api.get("/v1/zst/cutout/0/0:64,0:64,0:32")
    api.get("/v1/zst/cutout/0/0:64,0:64,0:32")
    api.get("/v1/nope/info")
    text = api.get("/metrics").text
    assert 'bigarrays_requests_total{method="GET",route="/v1/{ds}/cutout/{mip}/{bbox}",status="200"}' in text
    assert 'bigarrays_requests_total{method="GET",route="/v1/{ds}/info",status="404"}' in text
    assert "bigarrays_request_duration_seconds_bucket" in text
    values = {line.split(" ")[0]: float(line.split(" ")[1])
              for line in text.splitlines() if line.startswith("bigarrays_cache")}
    assert values["bigarrays_cache_hits_total"] >= 1 and values["bigarrays_cache_misses_total"] >= 1
    assert values["bigarrays_cache_bytes"] > 0 and values["bigarrays_cache_max_bytes"] == 64 * 2**20


def test_openapi_docs_are_served(api: InProcess) -> None:
    schema = api.get("/openapi.json").json()
    assert "/v1/{ds}/cutout/{mip}/{bbox}" in schema["paths"]
    assert api.get("/docs").status_code == 200


def test_storage_failure_is_502_not_403(tmp_path, urls: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    import os
    import shutil

    from bigarrays_server import Settings, create_app

    root = tmp_path / "broken"
    shutil.copytree(urls["zst"][len("file://"):], root)
    (bad,) = (root / "8_8_40").glob("0-64_0-64_0-32*")  # stored as .zstd, CloudVolume's convention
    bad.write_bytes(b"\x28\xb5\x2f\xfd garbage that is no zstd frame")
    (plain,) = (root / "8_8_40").glob("64-128_0-64_0-32*")
    os.chmod(plain, 0)
    api = InProcess(create_app(Settings(datasets={"b": f"file://{root}"})))
    try:
        assert_error(api.get("/v1/b/cutout/0/0:64,0:64,0:32"), 502, "bad_chunk", "0-64_0-64_0-32")
        assert_error(api.get("/precomputed/b/8_8_40/0-64_0-64_0-32"), 502, "bad_chunk", "0-64_0-64_0-32")
        if os.geteuid() != 0:  # root reads files whatever their mode
            assert_error(api.get("/precomputed/b/8_8_40/64-128_0-64_0-32"), 502, "upstream_denied")
    finally:
        os.chmod(plain, 0o644)
        api.close()
