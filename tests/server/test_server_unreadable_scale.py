"""A dataset with one scale bigarrays cannot read: the server starts and serves the others.

CloudVolume makes datasets whose upper scales use encodings a reader may lack (or that no
reader knows). The scale's problem is confined to that scale: requests for it answer the
scale's error (502 ``bad_dataset``, naming the scale), every other scale is served.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from bigarrays_server import Settings, create_app
from server_live import InProcess

import bigarrays_core as bc


def test_the_server_starts_and_serves_the_readable_scales(tmp_path: Path) -> None:
    url = (tmp_path / "ds").as_uri()
    ba = bc.create(url, dtype="uint8", size=(64, 64, 16), chunk_size=(32, 32, 16), num_mips=3)
    data = np.arange(64 * 64 * 16, dtype=np.uint8).reshape(64, 64, 16, 1)
    ba[:, :, :] = data
    ba.at_mip(1)[:, :, :] = data[::2, ::2]
    raw = ba.info
    raw["scales"][2]["encoding"] = "webp2"
    with open(os.path.join(tmp_path, "ds", "info"), "w") as f:
        json.dump(raw, f)

    api = InProcess(create_app(Settings(datasets={"em": url})))
    try:
        got = api.get("/v1/em/cutout/0/0:64,0:64,0:16")
        assert got.status_code == 200
        assert np.frombuffer(got.content, np.uint8).reshape(64, 64, 16, order="F").tolist() == data[..., 0].tolist()
        assert api.get("/v1/em/cutout/1/0:32,0:32,0:16").status_code == 200
        assert api.get("/precomputed/em/2_2_1/0-32_0-32_0-16").status_code == 200
        bad = api.get("/v1/em/cutout/2/0:16,0:16,0:16")
        assert bad.status_code == 502
        body = bad.json()
        assert body["error"] == "bad_dataset"
        assert "scales[2].encoding" in body["message"] and "webp2" in body["message"]
        # The unreadable scale's files still pass through /precomputed, as they are stored (a
        # viewer that knows the encoding reads them). An absent one answers the scale's error:
        # the server cannot tell a missing chunk from a file its reader would have found.
        stored = b"\x00webp2 bytes bigarrays cannot decode"
        (tmp_path / "ds" / "4_4_1").mkdir(exist_ok=True)
        (tmp_path / "ds" / "4_4_1" / "0-16_0-16_0-16").write_bytes(stored)
        passed = api.get("/precomputed/em/4_4_1/0-16_0-16_0-16")
        assert passed.status_code == 200 and passed.content == stored
        absent = api.get("/precomputed/em/4_4_1/16-32_0-16_0-16")
        assert absent.status_code == 502 and "webp2" in absent.json()["message"]
        assert api.get("/v1/em/cutout/3/0:16,0:16,0:16").status_code == 404
    finally:
        api.close()
