"""The ``/precomputed`` tree transcodes what Neuroglancer cannot decode (crackle, fpzip,
zfpc, brotli, zstd, blosc; sharded scales of these served unsharded) and passes through
what it can (compresso, jxl): the served info describes what is served, and TensorStore and
CloudVolume reading the served tree of a real ``bigarrays serve`` get exactly the voxels
bigarrays reads from the source. Transcoded chunks keep ETag, Range and 304 semantics."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from server_live import LiveServer

import bigarrays_core as bc

#: name -> (create arguments, what the served scale's encoding must be)
SPECS: dict[str, tuple[dict[str, Any], str]] = {
    "crackle": (dict(dtype="uint64", encoding="crackle", layer_type="segmentation", num_mips=2),
                "compressed_segmentation"),
    "crackle8": (dict(dtype="uint8", encoding="crackle", layer_type="segmentation"), "raw"),
    "fpzip": (dict(dtype="float32", encoding="fpzip"), "raw"),
    "zfpc": (dict(dtype="float32", encoding="zfpc", encoding_settings={"zfpc_tolerance": 0.01}), "raw"),
    "kempressed": (dict(dtype="float32", encoding="kempressed"), "raw"),
    "zstd": (dict(dtype="uint16", compression="zstd"), "raw"),
    "br": (dict(dtype="uint16", compression="br"), "raw"),
    "blosc": (dict(dtype="uint32", encoding="compressed_segmentation", compression="blosc",
                   layer_type="segmentation"), "compressed_segmentation"),
    "sharded_crackle": (dict(dtype="uint32", encoding="crackle", layer_type="segmentation", sharding=True),
                        "compressed_segmentation"),
    "sharded_fpzip": (dict(dtype="float32", encoding="fpzip", sharding=True), "raw"),
    "compresso": (dict(dtype="uint64", encoding="compresso", layer_type="segmentation"), "compresso"),
    "jxl": (dict(dtype="uint8", encoding="jxl"), "jxl"),
}
SIZE = (70, 50, 24)
CHUNK = (32, 32, 16)
LOSSLESS_TRANSCODED = ["crackle", "crackle8", "fpzip", "zstd", "br", "blosc", "sharded_crackle", "sharded_fpzip"]


def _voxels(rng: np.random.Generator, dtype: str) -> np.ndarray:
    shape = (*SIZE, 1)
    if dtype == "float32":
        x, y, z = np.meshgrid(*(np.arange(n) for n in SIZE), indexing="ij")
        return (np.sin(x / 7.0) * np.cos(y / 5.0) + z / 3.0).astype(np.float32)[..., None]
    if dtype == "uint8":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    labels = rng.integers(0, 6, size=(SIZE[0] // 5 + 1, SIZE[1] // 5 + 1, SIZE[2] // 4 + 1))
    big = labels.repeat(5, 0).repeat(5, 1).repeat(4, 2)[:SIZE[0], :SIZE[1], :SIZE[2]]
    out = big.astype(np.dtype(dtype))[..., None]
    if dtype == "uint64":
        out = out * (2**40 + 3)
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str], str]]:
    root = tmp_path_factory.mktemp("transcoding")
    rng = np.random.default_rng(1616)
    urls = {}
    for name, (spec, _) in SPECS.items():
        url = f"file://{root / name}"
        ba = bc.create(url, size=SIZE, chunk_size=CHUNK, resolution=(8, 8, 8), **spec)
        ba.write(ba.bounds, _voxels(rng, spec["dtype"]))
        urls[name] = url
    server = LiveServer(urls, str(root / "server.log"), args=["--cache-revalidate", "0"])
    yield server, urls, str(root)
    server.stop()


def _info(server: LiveServer, name: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/precomputed/{name}/info")
    assert r.status_code == 200
    return r.json()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_served_info_describes_what_is_served(served: tuple[LiveServer, dict[str, str], str], name: str) -> None:
    server, _, root = served
    info = _info(server, name)
    with open(os.path.join(root, name, "info")) as f:
        stored = json.load(f)
    for mine, theirs in zip(info["scales"], stored["scales"], strict=True):
        assert mine["encoding"] == SPECS[name][1]
        assert "compression" not in mine
        assert "sharding" not in mine or SPECS[name][1] == theirs["encoding"] and "compression" not in theirs
        if mine["encoding"] == "compressed_segmentation" and theirs["encoding"] != mine["encoding"]:
            assert mine["compressed_segmentation_block_size"] == [8, 8, 8]
        assert "zfpc_tolerance" not in mine
        assert {k: v for k, v in mine.items() if k not in ("encoding", "compressed_segmentation_block_size")} == \
            {k: v for k, v in theirs.items() if k not in ("encoding", "compression", "sharding", "zfpc_tolerance",
                                                            "compressed_segmentation_block_size")}
    # /v1 still describes the dataset as stored.
    assert httpx.get(f"{server.url}/v1/{name}/info").json()["info"]["scales"][0]["encoding"] == \
        stored["scales"][0]["encoding"]


@pytest.mark.parametrize("name", [*LOSSLESS_TRANSCODED, "zfpc", "kempressed"])
def test_tensorstore_reads_the_transcoded_tree_as_bigarrays_reads_the_source(
        served: tuple[LiveServer, dict[str, str], str], name: str) -> None:
    ts = pytest.importorskip("tensorstore")
    server, urls, _ = served
    remote = ts.open({"driver": "neuroglancer_precomputed",
                      "kvstore": f"{server.url}/precomputed/{name}/"}).result()
    local = bc.open(urls[name])
    got = np.asarray(remote[ts.d[:].translate_to[0]].read(order="F").result())
    np.testing.assert_array_equal(got, local.read(local.bounds))
    assert got.any()


@pytest.mark.parametrize("name", [*LOSSLESS_TRANSCODED, "zfpc", "kempressed", "compresso", "jxl"])
def test_cloudvolume_reads_the_served_tree_as_bigarrays_reads_the_source(
        served: tuple[LiveServer, dict[str, str], str], name: str) -> None:
    cloudvolume = pytest.importorskip("cloudvolume")
    server, urls, _ = served
    vol = cloudvolume.CloudVolume(f"precomputed://{server.url}/precomputed/{name}", progress=False,
                                  fill_missing=False)
    local = bc.open(urls[name])
    np.testing.assert_array_equal(np.asarray(vol[:, :, :]), local.read(local.bounds))
    if name == "crackle":
        vol1 = cloudvolume.CloudVolume(f"precomputed://{server.url}/precomputed/{name}", mip=1, progress=False,
                                       fill_missing=True)
        mip1 = bc.open(urls[name], mip=1)
        np.testing.assert_array_equal(np.asarray(vol1[:, :, :]), mip1.read(mip1.bounds))


def test_transcoded_chunks_keep_etag_range_and_304(served: tuple[LiveServer, dict[str, str], str]) -> None:
    server, urls, root = served
    url = f"{server.url}/precomputed/crackle/8_8_8/32-64_0-32_0-16"
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    ba = bc.open(urls["crackle"])
    codec = bc.codecs.chunk_codec("compressed_segmentation", "uint64", 1,
                                  {"compressed_segmentation_block_size": [8, 8, 8]})
    np.testing.assert_array_equal(codec.decode(plain.content, (32, 32, 16, 1)), ba[32:64, 0:32, 0:16])
    etag = plain.headers["etag"]
    assert httpx.get(url, headers={"Accept-Encoding": "identity"}).headers["etag"] == etag  # deterministic
    # 304 for the tag it got; a Range is a slice of that same representation.
    assert httpx.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": etag}).status_code == 304
    part = httpx.get(url, headers={"Range": "bytes=10-99", "Accept-Encoding": "gzip"})
    assert part.status_code == 206 and "content-encoding" not in part.headers
    assert part.content == plain.content[10:100] and part.headers["etag"] == etag
    head = httpx.head(url, headers={"Accept-Encoding": "identity"})
    assert head.headers["etag"] == etag and int(head.headers["content-length"]) == len(plain.content)
    # gzip on the wire: another representation, another tag; the same bytes inside.
    zipped = httpx.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["etag"] != etag
    assert zipped.content == plain.content  # httpx undid the gzip
    with httpx.Client() as client, client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as raw:
        assert gzip.decompress(b"".join(raw.iter_raw())) == plain.content
    # The chunk rewritten: a new tag, the new voxels; the old tag no longer gives a 304.
    new = np.full((32, 32, 16, 1), 7, dtype=np.uint64)
    ba[32:64, 0:32, 0:16] = new
    fresh = httpx.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    np.testing.assert_array_equal(codec.decode(fresh.content, (32, 32, 16, 1)), new)


def test_missing_transcoded_chunk_is_404(served: tuple[LiveServer, dict[str, str], str]) -> None:
    server, _, root = served
    os.remove(os.path.join(root, "fpzip", "8_8_8", "64-70_32-50_16-24.gz"))  # gzipped: the default for fpzip
    r = httpx.get(f"{server.url}/precomputed/fpzip/8_8_8/64-70_32-50_16-24")
    assert r.status_code == 404
    assert httpx.get(f"{server.url}/precomputed/fpzip/8_8_8/64-70_32-50_16-25").status_code == 404
