"""Scale arithmetic (``bigarrays_core.format.scales``): factors, and boxes carried between mips."""

from __future__ import annotations

import pytest

import bigarrays_core as bc
from bigarrays_core.format import create_info
from bigarrays_core.format.scales import box_at_mip, coarsen_box, downsample_factor, refine_box
from bigarrays_core.geometry import Box


def test_factor_between_scales() -> None:
    info = create_info(dtype="uint8", size=(100, 100, 10), resolution=(4, 4, 40), num_mips=3,
                       downsample_factor=(2, 2, 1))
    assert downsample_factor(info.scale(0), info.scale(1)) == (2, 2, 1)
    assert downsample_factor(info.scale(0), info.scale(2)) == (4, 4, 1)
    aniso = create_info(dtype="uint8", size=(81, 81, 9), resolution=(4.5, 4.5, 30), num_mips=2,
                        downsample_factor=(3, 3, 3))
    assert downsample_factor(aniso.scale(0), aniso.scale(1)) == (3, 3, 3)


def test_a_scale_that_is_not_an_integer_downsampling_is_named() -> None:
    info = bc.Info({"type": "image", "data_type": "uint8", "num_channels": 1, "scales": [
        {"key": "a", "size": [8, 8, 8], "resolution": [4, 4, 40], "chunk_sizes": [[8, 8, 8]], "encoding": "raw"},
        {"key": "b", "size": [4, 4, 8], "resolution": [6, 8, 40], "chunk_sizes": [[8, 8, 8]], "encoding": "raw"}]})
    with pytest.raises(bc.InfoError, match=r"info\.scales\[1\]\.resolution.*'b'.*'a' along x") as err:
        downsample_factor(info.scale(0), info.scale(1))
    assert err.value.field == "info.scales[1].resolution"


@pytest.mark.parametrize(("box", "factor", "coarse"), [
    (Box((0, 0, 0), (64, 64, 64)), (2, 2, 1), Box((0, 0, 0), (32, 32, 64))),
    (Box((3, 5, 7), (10, 11, 12)), (2, 2, 2), Box((1, 2, 3), (5, 6, 6))),  # rounded outwards
    (Box((-5, -4, -1), (-1, 0, 1)), (2, 4, 2), Box((-3, -1, -1), (0, 0, 1))),  # floor, also below zero
])
def test_coarsen_rounds_outwards(box: Box, factor: tuple[int, int, int], coarse: Box) -> None:
    assert coarsen_box(box, factor) == coarse
    fine = refine_box(coarse, factor)
    assert fine.contains(box)  # every voxel of the box lies in a coarse voxel of the result
    assert coarsen_box(fine, factor) == coarse


def test_box_at_mip_matches_create_info_bounds() -> None:
    """A scale's own bounds at mip 0, carried up, are the bounds create() gives each mip."""
    info = create_info(dtype="uint8", size=(101, 37, 9), voxel_offset=(-7, 3, 5), num_mips=4,
                       downsample_factor=(2, 3, 1))
    bounds0 = Box.from_shape(info.scale(0).voxel_offset, info.scale(0).size)
    for k in range(4):
        s = info.scale(k)
        assert box_at_mip(info, bounds0, k) == Box.from_shape(s.voxel_offset, s.size)
    assert box_at_mip(info, Box((0, 0, 0), (2, 3, 1)), 0, from_mip=1) == Box((0, 0, 0), (4, 9, 1))
    with pytest.raises(bc.InfoError, match="4"):
        box_at_mip(info, bounds0, 4)
