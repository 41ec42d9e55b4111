"""The first mip averaged straight from plain raw chunk files (``bigarrays_core.mip_files``):
the same bytes as the numpy reference, and every chunk it cannot take (missing, compressed,
of another size, cut at an edge, cut short while read) left to the chunk-by-chunk path."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.array.plan import ChunkProjection
from bigarrays_core.mip_files import FileAverager
from tests.core.datasets import make

from .reference import pyramid_reference


@pytest.fixture
def averaged(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many chunks the file averager took, per call."""
    counts: list[int] = []
    real = FileAverager.average

    def counting(self: FileAverager, batch: Sequence[ChunkProjection], *args: object) -> Sequence[ChunkProjection]:
        left = real(self, batch, *args)  # type: ignore[arg-type]
        counts.append(len(batch) - len(left))
        return left

    monkeypatch.setattr(FileAverager, "average", counting)
    yield counts


def _volume(tmp_path: Path, dtype: str, rng: np.random.Generator) -> tuple[bc.BigArray, np.ndarray]:
    # Even offsets (whole blocks); chunks at the upper edge 5 (odd: the ordinary way) and 2
    # voxels wide along x and y; an odd z size.
    ba = make(str(tmp_path / "ds"), dtype=dtype, size=(69, 66, 7), voxel_offset=(-32, 6, 1),
              chunk_size=(16, 16, 4), num_mips=3)
    top = np.iinfo(dtype).max
    data = np.asfortranarray(rng.integers(0, top, size=(69, 66, 7), endpoint=True).astype(dtype))
    ba[:, :, :] = data
    return ba, data


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_the_mips_equal_the_reference(tmp_path: Path, dtype: str, averaged: list[int]) -> None:
    ba, data = _volume(tmp_path, dtype, np.random.default_rng(7))
    bc.downsample(ba, mips=2)
    want = pyramid_reference(data[..., None], ba.bounds, [(2, 2, 1)] * 2, "average")
    for k in (1, 2):
        np.testing.assert_array_equal(ba.at_mip(k)[:, :, :], want[k - 1])
    assert sum(averaged) == 4 * 5 * 2  # all but the 5 voxels wide ones


def test_channels_equal_the_reference(tmp_path: Path, averaged: list[int]) -> None:
    # Raw chunks keep each channel after the other (x fastest, then y, z, channel).
    ba = make(str(tmp_path / "ds"), dtype="uint16", size=(32, 32, 6), chunk_size=(16, 16, 3), num_channels=3)
    data = np.asfortranarray(np.random.default_rng(10).integers(0, 65535, size=(32, 32, 6, 3), endpoint=True)
                             .astype(np.uint16))
    ba[:, :, :, :] = data
    bc.downsample(ba, mips=1)
    want = pyramid_reference(data, ba.bounds, [(2, 2, 1)], "average")
    np.testing.assert_array_equal(ba.at_mip(1)[:, :, :, :], want[0])
    assert sum(averaged) == 2 * 2 * 2


def test_chunks_it_cannot_take_go_the_ordinary_way(tmp_path: Path, averaged: list[int]) -> None:
    ba, data = _volume(tmp_path, "uint8", np.random.default_rng(8))
    root = tmp_path / "ds" / ba.key
    names = sorted(p.name for p in root.iterdir())
    gone, packed = names[3], names[9]
    os.remove(root / gone)                      # missing: zeros
    raw = (root / packed).read_bytes()          # compressed (a CloudVolume .gz file)
    (root / f"{packed}.gz").write_bytes(gzip.compress(raw))
    os.remove(root / packed)
    full = np.array(data)
    box = bc.Box.parse(gone)
    full[tuple(slice(a - o, b - o) for a, b, o in zip(box.start, box.stop, ba.voxel_offset))] = 0
    bc.downsample(ba, mips=1)
    want = pyramid_reference(full[..., None], ba.bounds, [(2, 2, 1)], "average")
    np.testing.assert_array_equal(ba.at_mip(1)[:, :, :], want[0])
    assert sum(averaged) == 4 * 5 * 2 - 2


def test_a_chunk_of_another_size_is_reported(tmp_path: Path) -> None:
    ba, _ = _volume(tmp_path, "uint8", np.random.default_rng(9))
    root = tmp_path / "ds" / ba.key
    name = sorted(p.name for p in root.iterdir())[5]
    (root / name).write_bytes((root / name).read_bytes()[:-1])
    with pytest.raises(bc.BigArraysError, match=name):
        bc.downsample(ba, mips=1)


def test_a_file_cut_short_is_not_averaged(tmp_path: Path) -> None:
    from bigarrays_core.kernels.downsample import GOT, JOB_FIELDS, NBYTES, average_221_files

    path = tmp_path / "chunk"
    path.write_bytes(bytes(range(200)))  # 200 of the 16 x 4 x 4 = 256 bytes a chunk has
    out = np.full((8, 2, 4, 1), 7, np.uint8, order="F")
    fd = os.open(path, os.O_RDONLY)
    try:
        jobs = np.zeros((1, JOB_FIELDS), np.int64)
        jobs[0, :GOT] = (fd, 256, 8, 4, 4, 1, 0, 0, 0)
        average_221_files(jobs, np.zeros(128, np.uint16), out, np.uint16(255), np.uint16(8))
    finally:
        os.close(fd)
    assert jobs[0, GOT] == 200 != jobs[0, NBYTES]
    assert (out == 7).all()  # left for the caller, who reads it the ordinary way
