"""Pyramids and transfers of a petabyte declared, a few chunks written: only what is stored is
visited (the scales are listed once), and the results are those of a small volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from bigarrays_core.pyramid import TASK_TARGET_BYTES
from tests.core.datasets import random_values

from .reference import pyramid_reference

PETABYTE = (100_096, 100_096, 100_096)
OFFSET = (-50_048, -50_048, -50_048)
WRITTEN = [Box((-64, -64, 0), (0, 0, 64)), Box((0, -64, 0), (64, 0, 64)), Box((-50_048,) * 3, (-49_984,) * 3)]


def _petabyte(tmp_path: Path) -> tuple[bc.BigArray, dict[Box, np.ndarray]]:
    ba = bc.create(str(tmp_path / "pb"), dtype="uint8", size=PETABYTE, voxel_offset=OFFSET, chunk_size=(64, 64, 64))
    rng = np.random.default_rng(1)
    data = {}
    for box in WRITTEN:
        data[box] = random_values(rng, box.shape + (1,), "uint8") | 1  # no zero chunk
        ba.write(box, data[box])
    return ba, data


def test_a_pyramid_of_a_sparse_petabyte_visits_only_its_chunks(tmp_path: Path) -> None:
    ba, data = _petabyte(tmp_path)
    report = bc.downsample(ba, mips=2)
    # The chunks of the (at most 3) tasks over the written boxes, not the 10^9 chunks of the grid:
    # a task covers TASK_TARGET_BYTES of mip-0 chunks, and the levels above it hold fewer.
    assert report.written + report.empty < 3 * TASK_TARGET_BYTES // 64**3
    for k in (1, 2):
        level = ba.at_mip(k)
        f = (2**k, 2**k, 1)
        want = {c.key for b in WRITTEN for c in level.chunks(Box(tuple(a // g for a, g in zip(b.start, f)),
                                                                 tuple(-(-z // g) for z, g in zip(b.stop, f))))}
        assert set(level.store.list(level.key + "/")) == want
    near = Box((-64, -64, 0), (64, 0, 64))
    want = pyramid_reference(ba.read(near), near, [(2, 2, 1)] * 2, "average")
    np.testing.assert_array_equal(ba.at_mip(1).read(Box((-32, -32, 0), (32, 0, 64))), want[0])
    np.testing.assert_array_equal(ba.at_mip(2).read(Box((-16, -16, 0), (16, 0, 64))), want[1])
    # An erased chunk: the next build removes what was built over it (listed, not lost).
    ba.store.delete(ba.chunks(WRITTEN[2])[0].key)
    report = bc.downsample(ba, mips=2)
    assert report.removed == 2 and not ba.at_mip(2).read(Box((-12512, -12512, -50048), (-12496, -12496, -49984))).any()


def test_a_transfer_of_a_sparse_petabyte_copies_only_its_chunks(tmp_path: Path) -> None:
    ba, data = _petabyte(tmp_path)
    report = bc.transfer(ba, str(tmp_path / "copy"), compression="gzip", verify=True)
    assert report.written == 3 and report.written + report.empty <= 2 * 64  # two rows of 64 chunks
    copy = bc.open(str(tmp_path / "copy"))
    assert copy.bounds == ba.bounds and copy.compression["id"] == "gzip"
    for box, values in data.items():
        np.testing.assert_array_equal(copy.read(box), values)
