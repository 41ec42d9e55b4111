"""Peers read a real ``bigarrays serve``'s precomputed tree: TensorStore's http kvstore (byte
ranges included), unsharded and sharded (shard files pass through with Range), and
CloudVolume; sharded cutouts equal TensorStore's own read once the core reads sharded scales."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from server_live import LiveServer, make_datasets, tensorstore_sharded

import bigarrays_core as bc

ts = pytest.importorskip("tensorstore")

Served = tuple[LiveServer, dict[str, str], dict[str, object]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("interop")
    urls, _ = make_datasets(str(root / "data"), np.random.default_rng(21))
    rng = np.random.default_rng(22)
    image = rng.integers(0, 256, size=(100, 70, 40, 1), dtype=np.uint8)
    labels = (rng.integers(0, 5, size=(64, 48, 20, 1)) * 2**40 + rng.integers(0, 3, size=(64, 48, 20, 1))).astype(
        np.uint64)
    local = {"sharded": tensorstore_sharded(str(root / "sharded"), image),
             "sharded_seg": tensorstore_sharded(str(root / "sharded_seg"), labels, chunk_size=(16, 16, 8),
                                                encoding="compressed_segmentation", layer_type="segmentation")}
    urls = {**urls, "sharded": f"file://{root / 'sharded'}", "sharded_seg": f"file://{root / 'sharded_seg'}"}
    server = LiveServer(urls, str(root / "server.log"), workers=2)
    yield server, urls, local
    server.stop()


def test_tensorstore_http_kvstore_reads_byte_ranges(served: Served) -> None:
    """Once "Requested byte range [0, 100) was ignored by server"."""
    server, urls, _ = served
    kv = ts.KvStore.open({"driver": "http", "base_url": f"{server.url}/precomputed/em/"}).result()
    with open(urls["em"][len("file://"):] + "/8_8_40/0-64_10-74_5-37", "rb") as f:
        stored = f.read()
    part = kv.read("8_8_40/0-64_10-74_5-37", byte_range=slice(0, 100)).result()
    assert part.state == "value" and part.value == stored[:100]
    whole = kv.read("8_8_40/0-64_10-74_5-37").result()
    assert whole.value == stored
    tail = kv.read("8_8_40/0-64_10-74_5-37", byte_range=slice(len(stored) - 10, None)).result()
    assert tail.value == stored[-10:]
    assert kv.read("8_8_40/0-64_10-74_5-38").result().state == "missing"
    # Its conditional read (If-None-Match with the ETag it got) is answered "not modified".
    again = kv.read("8_8_40/0-64_10-74_5-37", if_not_equal=whole.stamp.generation).result()
    assert again.state == "unspecified" and again.stamp.generation == whole.stamp.generation


@pytest.mark.parametrize("name", ["em", "zst", "gz", "seg", "holes"])
def test_tensorstore_reads_the_served_tree_as_the_library_does(served: Served, name: str) -> None:
    server, urls, _ = served
    remote = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"{server.url}/precomputed/{name}/"}).result()
    local = bc.open(urls[name])
    got = remote[ts.d[:].translate_to[0]].read(order="F").result()
    np.testing.assert_array_equal(np.asarray(got), local.read(local.bounds))


@pytest.mark.parametrize("name", ["sharded", "sharded_seg"])
def test_tensorstore_reads_served_shards_equal_to_its_own_local_read(served: Served, name: str) -> None:
    server, _, local = served
    remote = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"{server.url}/precomputed/{name}/"}).result()
    want = local[name].read(order="F").result()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(remote.read(order="F").result(), want)
    part = remote[7:61, 3:40, 2:19].read(order="F").result()
    np.testing.assert_array_equal(part, want[7:61, 3:40, 2:19])


def test_shard_files_pass_through_with_ranges(served: Served) -> None:
    import glob
    import os

    import httpx

    server, urls, _ = served
    root = urls["sharded"][len("file://"):]
    (shard,) = sorted(glob.glob(os.path.join(root, "*", "*.shard")))[:1]
    key = os.path.relpath(shard, root)
    with open(shard, "rb") as f:
        stored = f.read()
    url = f"{server.url}/precomputed/sharded/{key}"
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(stored))
    assert head.headers["accept-ranges"] == "bytes" and "content-encoding" not in head.headers
    r = httpx.get(url, headers={"Range": "bytes=16-47", "Accept-Encoding": "gzip, zstd"})
    assert r.status_code == 206 and r.content == stored[16:48] and "content-encoding" not in r.headers
    assert r.headers["content-range"] == f"bytes 16-47/{len(stored)}"
    assert httpx.get(url, headers={"Range": f"bytes={len(stored)}-"}).status_code == 416


@pytest.mark.parametrize("name", ["sharded", "sharded_seg"])
def test_sharded_cutouts_equal_tensorstore(served: Served, name: str) -> None:
    import httpx

    server, urls, local = served
    want = np.asarray(local[name].read(order="F").result())  # type: ignore[attr-defined]
    with bc.Client(server.url) as client:
        np.testing.assert_array_equal(client[name][:, :, :], want)
        np.testing.assert_array_equal(client[name][5:50, 9:33, 1:17], want[5:50, 9:33, 1:17])
    cx, cy, cz = bc.open(urls[name]).chunk_size
    chunk = httpx.get(f"{server.url}/v1/{name}/chunks/0/0-{cx}_0-{cy}_0-{cz}", headers={"Accept-Encoding": "identity"})
    assert chunk.status_code == 200, chunk.text[:500]
    assert chunk.content == want[0:cx, 0:cy, 0:cz].tobytes(order="F")
    assert httpx.head(f"{server.url}/v1/{name}/cutout/0/0:8,0:8,0:8").status_code == 200


def test_cloudvolume_reads_the_served_tree(served: Served) -> None:
    cloudvolume = pytest.importorskip("cloudvolume")
    server, urls, _ = served
    vol = cloudvolume.CloudVolume(f"precomputed://{server.url}/precomputed/zst", progress=False, fill_missing=True)
    local = bc.open(urls["zst"])
    np.testing.assert_array_equal(np.asarray(vol[:, :, :]), local.read(local.bounds))
