"""numpy-style selections on a BigArray: absolute coordinates, dropped axes, refusals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.array.indexing import parse_selection
from bigarrays_core.geometry import Box

from .datasets import make

OFFSET = (-20, -10, 5)
SIZE = (40, 30, 20)
PAD = 8  # the reference model extends this far outside the bounds (as zeros)


@pytest.fixture(scope="module")
def volume() -> tuple[bc.BigArray, np.ndarray]:
    """A 3-channel uint16 volume at a negative offset, filled with seeded random data, and a padded model."""
    rng = np.random.default_rng(7)
    ba = make(bc.kvstore.MemoryStore(), dtype="uint16", size=SIZE, voxel_offset=OFFSET, chunk_size=(16, 16, 8),
              num_channels=3)
    data = rng.integers(1, 60000, size=SIZE + (3,), dtype=np.uint16)
    ba[:, :, :] = data
    model = np.zeros(tuple(s + 2 * PAD for s in SIZE) + (3,), dtype=np.uint16)
    model[PAD:-PAD, PAD:-PAD, PAD:-PAD] = data
    return ba, model


def model_at(model: np.ndarray, x: slice | int, y: slice | int, z: slice | int, c: slice | int = slice(None)
             ) -> np.ndarray:
    """Index the padded model with absolute coordinates (no wrap-around for negatives)."""
    def shift(s: slice | int, axis: int) -> slice | int:
        base = OFFSET[axis] - PAD
        if isinstance(s, int):
            return s - base
        return slice(s.start - base, s.stop - base)
    return model[shift(x, 0), shift(y, 1), shift(z, 2), c]


def test_slices_are_absolute_coordinates(volume: tuple[bc.BigArray, np.ndarray]) -> None:
    ba, model = volume
    out = ba[-20:-5, -10:0, 5:12]
    assert out.shape == (15, 10, 7, 3)
    assert out.dtype == np.uint16
    assert out.flags.f_contiguous
    np.testing.assert_array_equal(out, model_at(model, slice(-20, -5), slice(-10, 0), slice(5, 12)))


def test_negative_numbers_are_coordinates_not_from_the_end(volume: tuple[bc.BigArray, np.ndarray]) -> None:
    ba, model = volume
    out = ba[-3:2, -1:1, 6:7]
    assert out.shape == (5, 2, 1, 3)
    np.testing.assert_array_equal(out, model_at(model, slice(-3, 2), slice(-1, 1), slice(6, 7)))
    # x = -1 is the voxel just before the origin, not the last voxel of the volume.
    np.testing.assert_array_equal(ba[-1, 0, 5], model_at(model, -1, 0, 5))
    assert not np.array_equal(ba[-1, 0, 5], ba[19, 0, 5])


def test_open_slices_mean_the_bounds(volume: tuple[bc.BigArray, np.ndarray]) -> None:
    ba, model = volume
    inner = model[PAD:-PAD, PAD:-PAD, PAD:-PAD]
    np.testing.assert_array_equal(ba[:, :, :], inner)
    np.testing.assert_array_equal(ba[:], inner)
    np.testing.assert_array_equal(ba[...], inner)
    np.testing.assert_array_equal(ba[:, :, :, :], inner)
    np.testing.assert_array_equal(ba[:0, 0:, :10], model_at(model, slice(-20, 0), slice(0, 20), slice(5, 10)))


def test_integers_drop_their_axis(volume: tuple[bc.BigArray, np.ndarray]) -> None:
    ba, model = volume
    out = ba[5, :, 6:10]
    assert out.shape == (30, 4, 3)
    np.testing.assert_array_equal(out, model_at(model, 5, slice(-10, 20), slice(6, 10)))
    point = ba[np.int64(-20), -10, 5]
    assert point.shape == (3,)
    np.testing.assert_array_equal(point, model_at(model, -20, -10, 5))
    assert ba[0, 0, 5, 2] == model_at(model, 0, 0, 5, 2)
    assert np.ndim(ba[0, 0, 5, 2]) == 0


def test_ellipsis_fills_the_missing_axes(volume: tuple[bc.BigArray, np.ndarray]) -> None:
    ba, model = volume
    np.testing.assert_array_equal(ba[..., 1], model[PAD:-PAD, PAD:-PAD, PAD:-PAD, 1])
    np.testing.assert_array_equal(ba[0:4, ...], model_at(model, slice(0, 4), slice(-10, 20), slice(5, 25)))
    np.testing.assert_array_equal(ba[0:4, ..., 0:2],
                                  model_at(model, slice(0, 4), slice(-10, 20), slice(5, 25), slice(0, 2)))
    np.testing.assert_array_equal(ba[0:4, 1:3, 7:9, ...],
                                  model_at(model, slice(0, 4), slice(1, 3), slice(7, 9)))


def test_channel_selection(volume: tuple[bc.BigArray, np.ndarray]) -> None:
    ba, model = volume
    out = ba[0:8, 0:8, 5:9, 1:3]
    assert out.shape == (8, 8, 4, 2)
    np.testing.assert_array_equal(out, model_at(model, slice(0, 8), slice(0, 8), slice(5, 9), slice(1, 3)))
    box = Box((0, 0, 5), (8, 8, 9))
    np.testing.assert_array_equal(ba.read(box, channels=(2, 3))[..., 0], model_at(model, slice(0, 8), slice(0, 8),
                                                                                  slice(5, 9), 2))
    np.testing.assert_array_equal(ba.read("0:8,0:8,5:9"), ba[0:8, 0:8, 5:9])
    np.testing.assert_array_equal(ba.read("0-8_0-8_5-9"), ba[0:8, 0:8, 5:9])


def test_reads_partly_outside_are_zero_there(volume: tuple[bc.BigArray, np.ndarray]) -> None:
    ba, model = volume
    out = ba[-25:-15, 15:25, 0:8]
    assert out.shape == (10, 10, 8, 3)
    np.testing.assert_array_equal(out, model_at(model, slice(-25, -15), slice(15, 25), slice(0, 8)))
    assert (out[:5] == 0).all() and (out[:, 5:] == 0).all() and (out[:, :, :5] == 0).all()
    assert (out[5:, :5, 5:] != 0).all()


def test_empty_and_reversed_slices_read_nothing(volume: tuple[bc.BigArray, np.ndarray]) -> None:
    ba, _ = volume
    assert ba[3:3, 0:4, 5:6].shape == (0, 4, 1, 3)
    assert ba[5:3, 0:4, 5:6].shape == (0, 4, 1, 3)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ((slice(0, 10, 2), slice(None), slice(None)), ["axis x", "step 2"]),
        ((slice(None), slice(None, None, -1), slice(None)), ["axis y", "step -1"]),
        ((slice(None), slice(None), slice(5, 9, 0)), ["axis z", "step 0"]),
        ((np.array([1, 2]), slice(None), slice(None)), ["axis x", "not supported"]),
        (([1, 2], slice(None), slice(None)), ["axis x", "[1, 2]"]),
        ((0.5, slice(None), slice(None)), ["axis x", "0.5"]),
        ((slice(0.0, 4), slice(None), slice(None)), ["axis x", "integers", "0.0"]),
        ((slice(None), slice(0, 4.5), slice(None)), ["axis y", "integers", "4.5"]),
        ((slice(None), True, slice(None)), ["axis y", "True"]),
        ((slice(None), slice(None), None), ["axis z", "None"]),
        ((slice(None), slice(None), slice(None), "a"), ["axis c", "'a'"]),
        ((0, 0, 0, 0, 0), ["too many indices", "5"]),
        ((Ellipsis, 0, 0, 0, 0, 0), ["too many indices"]),
        ((Ellipsis, 0, Ellipsis), ["single ellipsis"]),
        ((slice(None), slice(None), slice(None), slice(0, 4)), ["channels 0:4", "0:3"]),
        ((slice(None), slice(None), slice(None), 3), ["channels 3:4", "0:3"]),
        ((slice(None), slice(None), slice(None), -1), ["channels -1:0", "0:3"]),
    ],
)
def test_unsupported_indices_raise_selection_error(volume: tuple[bc.BigArray, np.ndarray], key: Any,
                                                   words: list[str]) -> None:
    ba, _ = volume
    with pytest.raises(bc.SelectionError) as info:
        ba[key]
    assert isinstance(info.value, IndexError)
    for w in words:
        assert w in str(info.value)
    # Writes parse the same selection and refuse it the same way.
    with pytest.raises(bc.SelectionError):
        ba[key] = 0


def test_parse_selection_is_pure() -> None:
    bounds = Box((-64, 0, 0), (64, 64, 64))
    sel = parse_selection((slice(-64, 0), 3, Ellipsis), bounds, 2)
    assert sel.box == Box((-64, 3, 0), (0, 4, 64))
    assert sel.channels == (0, 2)
    assert sel.dropped == (1,)
    assert sel.shape == (64, 64, 2)
    assert sel.shape4 == (64, 1, 64, 2)
    sel = parse_selection((Ellipsis, 1), bounds, 2)
    assert sel.box == bounds
    assert sel.channels == (1, 2)
    assert sel.dropped == (3,)
