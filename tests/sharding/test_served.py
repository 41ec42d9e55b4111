"""A sharded dataset behind the server: cutouts, the chunk plan and single chunks read through
the scale's chunk store, as for unsharded datasets (the app in-process)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from bigarrays_server import Settings, create_app

import bigarrays_core as bc
from bigarrays_core.geometry import Box

from .test_reads import BOUNDS, make, spec

TOKEN = "sharded-token"


Served = tuple[Any, bc.BigArray, np.ndarray]


def serve(app: Any, test: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    """Run ``test`` against ``app`` in-process, its lifespan included."""
    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                await test(client)

    anyio.run(main)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = (tmp_path / "seg").as_uri()
    ba = make(url, spec(1, "identity", 2, 4))  # uint16 raw chunks, gzip'd in the shards
    data = np.random.default_rng(5).integers(0, 2**16, size=BOUNDS.shape + (1,), dtype=np.uint16)
    for box in ba.write_boxes():
        ba.write(box, data[box.slices_in(BOUNDS)])
    missing = ba.chunks()[-1]
    ba.scale_io.store.delete_many([missing.key])
    data[missing.box.slices_in(BOUNDS)] = 0
    yield create_app(Settings(datasets={"seg": url}, write_token=TOKEN, cache_mb=16)), bc.open(url), data


def test_cutouts_of_a_sharded_scale(served: Served) -> None:
    app, ba, data = served
    box = Box((-30, 10, -1), (5, 40, 12))

    async def test(client: httpx.AsyncClient) -> None:
        r = await client.get(f"/v1/seg/cutout/0/{box.to_colon()}")
        assert r.status_code == 200, r.text
        got = np.frombuffer(r.content, dtype="<u2").reshape(box.shape + (1,), order="F")
        np.testing.assert_array_equal(got, data[box.slices_in(BOUNDS)])

    serve(app, test)


def test_chunk_plan_and_single_chunks_of_a_sharded_scale(served: Served) -> None:
    app, ba, data = served
    refs = ba.chunks()
    ref = refs[3]

    async def test(client: httpx.AsyncClient) -> None:
        plan = (await client.get("/v1/seg/chunks/0")).json()
        assert [c["exists"] for c in plan["chunks"]] == [True] * (len(refs) - 1) + [False]
        r = await client.get(f"/v1/seg/chunks/0/{ref.name}")
        assert r.status_code == 200
        got = np.frombuffer(r.content, dtype="<u2").reshape(ref.box.shape + (1,), order="F")
        np.testing.assert_array_equal(got, data[ref.box.slices_in(BOUNDS)])
        encoded = await client.get(f"/v1/seg/chunks/0/{ref.name}", params={"format": "encoded"})
        assert encoded.status_code == 200 and encoded.content[:2] == b"\x1f\x8b"  # the shard's gzip chunk data
        assert (await client.get(f"/v1/seg/chunks/0/{refs[-1].name}")).status_code == 404

    serve(app, test)


def test_writes_through_the_server_rewrite_shards(served: Served) -> None:
    app, ba, data = served
    ref = ba.chunks()[0]
    values = np.full(ref.box.shape + (1,), 3, dtype=np.uint16)

    async def test(client: httpx.AsyncClient) -> None:
        r = await client.put(f"/v1/seg/cutout/0/{ref.box.to_colon()}", content=values.tobytes(order="F"),
                             headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/octet-stream"})
        assert r.status_code in (200, 204), r.text

    serve(app, test)
    data[ref.box.slices_in(BOUNDS)] = values
    np.testing.assert_array_equal(bc.open(ba.url)[:, :, :], data)
