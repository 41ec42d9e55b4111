"""A scale the server cannot read never stops it: that scale answers its own error, its files
still pass through, and the other scales and datasets serve; a changed info is picked up."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from bigarrays_server import Settings, create_app
from server_live import InProcess, LiveServer

import bigarrays_core as bc

VOXELS = (np.arange(64 * 64 * 32, dtype=np.uint32).reshape(64, 64, 32, 1) % 251).astype(np.uint8)


def hand_written(root: Path) -> str:
    """A dataset whose info has a good scale 0 (holding :data:`VOXELS`), a scale 1 of an
    encoding nobody knows and a scale 2 with a broken sharding spec (files of both on disk)."""
    url = f"file://{root}"
    ba = bc.create(url, dtype="uint8", size=(64, 64, 32), chunk_size=(32, 32, 32), num_mips=3,
                   downsample_factor=(2, 2, 1))
    ba[:, :, :] = VOXELS
    info = json.loads((root / "info").read_text())
    info["scales"][1]["encoding"] = "fancy_wavelets"
    info["scales"][2]["sharding"] = {"@type": "not_a_sharding_spec", "preshift_bits": 3}
    (root / "info").write_text(json.dumps(info))
    for k in (1, 2):
        (root / info["scales"][k]["key"]).mkdir(exist_ok=True)
        (root / info["scales"][k]["key"] / "0.shard").write_bytes(b"stored bytes of scale %d" % k)
    return url


@pytest.fixture
def odd(tmp_path: Path) -> tuple[str, str]:
    good = bc.create(f"file://{tmp_path / 'good'}", dtype="uint16", size=(40, 40, 8), chunk_size=(20, 20, 8))
    good[:, :, :] = 7
    return hand_written(tmp_path / "odd"), good.url


def test_the_readable_scales_and_datasets_serve(odd: tuple[str, str]) -> None:
    odd_url, good_url = odd
    api = InProcess(create_app(Settings(datasets={"odd": odd_url, "good": good_url})))
    try:
        got = api.get("/v1/odd/cutout/0/0:64,0:64,0:32")
        assert got.status_code == 200 and got.content == VOXELS.tobytes(order="F")
        assert api.get("/v1/good/cutout/0/0:40,0:40,0:8").content == np.full((40, 40, 8), 7, "<u2").tobytes()
        info = json.loads((Path(odd_url[len("file://"):]) / "info").read_text())
        for mip, words in ((1, "fancy_wavelets"), (2, "sharding")):
            for url in (f"/v1/odd/cutout/{mip}/0:8,0:8,0:8", f"/v1/odd/chunks/{mip}/0-32_0-32_0-32",
                        f"/v1/odd/chunks/{mip}", f"/v1/odd/image/{mip}/0:8,0:8,0:1"):
                r = api.get(url)
                assert r.status_code == 502, (url, r.text)
                body = r.json()
                assert body["error"] == "bad_dataset" and words in body["message"], body
                assert f"mip {mip}" in body["message"] and info["scales"][mip]["key"] in body["message"]
            key = info["scales"][mip]["key"]
            stored = api.get(f"/precomputed/odd/{key}/0.shard")  # files pass through as stored
            assert stored.status_code == 200 and stored.content == b"stored bytes of scale %d" % mip
        assert api.get("/precomputed/odd/info").json() == info  # the info as stored, for Neuroglancer
        scales = api.get("/v1/odd/info").json()["scales"]
        assert [s["readable"] for s in scales] == [True, False, False]
        assert scales[1]["error"]["error"] == "bad_dataset" and "fancy_wavelets" in scales[1]["error"]["message"]
    finally:
        api.close()


def test_a_real_server_starts_with_an_unreadable_scale(odd: tuple[str, str], tmp_path: Path) -> None:
    import httpx

    odd_url, good_url = odd
    server = LiveServer({"odd": odd_url, "good": good_url}, str(tmp_path / "server.log"))
    try:
        assert httpx.get(f"{server.url}/v1/odd/cutout/0/0:4,0:4,0:4").status_code == 200
        assert httpx.get(f"{server.url}/v1/odd/cutout/1/0:4,0:4,0:4").status_code == 502
        assert httpx.get(f"{server.url}/v1/good/info").status_code == 200
        assert "fancy_wavelets" in server.log()  # the operator is told which scale is not served
    finally:
        server.stop()


def test_a_changed_info_is_picked_up(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'grow'}"
    ba = bc.create(url, dtype="uint8", size=(32, 32, 8), chunk_size=(16, 16, 8), resolution=(8, 8, 40))
    ba[:, :, :] = 3
    api = InProcess(create_app(Settings(datasets={"grow": url}, cache_revalidate=0.05)))
    try:
        assert api.get("/v1/grow/info").json()["info"]["scales"][0]["resolution"] == [8, 8, 40]
        info = json.loads((tmp_path / "grow" / "info").read_text())
        info["scales"][0]["resolution"] = [4, 4, 40]
        tmp = tmp_path / "grow" / "info.new"
        tmp.write_text(json.dumps(info))
        os.replace(tmp, tmp_path / "grow" / "info")
        deadline = time.monotonic() + 10
        while api.get("/precomputed/grow/info").json()["scales"][0]["resolution"] != [4, 4, 40]:
            assert time.monotonic() < deadline, "the server never read the new info"
            time.sleep(0.05)
        assert api.get("/v1/grow/info").json()["scales"][0]["resolution"] == [4, 4, 40]
    finally:
        api.close()
