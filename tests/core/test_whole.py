"""A BigArray as a whole: ``np.asarray(ba)`` reads its bounds, and iterating is refused."""

from __future__ import annotations

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.array.whole import MAX_ARRAY_BYTES, describe_size
from bigarrays_core.geometry import Box

from .datasets import make, random_data


def test_asarray_is_the_volume_in_absolute_coordinates(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, dtype="uint16", size=(20, 12, 6), chunk_size=(8, 8, 4), voxel_offset=(-5, 3, -2),
              num_channels=2)
    data = random_data(rng, ba.bounds, np.uint16, 2)
    ba[:, :, :] = data
    out = np.asarray(ba)
    assert out.shape == (20, 12, 6, 2) and out.dtype == np.uint16
    np.testing.assert_array_equal(out, data)
    assert out[0, 0, 0, 1] == ba[-5, 3, -2, 1]  # element [0, 0, 0] is the voxel at voxel_offset
    np.testing.assert_array_equal(np.array(ba, dtype=np.float64), data.astype(np.float64))
    assert np.asarray(ba, dtype=np.float64).dtype == np.float64
    assert int(np.sum(ba)) == int(data.sum(dtype=np.int64))  # numpy functions take a BigArray
    with pytest.raises(ValueError, match="copy=False"):
        np.asarray(ba, copy=False)


def test_asarray_of_a_large_volume_is_refused_before_reading(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="uint8", size=(2048, 2048, 512), chunk_size=(64, 64, 64))
    assert ba.max_array_bytes == MAX_ARRAY_BYTES == 2**30
    with pytest.raises(bc.TooLargeError) as info:
        np.asarray(ba)
    message = str(info.value)
    assert "2 GiB" in message and "2147483648 bytes" in message and "1 GiB" in message
    assert "Index a region" in message and str(ba.bounds) in message
    assert isinstance(info.value, bc.SelectionError)


def test_the_limit_is_checked_before_anything_is_read(local_url: str) -> None:
    ba = make(local_url, dtype="uint8", size=(16, 16, 8), chunk_size=(8, 8, 8))
    ba[:, :, :] = 1
    ref = ba.chunks()[0]
    with open(local_url[len("file://"):] + "/" + ref.key, "wb") as f:
        f.write(b"not a chunk")  # any read would fail with ChunkDecodeError
    ba.max_array_bytes = 16 * 16 * 8 - 1
    with pytest.raises(bc.TooLargeError, match="2 KiB .2048 bytes., over the limit of 2 KiB"):
        np.asarray(ba)
    ba.max_array_bytes = 16 * 16 * 8
    with pytest.raises(bc.ChunkDecodeError):
        np.asarray(ba)


def test_iteration_is_a_type_error(dataset_url: str) -> None:
    """Without __iter__, Python iterates through ba[0], ba[1], ...: zeros forever."""
    ba = make(dataset_url, size=(8, 8, 8), chunk_size=(8, 8, 8))
    for attempt in (lambda: iter(ba), lambda: list(ba), lambda: [v for v in ba]):
        with pytest.raises(TypeError, match="not iterable.*index a region"):
            attempt()
    with pytest.raises(TypeError, match="not iterable"):
        assert 3 in ba


@pytest.mark.parametrize(("n", "text"), [(0, "0 bytes"), (1023, "1023 bytes"), (1024, "1 KiB"),
                                         (3 * 2**29, "1.5 GiB"), (int(2.33 * 2**40), "2.33 TiB")])
def test_describe_size(n: int, text: str) -> None:
    assert describe_size(n) == text


def test_box_read_still_works_for_large_volumes(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="uint8", size=(2048, 2048, 512), chunk_size=(64, 64, 64))
    assert ba.read(Box((0, 0, 0), (4, 4, 4))).sum() == 0
