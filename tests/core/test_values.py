"""Writing values: channels, every dtype, scalars, lossy casts and shapes (WriteDataError), reads of channels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.format import DTYPES
from bigarrays_core.geometry import Box

from .datasets import make, random_data, snapshot


def test_multichannel_writes(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, dtype="float32", size=(32, 32, 16), chunk_size=(16, 16, 16), num_channels=4)
    box = Box((0, 0, 0), (32, 16, 16))
    data = random_data(rng, box, np.float32, 4)
    ba[0:32, 0:16, 0:16] = data
    np.testing.assert_array_equal(ba[0:32, 0:16, 0:16], data)
    np.testing.assert_array_equal(ba[0:32, 0:16, 0:16, 2], data[..., 2])
    np.testing.assert_array_equal(ba[0:32, 0:16, 0:16, 1:3], data[..., 1:3])
    ba[0:32, 0:16, 0:16, 0:4] = data[::-1]
    np.testing.assert_array_equal(ba[0:32, 0:16, 0:16], data[::-1])
    before = snapshot(ba.store)
    for key in [(slice(0, 32), slice(0, 16), slice(0, 16), 1), (slice(0, 32), slice(0, 16), slice(0, 16), slice(0, 3))]:
        with pytest.raises(bc.AlignmentError, match="channels"):
            ba[key] = 0
    assert snapshot(ba.store) == before
    rmw = bc.open(dataset_url, non_aligned_writes=True)
    rmw[0:32, 0:16, 0:16, 1] = 5.5
    expected = data[::-1].copy()
    expected[..., 1] = 5.5
    np.testing.assert_array_equal(ba[0:32, 0:16, 0:16], expected)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_every_dtype_round_trips(dataset_url: str, dtype: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, dtype=dtype, size=(20, 10, 6), chunk_size=(8, 8, 4), voxel_offset=(-4, 0, -2))
    assert ba.dtype == DTYPES[dtype]
    data = random_data(rng, ba.bounds, dtype)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        data.flat[:2] = [info.min, info.max]
    elif np.dtype(dtype).kind == "f":
        data.flat[:4] = [np.finfo(dtype).max, np.finfo(dtype).tiny, np.inf, -0.0]
    ba[:, :, :] = data
    out = bc.open(dataset_url)[:, :, :]
    assert out.dtype == DTYPES[dtype]
    np.testing.assert_array_equal(out, data)
    if np.dtype(dtype).kind == "f":
        assert np.signbit(out.flat[3])


@pytest.mark.parametrize(
    ("dtype", "value"),
    [("uint8", 7), ("uint8", 255), ("int8", -128), ("bool", True), ("float32", 1.5), ("float64", -2.25),
     ("uint64", 2**64 - 1), ("int64", -(2**63)), ("uint16", np.uint8(200)), ("float32", np.float32(3.0))],
)
def test_scalar_writes(dataset_url: str, dtype: str, value: Any) -> None:
    ba = make(dataset_url, dtype=dtype, size=(16, 16, 8), chunk_size=(8, 8, 8))
    ba[0:8, 8:16, 0:8] = value
    out = ba[:, :, :]
    assert (out[0:8, 8:16] == value).all()
    assert (out[8:] == 0).all() and (out[:, :8] == 0).all()


def test_three_d_data_into_a_one_channel_volume(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, dtype="int16", size=(16, 16, 8), chunk_size=(8, 8, 8))
    data = random_data(rng, Box((0, 0, 0), (16, 8, 8)), np.int16)[..., 0]
    ba[0:16, 0:8, 0:8] = data
    np.testing.assert_array_equal(ba[0:16, 0:8, 0:8, 0], data)
    ba.write("0:16,8:16,0:8", data[::-1])
    np.testing.assert_array_equal(ba[0:16, 8:16, 0:8, 0], data[::-1])
    ba[0:16, 0:8, 0:8] = data.astype(np.uint8)  # a safe cast is fine
    np.testing.assert_array_equal(ba[0:16, 0:8, 0:8, 0], data.astype(np.uint8))
    slab = make(f"{dataset_url}-slab", dtype="int16", size=(16, 16, 4), chunk_size=(8, 8, 1))
    slab[0:16, 0:16, 2] = np.ones((16, 16, 1), dtype=np.int16)  # an integer index drops z from the data
    assert (slab[:, :, 2] == 1).all() and (slab[:, :, 1] == 0).all()


def test_integer_indexed_write_without_the_channel_axis(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="int16", size=(16, 16, 4), chunk_size=(8, 8, 1))
    ba[0:16, 0:16, 2] = np.full((16, 16), 2, dtype=np.int16)  # z dropped by the integer, channel axis left out
    assert (ba[:, :, 2] == 2).all()
    assert (ba[:, :, 1] == 0).all()


@pytest.mark.parametrize(
    ("dtype", "value", "words"),
    [
        ("uint8", np.zeros((8, 8, 8), dtype=np.float64), ["float64", "uint8"]),
        ("int16", np.zeros((8, 8, 8), dtype=np.int64), ["int64", "int16"]),
        ("uint8", np.full((8, 8, 8), 300), ["int64", "uint8"]),
        ("uint8", 300, ["300", "uint8"]),
        ("uint8", -1, ["-1", "uint8"]),
        ("int16", 1.5, ["1.5", "int16"]),
        ("uint8", np.float64(1.0), ["float64", "uint8"]),
        ("float32", np.zeros((8, 8, 8), dtype=np.float64), ["float64", "float32"]),
        ("bool", np.zeros((8, 8, 8), dtype=np.uint8), ["uint8", "bool"]),
        ("uint32", np.zeros((8, 8, 8), dtype=np.int32), ["int32", "uint32"]),
        ("uint8", "7", ["uint8"]),
        ("uint8", float("nan"), ["nan", "uint8"]),
        ("int32", float("inf"), ["inf", "int32"]),
        ("bool", 2, ["2", "bool"]),
        ("float32", 1e300, ["1e+300", "float32"]),
    ],
)
def test_lossy_writes_raise_write_data_error_and_write_nothing(dataset_url: str, dtype: str, value: Any,
                                                                words: list[str]) -> None:
    ba = make(dataset_url, dtype=dtype, size=(16, 16, 8), chunk_size=(8, 8, 8))
    ba[8:16, 8:16, 0:8] = 1
    before = snapshot(ba.store)
    with pytest.raises(bc.WriteDataError) as info:
        ba[0:8, 0:8, 0:8] = value
    for w in words:
        assert w in str(info.value)
    assert "0:8,0:8,0:8" in str(info.value)
    assert snapshot(ba.store) == before


@pytest.mark.parametrize("shape", [(8, 8, 7), (8, 8, 8, 2), (8, 8), (64,), (8, 8, 8, 1, 1), (7, 8, 8, 1)])
def test_shape_mismatch_raises_write_data_error(dataset_url: str, shape: tuple[int, ...]) -> None:
    ba = make(dataset_url, dtype="uint8", size=(16, 16, 8), chunk_size=(8, 8, 8))
    before = snapshot(ba.store)
    with pytest.raises(bc.WriteDataError) as info:
        ba[0:8, 0:8, 0:8] = np.zeros(shape, dtype=np.uint8)
    assert str(shape) in str(info.value) and "(8, 8, 8, 1)" in str(info.value)
    with pytest.raises(bc.WriteDataError):
        ba.write(Box((0, 0, 0), (8, 8, 8)), np.zeros(shape, dtype=np.uint8))
    assert snapshot(ba.store) == before



@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("value", [pytest.param(float("nan"), id="nan"),
                                   pytest.param(np.float32("nan"), id="np-nan"), pytest.param(float("inf"), id="inf"),
                                   pytest.param(-float("inf"), id="-inf"), pytest.param(-0.0, id="-0")])
def test_special_float_scalars(dataset_url: str, dtype: str, value: Any) -> None:
    ba = make(dataset_url, dtype=dtype, size=(8, 8, 8), chunk_size=(8, 8, 8))
    ba[:, :, :] = value
    out = bc.open(dataset_url)[:, :, :]
    np.testing.assert_array_equal(out, np.full(out.shape, value, dtype=dtype))
    assert np.signbit(out).all() == bool(np.signbit(value))


@pytest.mark.parametrize("channels", [(0, 5), (-1, 1), (1, 2), (2, 1)])
def test_read_channels_outside_the_volume_are_refused(dataset_url: str, channels: tuple[int, int]) -> None:
    ba = make(dataset_url, dtype="uint8", size=(8, 8, 8), chunk_size=(8, 8, 8))
    ba[:, :, :] = 3
    with pytest.raises(bc.SelectionError, match=f"{channels[0]}:{channels[1]}"):
        ba.read("0:8,0:8,0:8", channels=channels)


def test_nested_lists_are_accepted_when_every_value_fits(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="uint8", size=(2, 2, 1), chunk_size=(2, 2, 1))
    ba[:, :, 0] = [[1, 2], [3, 255]]  # numpy makes this int64; every value fits uint8
    np.testing.assert_array_equal(ba[:, :, 0, 0], [[1, 2], [3, 255]])
    before = snapshot(ba.store)
    with pytest.raises(bc.WriteDataError, match="int64"):
        ba[:, :, 0] = [[1, 2], [3, 256]]
    with pytest.raises(bc.WriteDataError, match="float64"):
        ba[:, :, 0] = [[1.5, 2], [3, 4]]
    assert snapshot(ba.store) == before


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nested_lists_with_nan_and_inf_into_float_volumes(dataset_url: str, dtype: str) -> None:
    ba = make(dataset_url, dtype=dtype, size=(2, 2, 1), chunk_size=(2, 2, 1))
    ba[:, :, 0] = [[float("nan"), 1], [float("-inf"), 2.5]]
    out = ba[:, :, 0, 0]
    assert np.isnan(out[0, 0]) and out[1, 0] == -np.inf and out[0, 1] == 1 and out[1, 1] == 2.5
    ba[:, :, 0] = [[1, 2], [3, 4]]  # ints that a float volume holds exactly
    np.testing.assert_array_equal(ba[:, :, 0, 0], [[1, 2], [3, 4]])


def test_lists_are_judged_by_a_round_trip_not_a_promoting_comparison(dataset_url: str) -> None:
    """2**60 + 1 compares equal to float32(2**60) once both are promoted to float64: it must
    still be refused, since float32 cannot hold it."""
    ba = make(dataset_url, dtype="float32", size=(2, 1, 1), chunk_size=(2, 1, 1))
    before = snapshot(ba.store)
    with pytest.raises(bc.WriteDataError, match="int64 data into a float32"):
        ba[:, 0, 0] = [2**60 + 1, 0]
    assert snapshot(ba.store) == before
    ba[:, 0, 0] = [2**60, 0]  # exactly representable
    assert ba[0, 0, 0] == np.float32(2**60)


def test_ragged_lists_and_objects_are_refused(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="uint8", size=(2, 2, 1), chunk_size=(2, 2, 1))
    with pytest.raises(bc.WriteDataError, match=r"\[0:2,0:2,0:1\]"):
        ba[:, :, 0] = [[1, 2], [3]]
    with pytest.raises(bc.WriteDataError, match="uint8"):
        ba[:, :, 0] = [[1, None], [3, 4]]
    with pytest.raises(bc.WriteDataError):
        ba[:, :, 0] = None


def test_big_endian_and_safely_cast_arrays_are_stored_as_the_volume_dtype(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="uint16", size=(4, 4, 1), chunk_size=(4, 4, 1))
    data = np.arange(16, dtype=">u2").reshape(4, 4)
    ba[:, :, 0] = data
    np.testing.assert_array_equal(ba[:, :, 0, 0], data)
    ba[:, :, 0] = np.full((4, 4), 200, dtype=np.uint8)
    assert (ba[:, :, 0] == 200).all()


def test_write_array_is_the_one_coercion() -> None:
    """What BigArray and the REST client's RemoteArray both call (tests/server checks the client)."""
    from bigarrays_core.array.indexing import parse_selection
    from bigarrays_core.array.values import write_array

    sel = parse_selection((slice(0, 2), slice(0, 3), 0), Box((0, 0, 0), (8, 8, 8)), 1)
    out = write_array([[1, 2, 3], [4, 5, 6]], np.dtype("uint8"), sel)
    assert out.shape == (2, 3, 1, 1) and out.dtype == np.uint8
    scalar = write_array(float("nan"), np.dtype("float32"), sel)
    assert scalar.shape == (2, 3, 1, 1) and np.isnan(scalar).all()
    with pytest.raises(bc.WriteDataError, match=r"\[0:2,0:3,0:1\] channels 0:1"):
        write_array(np.zeros((2, 3)), np.dtype("uint8"), sel)
