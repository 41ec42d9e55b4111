"""``/v1/{ds}/image/{mip}/{bbox}``: PNG and JPEG planes, their orientation, 16-bit PNGs,
RGB, segment colours, and the errors of what an image cannot show."""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
import pytest
from bigarrays_server.images import segment_colors
from PIL import Image
from server_live import InProcess

import bigarrays_core as bc


def png(api: InProcess, url: str) -> np.ndarray:
    r = api.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return np.asarray(imagecodecs.png_decode(r.content))


@pytest.mark.parametrize("bbox,thin,axes", [("-64:86,10:110,20:21", 2, "x,y"), ("-64:86,40:41,5:75", 1, "x,z"),
                                           ("3:4,10:110,5:75", 0, "y,z")])
def test_planes_are_oriented_like_boss_and_dvid(api: InProcess, urls: dict[str, str], bbox: str, thin: int,
                                                axes: str) -> None:
    want = bc.open(urls["em"]).read(bc.Box.parse(bbox))[..., 0]
    plane = np.squeeze(want, axis=thin).T  # rows: the second remaining axis; columns: the first
    r = api.get(f"/v1/em/image/0/{bbox}")
    assert r.headers["x-image-axes"] == axes and r.headers["x-bbox"] == bbox + ",0:1"
    got = np.asarray(imagecodecs.png_decode(r.content))
    assert got.dtype == np.uint16 and got.shape == plane.shape  # 16-bit PNG of uint16 voxels
    np.testing.assert_array_equal(got, plane)
    assert Image.open(io.BytesIO(r.content)).size == (plane.shape[1], plane.shape[0])


def test_uint8_png_and_jpeg_and_rgb(api: InProcess, urls: dict[str, str]) -> None:
    want = bc.open(urls["zst"]).read(bc.Box.parse("0:128,0:96,7:8"))[:, :, 0, 0].T
    np.testing.assert_array_equal(png(api, "/v1/zst/image/0/0:128,0:96,7:8"), want)
    j = api.get("/v1/zst/image/0/0:128,0:96,7:8", params={"format": "jpeg", "quality": 95})
    assert j.status_code == 200 and j.headers["content-type"] == "image/jpeg"
    decoded = np.asarray(Image.open(io.BytesIO(j.content)))
    assert decoded.shape == want.shape
    assert np.abs(decoded.astype(int) - want.astype(int)).mean() < 40  # lossy, but this image
    assert api.get("/v1/zst/image/0/0:128,0:96,7:8", headers={"Accept": "image/jpeg"}).headers["content-type"] \
        == "image/jpeg"
    rgb = bc.open(urls["rgb"]).read(bc.Box.parse("0:64,0:48,3:4"))[:, :, 0, :].transpose(1, 0, 2)
    np.testing.assert_array_equal(png(api, "/v1/rgb/image/0/0:64,0:48,3:4"), rgb)
    one = bc.open(urls["rgb"]).read(bc.Box.parse("0:64,0:48,3:4"), (2, 3))[:, :, 0, 0].T
    np.testing.assert_array_equal(png(api, "/v1/rgb/image/0/0:64,0:48,3:4,2:3"), one)


def test_segments_get_one_stable_colour_each(api: InProcess, urls: dict[str, str]) -> None:
    ids = bc.open(urls["seg"]).read(bc.Box.parse("0:64,0:64,9:10"))[:, :, 0, 0].T
    got = png(api, "/v1/seg/image/0/0:64,0:64,9:10")
    assert got.shape == ids.shape + (3,) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, segment_colors(ids))
    for value in np.unique(ids):  # one colour per id, different ids differ, 0 is black
        colours = {tuple(c) for c in got[ids == value]}
        assert len(colours) == 1
        assert (colours == {(0, 0, 0)}) == (value == 0)
    assert len({tuple(c) for c in segment_colors(np.unique(ids))}) == len(np.unique(ids))
    fixed = segment_colors(np.array([1, 2, 2**40 + 3], dtype=np.uint64))
    assert fixed.tolist() == segment_colors(np.array([1, 2, 2**40 + 3], dtype=np.uint64)).tolist()
    assert (fixed >= 64).all()


def test_what_an_image_cannot_show_is_a_clear_error(api: InProcess) -> None:
    for url, status, words in (
            ("/v1/em/image/0/0:10,0:10,0:10", 400, "one voxel thick"),
            ("/v1/em/image/0/0:10,0:10,0:1?format=jpeg", 406, "8-bit"),
            ("/v1/em/image/0/0:10,0:10,0:1?format=gif", 406, "gif"),
            ("/v1/rgb/image/0/0:10,0:10,0:1,0:2", 406, "1 (grey) or 3 (RGB)"),
            ("/v1/em/image/0/0:100000,0:100000,0:1", 413, "limit"),
            ("/v1/nope/image/0/0:1,0:1,0:1", 404, "nope")):
        r = api.get(url)
        assert r.status_code == status, (url, r.text)
        assert words in r.json()["message"], (url, r.json())
