"""Box and ChunkGrid: parsing, set operations, the precomputed chunk grid and its names."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bigarrays_core as bc
from bigarrays_core.geometry import Box, ChunkGrid, format_chunk_name, parse_chunk_name

# -- Box ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "stop"),
    [
        ("0:64,0:64,0:64", (0, 0, 0), (64, 64, 64)),
        (" 1:2 , 3:4 , 5:6 ", (1, 3, 5), (2, 4, 6)),
        ("-100:412,-5:-1,10:74", (-100, -5, 10), (412, -1, 74)),
        ("0-64_0-64_0-64", (0, 0, 0), (64, 64, 64)),
        ("-128--64_-64-0_7-9", (-128, -64, 7), (-64, 0, 9)),
        ("10-11_8-10_7-9", (10, 8, 7), (11, 10, 9)),
    ],
)
def test_box_parse_both_spellings(text: str, start: tuple[int, int, int], stop: tuple[int, int, int]) -> None:
    box = Box.parse(text)
    assert box.start == start
    assert box.stop == stop
    assert Box.parse(box.to_colon()) == box
    assert Box.parse(box.to_chunk_name()) == box


def test_box_formats() -> None:
    box = Box((-128, 0, 5), (-64, 64, 6))
    assert box.to_colon() == "-128:-64,0:64,5:6"
    assert box.to_chunk_name() == "-128--64_0-64_5-6"
    assert str(box) == "[-128:-64,0:64,5:6]"


@pytest.mark.parametrize(
    "text",
    ["", "0:64,0:64", "0:64,0:64,0:64,0:1", "a:b,0:1,0:1", "0:1.5,0:1,0:1", "0-64_0-64", "0:64_0:64_0:64",
     "0-64,0-64,0-64", "0--64-1_0-1_0-1", "0:1:2,0:1,0:1"],
)
def test_box_parse_rejects_with_the_text(text: str) -> None:
    with pytest.raises(bc.SelectionError) as info:
        Box.parse(text)
    assert repr(text.strip()) in str(info.value)


def test_box_needs_three_integer_entries() -> None:
    with pytest.raises(bc.SelectionError, match="3 entries"):
        Box((0, 0), (1, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(bc.SelectionError, match="integers"):
        Box((0, 0, 0.5), (1, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(bc.SelectionError, match="integers"):
        Box((0, 0, True), (1, 1, 1))


def test_box_shape_size_and_empty() -> None:
    assert Box((-3, 0, 10), (5, 2, 11)).shape == (8, 2, 1)
    assert Box((-3, 0, 10), (5, 2, 11)).size == 16
    assert not Box((-3, 0, 10), (5, 2, 11)).is_empty
    inverted = Box((5, 0, 0), (3, 4, 4))
    assert inverted.shape == (0, 4, 4)
    assert inverted.size == 0
    assert inverted.is_empty
    assert Box((0, 0, 0), (1, 1, 0)).is_empty
    assert Box.from_shape((-64, 2, 3), (64, 1, 1)) == Box((-64, 2, 3), (0, 3, 4))


def test_box_intersect() -> None:
    a = Box((-10, -10, 0), (10, 10, 5))
    b = Box((0, -20, 2), (30, 0, 3))
    assert a.intersect(b) == Box((0, -10, 2), (10, 0, 3))
    assert b.intersect(a) == a.intersect(b)
    assert a.intersect(a) == a
    disjoint = a.intersect(Box((10, 0, 0), (20, 5, 5)))  # touching faces share no voxel
    assert disjoint.is_empty and disjoint.size == 0


def test_box_contains() -> None:
    outer = Box((-64, 0, 0), (64, 64, 64))
    assert outer.contains(outer)
    assert outer.contains(Box((-64, 10, 63), (0, 11, 64)))
    assert not outer.contains(Box((-65, 0, 0), (0, 1, 1)))
    assert not outer.contains(Box((0, 0, 0), (1, 1, 65)))
    assert outer.contains(Box((1000, 1000, 1000), (1000, 1001, 1001)))  # empty is inside anything
    assert not Box((0, 0, 0), (1, 1, 1)).contains(outer)


def test_box_translate_and_slices_in() -> None:
    box = Box((2, 3, 4), (5, 6, 7))
    assert box.translate((-2, 0, 1)) == Box((0, 3, 5), (3, 6, 8))
    outer = Box((0, 0, 0), (10, 10, 10))
    assert box.slices_in(outer) == (slice(2, 5), slice(3, 6), slice(4, 7))


# -- ChunkGrid ---------------------------------------------------------------------------

TS_GRID = ChunkGrid(voxel_offset=(1, 2, 3), size=(10, 99, 98), chunk_size=(3, 2, 2))


def test_tensorstore_key_vector() -> None:
    # TensorStore driver_test.cc: size [10,99,98], offset [1,2,3], chunk [3,2,2].
    assert TS_GRID.grid_shape == (4, 50, 49)
    assert TS_GRID.chunk_name((2, 3, 2)) == "7-10_8-10_7-9"
    assert TS_GRID.chunk_name((3, 3, 2)) == "10-11_8-10_7-9"  # x edge clipped to one voxel
    assert TS_GRID.chunk_box((3, 3, 2)).shape == (1, 2, 2)
    assert TS_GRID.grid_of_name("7-10_8-10_7-9") == (2, 3, 2)
    assert TS_GRID.grid_of_name("10-11_8-10_7-9") == (3, 3, 2)
    # The last chunk of y: 2 + 49*2 = 100 .. min(102, 101) = 101.
    assert TS_GRID.chunk_name((0, 49, 48)) == "1-4_100-101_99-101"


def test_grid_shape_and_bounds() -> None:
    grid = ChunkGrid((-300, -300, -10), (510, 510, 2022), (100, 100, 5))
    assert grid.grid_shape == (6, 6, 405)
    assert grid.num_chunks == 6 * 6 * 405
    assert grid.bounds == Box((-300, -300, -10), (210, 210, 2012))
    assert ChunkGrid((0, 0, 0), (64, 64, 64), (64, 64, 64)).grid_shape == (1, 1, 1)
    assert ChunkGrid((0, 0, 0), (65, 1, 63), (64, 64, 64)).grid_shape == (2, 1, 1)


def test_chunk_box_clips_only_the_upper_edge() -> None:
    grid = ChunkGrid((-300, -300, -10), (510, 510, 2022), (100, 100, 5))
    assert grid.chunk_box((0, 0, 0)) == Box((-300, -300, -10), (-200, -200, -5))  # lower edge: full chunk
    assert grid.chunk_box((3, 0, 0)) == Box((0, -300, -10), (100, -200, -5))
    assert grid.chunk_box((5, 5, 404)) == Box((200, 200, 2010), (210, 210, 2012))  # upper edge: clipped
    assert grid.chunk_name((5, 0, 0)) == "200-210_-300--200_-10--5"


def test_chunks_in_with_negative_offset() -> None:
    grid = ChunkGrid((-64, -64, 0), (128, 100, 64), (64, 64, 64))
    found = list(grid.chunks_in(Box((-1, -1, 0), (1, 1, 1))))
    assert [g for g, _ in found] == [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)]  # x fastest
    assert [b.to_chunk_name() for _, b in found] == [
        "-64-0_-64-0_0-64", "0-64_-64-0_0-64", "-64-0_0-36_0-64", "0-64_0-36_0-64",
    ]
    # Boxes partly or wholly outside the volume.
    assert [g for g, _ in grid.chunks_in(Box((-1000, -1000, -1000), (-63, -63, 1)))] == [(0, 0, 0)]
    assert list(grid.chunks_in(Box((-1000, 0, 0), (-64, 10, 10)))) == []
    assert list(grid.chunks_in(Box((64, 36, 0), (1000, 1000, 1000)))) == []
    assert list(grid.chunks_in(Box((0, 0, 0), (0, 10, 10)))) == []


def test_is_aligned() -> None:
    grid = ChunkGrid((-300, -300, -10), (510, 510, 2022), (100, 100, 5))
    assert grid.is_aligned(Box((-300, -300, -10), (-200, -200, -5)))
    assert grid.is_aligned(Box((-100, 0, 0), (100, 200, 10)))
    assert grid.is_aligned(Box((200, 200, 2010), (210, 210, 2012)))  # stop at the volume's end counts
    assert grid.is_aligned(grid.bounds)
    assert not grid.is_aligned(Box((200, 200, 2010), (209, 210, 2012)))
    assert not grid.is_aligned(Box((0, 0, 0), (100, 100, 4)))
    assert not grid.is_aligned(Box((1, 0, 0), (100, 100, 5)))


def test_expand_and_shrink_to_grid() -> None:
    grid = ChunkGrid((-300, -300, -10), (510, 510, 2022), (100, 100, 5))
    assert grid.expand_to_grid(Box((-250, 1, 0), (-199, 2, 1))) == Box((-300, 0, 0), (-100, 100, 5))
    # Clipped to the volume at both ends.
    assert grid.expand_to_grid(Box((-1000, 150, 2011), (1000, 205, 3000))) == Box(
        (-300, 100, 2010), (210, 210, 2012)
    )
    aligned = Box((-100, 0, 0), (100, 200, 10))
    assert grid.expand_to_grid(aligned) == aligned
    assert grid.shrink_to_grid(aligned) == aligned
    assert grid.shrink_to_grid(Box((-250, 1, 0), (-99, 250, 9))) == Box((-200, 100, 0), (-100, 200, 5))
    assert grid.shrink_to_grid(Box((150, 0, 0), (210, 100, 5))) == Box((200, 0, 0), (210, 100, 5))
    assert grid.shrink_to_grid(Box((-250, 0, 0), (-210, 100, 5))).is_empty


def test_chunk_names_parse_and_format() -> None:
    box = parse_chunk_name("-128--64_-64-0_7-9")
    assert box == Box((-128, -64, 7), (-64, 0, 9))
    assert format_chunk_name(box) == "-128--64_-64-0_7-9"
    for bad in ["0-64_0-64", "0:64_0:64_0:64", "0-64_0-64_0-64.gz", "x-1_0-1_0-1", "../0-1_0-1_0-1"]:
        with pytest.raises(bc.InvalidKeyError) as info:
            parse_chunk_name(bad)
        assert repr(bad) in str(info.value)


@pytest.mark.parametrize("name", ["8-11_8-10_7-9", "7-9_8-10_7-9", "10-12_8-10_7-9", "-2-1_2-4_3-5",
                                  "13-16_2-4_3-5"])
def test_grid_of_name_rejects_cells_off_the_grid(name: str) -> None:
    with pytest.raises(bc.InvalidKeyError) as info:
        TS_GRID.grid_of_name(name)
    assert name in str(info.value)


# -- property: chunks_in tiles box ∩ bounds exactly ------------------------------------

axis = st.tuples(st.integers(-20, 20), st.integers(1, 17), st.integers(1, 7))  # offset, size, chunk


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(
    axes=st.tuples(axis, axis, axis),
    box=st.tuples(st.tuples(st.integers(-30, 40), st.integers(0, 25)),
                  st.tuples(st.integers(-30, 40), st.integers(0, 25)),
                  st.tuples(st.integers(-30, 40), st.integers(0, 25))),
)
def test_chunks_in_tiles_the_box_inside_the_bounds(
    axes: tuple[tuple[int, int, int], ...], box: tuple[tuple[int, int], ...]
) -> None:
    grid = ChunkGrid(tuple(a[0] for a in axes), tuple(a[1] for a in axes), tuple(a[2] for a in axes))  # type: ignore[arg-type]
    query = Box(tuple(b[0] for b in box), tuple(b[0] + b[1] for b in box))  # type: ignore[arg-type]
    target = query.intersect(grid.bounds)
    lo = [min(a, b) for a, b in zip(query.start, grid.bounds.start, strict=True)]
    hi = [max(a, b) for a, b in zip(query.stop, grid.bounds.stop, strict=True)]
    hits = np.zeros([h - a for a, h in zip(lo, hi, strict=True)], dtype=np.int16)
    cells = set()
    for g, cb in grid.chunks_in(query):
        assert g not in cells
        cells.add(g)
        assert cb == grid.chunk_box(g)
        assert grid.bounds.contains(cb) and not cb.is_empty
        part = cb.intersect(query)
        assert not part.is_empty, f"chunk {cb} does not touch {query}"
        sl = tuple(slice(a - o, b - o) for a, b, o in zip(part.start, part.stop, lo, strict=True))
        hits[sl] += 1
    expected = np.zeros_like(hits)
    if not target.is_empty:
        expected[tuple(slice(a - o, b - o) for a, b, o in zip(target.start, target.stop, lo, strict=True))] = 1
    np.testing.assert_array_equal(hits, expected)


@settings(max_examples=150, deadline=None)
@given(offset=st.tuples(st.integers(-40, 40), st.integers(-40, 40), st.integers(-40, 40)),
       chunk_size=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)),
       start=st.tuples(st.integers(-40, 40), st.integers(-40, 40), st.integers(-40, 40)),
       shape=st.tuples(st.integers(1, 30), st.integers(1, 30), st.integers(1, 30)),
       bpv=st.sampled_from([1, 2, 8]), budget=st.integers(1, 4000))
def test_unaligned_split_is_the_box_bytes_in_order_within_budget(offset, chunk_size, start, shape, bpv,  # type: ignore[no-untyped-def]
                                                                 budget) -> None:
    from bigarrays_core.geometry import split_box

    grid = ChunkGrid(offset, (100, 100, 100), chunk_size)
    box = Box.from_shape(start, shape)
    parts = split_box(box, grid, bpv, budget, aligned=False)
    assert parts is not None
    full = np.arange(box.size, dtype=np.int64).reshape(box.shape, order="F")
    body = np.concatenate([full[p.slices_in(box)].ravel(order="F") for p in parts])
    np.testing.assert_array_equal(body, full.ravel(order="F"))
    assert all(p.size * bpv <= max(budget, bpv) for p in parts)


def test_grid_slabs_cut_at_every_grid_line() -> None:
    from bigarrays_core.geometry import grid_slabs

    grid = ChunkGrid((0, 0, -5), (10, 10, 40), (4, 4, 8))
    slabs = list(grid_slabs(Box((1, 2, -4), (3, 4, 20)), grid))
    assert [(s.start[2], s.stop[2]) for s in slabs] == [(-4, 3), (3, 11), (11, 19), (19, 20)]
    assert all(s.start[:2] == (1, 2) and s.stop[:2] == (3, 4) for s in slabs)


@pytest.mark.parametrize("text,channels,expected", [
    ("0:10,-5:5,3:4", 1, ((0, -5, 3), (10, 5, 4), (0, 1))),
    ("0-10_-5-5_3-4", 2, ((0, -5, 3), (10, 5, 4), (0, 2))),
    ("-128--64_0-64_0-64", 1, ((-128, 0, 0), (-64, 64, 64), (0, 1))),
    ("0:10,0:5,3:4,1:3", 3, ((0, 0, 3), (10, 5, 4), (1, 3))),
])
def test_region_parses_both_forms(text: str, channels: int, expected: tuple) -> None:  # type: ignore[type-arg]
    from bigarrays_core.geometry import Region

    region = Region.parse(text, channels)
    assert (region.box.start, region.box.stop, region.channels) == expected
    assert Region.parse(region.to_text(), channels) == region


@pytest.mark.parametrize("text,fragment", [
    ("0:10,0:5", "expected"), ("0:10,0:5,4:3", "axis z range 4:3 is empty"), ("0:1,0:1,0:1,0:2", "channels 0:2"),
    ("0:1,0:1,0:1,x", "is not c0:c1"), ("0:" + "9" * 5000 + ",0:1,0:1", "5000 digits"),
    ("0:1,0:1,0:" + "1" * 20, "20 digits"),
])
def test_region_errors_name_what_is_wrong(text: str, fragment: str) -> None:
    from bigarrays_core.geometry import Region

    with pytest.raises(bc.SelectionError, match=fragment):
        Region.parse(text, 1)
    if "digits" in fragment:
        with pytest.raises(bc.SelectionError, match=fragment):
            Box.parse(text)
