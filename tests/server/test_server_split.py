"""The one splitter: chunk-aligned exact tilings within their budget (a 413's split), and contiguous
streaming pieces."""

from __future__ import annotations

import numpy as np
from bigarrays_server.bbox import RequestBox
from bigarrays_server.slabs import pieces
from hypothesis import given, settings
from hypothesis import strategies as st

import bigarrays_core as bc
from bigarrays_core.geometry import split_box

vec = st.tuples(st.integers(-40, 40), st.integers(-40, 40), st.integers(-40, 40))
chunk = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))
extent = st.tuples(st.integers(1, 30), st.integers(1, 30), st.integers(1, 30))


@settings(max_examples=150, deadline=None)
@given(offset=vec, size=extent, chunk_size=chunk, start=vec, shape=extent, bpv=st.sampled_from([1, 2, 8]),
       budget=st.integers(1, 4000))
def test_split_tiles_the_box_on_grid_lines(offset, size, chunk_size, start, shape, bpv, budget) -> None:  # type: ignore[no-untyped-def]
    grid = bc.ChunkGrid(offset, size, chunk_size)
    box = bc.Box.from_shape(start, shape)
    parts = split_box(box, grid, bpv, budget)
    if parts is None:
        assert box.size * bpv > budget
        return
    cover = np.zeros(box.shape, dtype=np.int32)
    cell = chunk_size[0] * chunk_size[1] * chunk_size[2] * bpv
    for p in parts:
        assert box.contains(p) and not p.is_empty
        cover[p.slices_in(box)] += 1
        for axis in range(3):
            for v in (p.start[axis], p.stop[axis]):
                assert v in (box.start[axis], box.stop[axis]) or (v - offset[axis]) % chunk_size[axis] == 0
        assert p.size * bpv <= max(budget, cell)  # only a single grid cell may exceed the budget
    assert (cover == 1).all()


@settings(max_examples=100, deadline=None)
@given(offset=vec, chunk_size=chunk, start=vec, shape=extent, channels=st.integers(1, 3),
       budget=st.integers(1, 3000))
def test_streaming_pieces_are_the_body_in_order(offset, chunk_size, start, shape, channels, budget) -> None:  # type: ignore[no-untyped-def]
    grid = bc.ChunkGrid(offset, (50, 50, 50), chunk_size)
    box = bc.Box.from_shape(start, shape)
    req = RequestBox(box, (0, channels), np.dtype("uint16"))
    full = np.arange(int(np.prod(req.shape)), dtype=np.int64).reshape(req.shape, order="F")
    body = []
    for p, (c0, c1) in pieces(req, grid, budget):
        sub = full[p.slices_in(box) + (slice(c0, c1),)]
        body.append(sub.ravel(order="F"))
        if p.shape[2] > 1 or p.shape[1] < box.shape[1]:
            assert p.size * 2 * (c1 - c0) <= max(budget, box.shape[0] * 2 * (c1 - c0))
    np.testing.assert_array_equal(np.concatenate(body), full.ravel(order="F"))
