"""Property: any sequence of aligned writes, then any reads, equals a numpy reference model.

Every encoding x compression is exercised with random dtypes and channel counts (within
each encoding's rules), chunk sizes, negative and positive voxel offsets, sizes that are
not multiples of the chunk, writes that cross the volume's end or lie outside it, and
reads inside, across and outside the bounds. jpeg is lossy: its writes are constant per
write (so each chunk is flat) and reads are compared within a small tolerance.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bigarrays_core as bc
from bigarrays_core.format import DTYPES
from bigarrays_core.geometry import Box
from bigarrays_core.kvstore import KVStore, LocalStore, MemoryStore

from .datasets import random_values

RULES: dict[str, tuple[list[str], list[int]]] = {
    "raw": (list(DTYPES), [1, 2, 3]),
    "png": (["uint8", "uint16"], [1, 2, 3, 4]),
    "jpeg": (["uint8"], [1, 3]),
    "compressed_segmentation": (["uint32", "uint64"], [1, 2, 3]),
}

COMPRESSION_KINDS = ["none", "gzip", "zstd", "blosc"]


def compressions(kind: str) -> st.SearchStrategy[Any]:
    if kind == "none":
        return st.just(None)
    if kind == "gzip":
        return st.builds(lambda lv: {"id": "gzip", "level": lv}, st.integers(1, 9))
    if kind == "zstd":
        return st.builds(lambda lv: {"id": "zstd", "level": lv}, st.integers(-3, 9))
    return st.builds(lambda c, lv, s: {"id": "blosc", "cname": c, "level": lv, "shuffle": s},
                     st.sampled_from(["blosclz", "lz4", "lz4hc", "zlib", "zstd"]), st.integers(0, 9),
                     st.sampled_from([0, 1, 2]))


@dataclass
class Case:
    dtype: str
    channels: int
    chunk: tuple[int, int, int]
    offset: tuple[int, int, int]
    size: tuple[int, int, int]
    block: tuple[int, int, int]
    compression: Any
    writes: list[tuple[Box, int]]  # box (aligned) and a seed for its data
    reads: list[Box]


@st.composite
def cases(draw: st.DrawFn, encoding: str, kind: str) -> Case:
    dtypes, channel_choices = RULES[encoding]
    chunk = tuple(draw(st.integers(1, 9)) for _ in range(3))
    offset = tuple(draw(st.integers(-40, 40)) for _ in range(3))
    size = tuple(draw(st.integers(1, 3 * c + c - 1)) for c in chunk)  # up to 3-4 chunks, often ragged
    grid = [-(-s // c) for s, c in zip(size, chunk, strict=True)]
    end = [o + s for o, s in zip(offset, size, strict=True)]

    def aligned_box() -> Box:
        start, stop = [], []
        for o, c, g, e in zip(offset, chunk, grid, end, strict=True):
            g0 = draw(st.integers(-2, g + 1))
            n = draw(st.integers(1, 3))
            a = o + g0 * c
            b = a + n * c
            if draw(st.booleans()) and a < e < b:
                b = e  # stop exactly at the volume's end
            start.append(a)
            stop.append(b)
        return Box(tuple(start), tuple(stop))  # type: ignore[arg-type]

    def any_box() -> Box:
        start, stop = [], []
        for o, c, e in zip(offset, chunk, end, strict=True):
            a = draw(st.integers(o - 2 * c, e + c))
            start.append(a)
            stop.append(a + draw(st.integers(1, 3 * c + 2)))
        return Box(tuple(start), tuple(stop))  # type: ignore[arg-type]

    writes = [(aligned_box(), draw(st.integers(0, 2**32 - 1))) for _ in range(draw(st.integers(1, 5)))]
    reads = [any_box() for _ in range(draw(st.integers(1, 4)))]
    return Case(
        dtype=draw(st.sampled_from(dtypes)),
        channels=draw(st.sampled_from(channel_choices)),
        chunk=chunk,  # type: ignore[arg-type]
        offset=offset,  # type: ignore[arg-type]
        size=size,  # type: ignore[arg-type]
        block=tuple(draw(st.integers(1, 8)) for _ in range(3)),  # type: ignore[arg-type]
        compression=draw(compressions(kind)),
        writes=writes,
        reads=reads,
    )


def data_for(encoding: str, dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = DTYPES[dtype]
    if encoding == "jpeg":
        return np.full(shape, rng.integers(0, 256), dtype=np.uint8)  # flat: JPEG keeps it within a step or two
    if encoding == "compressed_segmentation":
        labels = rng.integers(0, np.iinfo(dt).max, size=4, dtype=dt, endpoint=True)
        return rng.choice(labels, size=shape).astype(dt)
    return random_values(rng, shape, dt)


def check(encoding: str, case: Case, store: KVStore | None = None) -> None:
    """Run ``case`` on a new dataset in ``store`` (an anonymous MemoryStore by default) against the model."""
    ba = bc.create(store or MemoryStore(), dtype=case.dtype, size=case.size, chunk_size=case.chunk,
                   voxel_offset=case.offset, num_channels=case.channels, encoding=encoding,
                   compression=case.compression, compressed_segmentation_block_size=case.block)
    bounds = ba.bounds
    # The model covers every box cases() can draw: reads reach 2 chunks below and 4 above.
    lo = tuple(o - 3 * c - 3 for o, c in zip(case.offset, case.chunk, strict=True))
    hi = tuple(e + 5 * c + 3 for e, c in zip(bounds.stop, case.chunk, strict=True))
    window = Box(lo, hi)  # type: ignore[arg-type]
    model = np.zeros(window.shape + (case.channels,), dtype=DTYPES[case.dtype])
    for box, seed in case.writes:
        data = data_for(encoding, case.dtype, box.shape + (case.channels,), seed)
        inner = box.intersect(bounds)
        if inner.is_empty:  # wholly outside: refused, nothing written
            with pytest.raises(bc.OutOfBoundsError):
                ba.write(box, data)
            continue
        ba.write(box, data)
        model[inner.slices_in(window)] = data[inner.slices_in(box)]
    reader = bc.open(ba.store)
    for box in case.reads + [bounds]:
        assert window.contains(box)
        got = reader.read(box)
        want = model[box.slices_in(window)]
        assert got.shape == want.shape and got.dtype == want.dtype
        if encoding == "jpeg":
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 3, box
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"read {box}")
    # Nothing was stored outside the grid.
    for key in ba.store.list():
        if key != "info":
            assert ba.grid.grid_of_name(key.rpartition("/")[2]) is not None


@pytest.mark.parametrize("kind", COMPRESSION_KINDS)
@pytest.mark.parametrize("encoding", list(RULES))
def test_aligned_writes_then_reads_equal_the_model(encoding: str, kind: str) -> None:
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow],
              database=None, derandomize=True)
    @given(case=cases(encoding, kind))
    def run(case: Case) -> None:
        check(encoding, case)

    run()


@pytest.mark.parametrize(("encoding", "kind"), [("raw", "gzip"), ("raw", "zstd"), ("raw", "none"),
                                                ("compressed_segmentation", "blosc")])
def test_the_same_on_a_local_directory(encoding: str, kind: str) -> None:
    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow],
              database=None, derandomize=True)
    @given(case=cases(encoding, kind))
    def run(case: Case) -> None:
        with tempfile.TemporaryDirectory(prefix="bigarrays-core-prop-") as root:
            check(encoding, case, LocalStore(root))

    run()
