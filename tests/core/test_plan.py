"""plan_read: the chunks a box touches and the part of each it needs, checked against the
definition (every grid chunk intersected with the box) on volumes with offsets, clipped
upper-edge chunks and boxes reaching outside."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.array.plan import plan_read
from bigarrays_core.geometry import Box


def _expected(io: bc.array.scale_io.ScaleIO, box: Box, channels: tuple[int, int]) -> list[tuple]:
    grid = io.grid
    out = []
    ranges = [range(-(-s // c)) for s, c in zip(grid.size, grid.chunk_size)]
    for gz, gy, gx in itertools.product(ranges[2], ranges[1], ranges[0]):
        chunk = grid.chunk_box((gx, gy, gz))
        inter = chunk.intersect(box)
        if inter.is_empty:
            continue
        key = f"{io.scale.key}/{chunk.to_chunk_name()}"
        region = (*(slice(a - c, b - c) for a, b, c in zip(inter.start, inter.stop, chunk.start)),
                  slice(*channels))
        target = (*(slice(a - o, b - o) for a, b, o in zip(inter.start, inter.stop, box.start)), slice(None))
        complete = inter == chunk and channels == (0, io.num_channels)
        out.append((key, (gx, gy, gz), chunk, (*chunk.shape, io.num_channels), region, target, complete))
    return out


@pytest.mark.parametrize("offset", [(0, 0, 0), (-37, 5, 1000)])
def test_plan_matches_every_chunk_the_box_meets(tmp_path, offset) -> None:
    size, chunk = (100, 70, 45), (32, 16, 20)  # upper-edge chunks are clipped on every axis
    ba = bc.create(str(tmp_path / "v"), dtype="uint16", size=size, chunk_size=chunk, voxel_offset=offset,
                   num_channels=3)
    io = ba.scale_io
    rng = np.random.default_rng(5)
    boxes = [Box(offset, tuple(o + s for o, s in zip(offset, size)))]  # the whole volume
    for _ in range(200):
        start = tuple(int(o + rng.integers(-40, s + 10)) for o, s in zip(offset, size))
        stop = tuple(int(a + rng.integers(1, 90)) for a in start)
        boxes.append(Box(start, stop))
    seen_outside = seen_empty = 0
    for box in boxes:
        for channels in [(0, 3), (1, 2), (2, 3)]:
            plan = plan_read(io, box, channels)
            got = [(p.ref.key, p.ref.grid, p.ref.box, p.shape, p.region, p.target, p.complete) for p in plan]
            assert got == _expected(io, box, channels), (box, channels)
            for p in plan:  # a projection's parts have one shape
                part = tuple(s.stop - s.start for s in p.region[:3])
                assert part == tuple(t.stop - t.start for t in p.target[:3])
                assert p.ref.key == io.key(p.ref.box)
        seen_outside += not io.grid.bounds.contains(box)
        seen_empty += not plan
    assert seen_outside and seen_empty  # the boxes tried include both kinds
