"""``bigarrays serve``: a Neuroglancer link for every dataset, and the new options reach the server."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import httpx
import numpy as np
from server_live import LiveServer

import bigarrays_core as bc


def test_serve_prints_a_neuroglancer_link_per_dataset_and_takes_the_http_options(tmp_path: Path) -> None:
    img = bc.create(f"file://{tmp_path / 'img'}", dtype="uint8", size=(64, 48, 16), chunk_size=(32, 32, 16),
                    resolution=(4, 4, 40), voxel_offset=(10, 20, 30))
    img[:, :, :] = 1
    seg = bc.create(f"file://{tmp_path / 'seg'}", dtype="uint64", size=(32, 32, 8), chunk_size=(16, 16, 8),
                    encoding="compressed_segmentation")
    seg[:, :, :] = np.uint64(7)
    server = LiveServer({"img": img.url, "seg": seg.url}, str(tmp_path / "server.log"),
                        args=["--cache-control", "public, max-age=60", "--cache-revalidate", "0",
                              "--storage-timeout", "5", "--expose-storage-urls"])
    try:
        out = server.log()
        links = [line.strip() for line in out.splitlines() if "neuroglancer-demo.appspot.com" in line]
        assert len(links) == 2, out
        layers = {}
        for link in links:
            state = json.loads(urllib.parse.unquote(link.split("#!", 1)[1]))
            (layer,) = state["layers"]
            layers[layer["name"]] = (layer, state)
        img_layer, img_state = layers["img"]
        assert img_layer["source"] == f"precomputed://{server.url}/precomputed/img" and img_layer["type"] == "image"
        assert img_state["dimensions"]["z"] == [40e-9, "m"] and img_state["position"] == [42, 44, 38]
        assert layers["seg"][0]["type"] == "segmentation"
        assert f"precomputed://{server.url}/precomputed/seg" in out
        r = httpx.get(f"{server.url}/precomputed/img/4_4_40/10-42_20-52_30-46")
        assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=60"
        assert httpx.get(f"{server.url}/v1/datasets").json()[0]["url"] == img.url  # --expose-storage-urls
    finally:
        server.stop()
