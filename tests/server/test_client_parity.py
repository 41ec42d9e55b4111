"""The REST client's RemoteArray behaves as a BigArray: the same writes taken or refused, the
same chunk plans, resolution, ``np.asarray`` and iteration; against a real server process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from script_server import ScriptServer
from server_live import make_datasets

import bigarrays_core as bc

TOKEN = "parity-token"
SHAPE = (16, 16, 8)


class Site:
    def __init__(self, server: ScriptServer, local: dict[str, str], served: dict[str, str]) -> None:
        self.server = server
        self.local = local  # copies the library writes to
        self.served = served  # what the server serves (and the client writes to)
        self.client = bc.Client(server.url, token=TOKEN, retries=0)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = str(tmp_path_factory.mktemp("parity"))
    urls, _ = make_datasets(os.path.join(root, "served"), np.random.default_rng(11))
    served = {name: urls[name] for name in ("em", "holes", "rgb")}
    local = {}
    for name, dtype in (("f32", "float32"), ("u8", "uint8"), ("i16", "int16")):
        for where, table in (("served", served), ("local", local)):
            table[name] = f"file://{os.path.join(root, where, name)}"
            bc.create(table[name], dtype=dtype, size=SHAPE, chunk_size=(8, 8, 8), resolution=(4, 4, 30))
    server = ScriptServer(served, os.path.join(root, "server.log"), write_token=TOKEN, cache_mb=0,
                          max_plan_chunks=4)
    site = Site(server, local, served)
    try:
        yield site
    finally:
        site.client.close()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _nested(value: float, shape: tuple[int, ...]) -> list[Any]:
    out: list[Any] = np.full(shape, value, dtype=np.float64).tolist()
    return out


X, Y, Z = slice(0, 8), slice(8, 16), slice(0, 8)

#: (dataset, index, value): each is written through the library and through the client.
CASES: list[tuple[str, Any, Any]] = [
    ("f32", (X, Y, Z), float("nan")),
    ("f32", (X, Y, Z), float("inf")),
    ("f32", (X, Y, Z), -0.0),
    ("f32", (X, Y, Z), 1.5),
    ("f32", (X, Y, Z), 0.1),  # no float32 holds 0.1: refused both ways
    ("f32", (X, Y, Z), np.float32("nan")),
    ("f32", (X, Y, Z), _nested(float("nan"), (8, 8, 8))),
    ("f32", (X, Y, Z), np.arange(512).reshape(8, 8, 8).tolist()),
    ("f32", (X, Y, Z), [[[2**60 + 1] * 8] * 8] * 8),
    ("f32", (X, Y, Z), np.zeros((8, 8, 8), dtype=np.float64)),
    ("f32", (X, Y, Z), np.zeros((8, 8, 8), dtype=np.int16)),
    ("u8", (X, Y, Z), np.full((8, 8, 8), 255).tolist()),
    ("u8", (X, Y, Z), np.full((8, 8, 8), 256).tolist()),
    ("u8", (X, Y, Z), [[[1, 2]]]),
    ("u8", (X, Y, Z), 300),
    ("u8", (X, Y, Z), -1),
    ("u8", (X, Y, Z), True),
    ("u8", (X, Y, Z), 2.0),
    ("u8", (X, Y, Z), np.float64(2.0)),
    ("u8", (X, Y, Z), "7"),
    ("u8", (X, Y, Z), None),
    ("u8", (X, Y, 3), np.arange(64, dtype=np.uint8).reshape(8, 8)),
    ("u8", (X, Y, Z, 0), np.ones((8, 8, 8), dtype=np.uint8)),
    ("u8", (X, Y, Z), np.ones((8, 8, 7), dtype=np.uint8)),
    ("u8", (slice(0, 0), Y, Z), 5),  # an empty selection writes nothing
    ("u8", (slice(100, 108), Y, Z), 5),  # wholly outside
    ("u8", (slice(12, 20), Y, Z), 5),  # partly outside: clipped, and then not chunk-aligned
    ("u8", (slice(8, 20), Y, Z), np.full((12, 8, 8), 9, dtype=np.uint8)),  # partly outside, aligned inside
    ("i16", (X, Y, Z), np.full((8, 8, 8), -5, dtype=">i2")),
    ("i16", (X, Y, Z), np.full((8, 8, 8), 40000).tolist()),
]


def _outcome(target: Any, name: str, index: Any, value: Any) -> tuple[str, Any]:
    try:
        target[index] = value
    except bc.BigArraysError as exc:
        return type(exc).__name__, exc
    return "ok", None


@pytest.mark.parametrize(("name", "index", "value"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_the_same_write_gives_the_same_result_locally_and_through_a_server(site: Site, name: str, index: Any,
                                                                           value: Any) -> None:
    local = bc.open(site.local[name])
    remote = site.client[name]
    local[:, :, :] = 0
    remote[:, :, :] = 0
    here, here_exc = _outcome(local, name, index, value)
    there, there_exc = _outcome(remote, name, index, value)
    assert here == there, (here_exc, there_exc)
    if here == "WriteDataError":  # refused before anything is sent, by the same coercion
        assert str(here_exc) == str(there_exc)
    got_here, got_there = local[:, :, :], remote[:, :, :]
    assert got_here.dtype == got_there.dtype
    np.testing.assert_array_equal(got_here, got_there)  # NaN equals NaN here
    assert (np.signbit(got_here) == np.signbit(got_there)).all()


def test_chunks_missing_chunks_and_resolution_as_a_bigarray(site: Site) -> None:
    for name in ("em", "holes", "rgb"):
        ba, remote = bc.open(site.served[name]), site.client[name]
        assert remote.resolution == ba.resolution and isinstance(remote.resolution[0], float)
        assert remote.at_mip(remote.num_mips - 1).resolution == ba.at_mip(ba.num_mips - 1).resolution
        # The server lists at most 4 chunks per plan: bigger plans come back split and are joined.
        for box in (None, "-70:20,0:60,0:40", bc.Box((60, 60, 0), (200, 200, 100)), "0:1,0:1,0:1",
                    bc.Box((1000, 0, 0), (1001, 1, 1)), "5:5,0:10,0:10"):
            assert remote.chunks(box) == ba.chunks(box), (name, box)
            assert remote.missing_chunks(box) == ba.missing_chunks(box), (name, box)
    holes = site.client["holes"]
    assert len(holes.chunks()) == 8 and [r.name for r in holes.missing_chunks()] == [
        r.name for r in bc.open(site.served["holes"]).chunks() if r.name != "0-64_0-64_0-32"]
    assert all(isinstance(r, bc.ChunkRef) for r in holes.chunks())


def test_asarray_and_iteration_as_a_bigarray(site: Site) -> None:
    remote, ba = site.client["rgb"], bc.open(site.served["rgb"])
    out = np.asarray(remote)
    assert out.shape == ba.shape and out.dtype == ba.dtype
    np.testing.assert_array_equal(out, np.asarray(ba))
    remote.max_array_bytes = 1000
    with pytest.raises(bc.TooLargeError, match="over the limit of 1000 bytes"):
        np.asarray(remote)
    with pytest.raises(TypeError, match="RemoteArray is not iterable"):
        iter(remote)
    with pytest.raises(ValueError, match="copy=False"):
        np.asarray(site.client["rgb"], copy=False)
