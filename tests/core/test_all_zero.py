"""Which chunks count as empty (not stored when sparse): bigarrays_core.scale_writer.is_all_zero."""

from __future__ import annotations

import numpy as np
import pytest

from bigarrays_core.scale_writer import is_all_zero


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int16", "uint64", "float32", "float64"])
def test_only_bitwise_zero_chunks_are_empty(dtype: str) -> None:
    chunk = np.zeros((8, 8, 8, 2), dtype=dtype, order="F")
    assert is_all_zero(chunk)
    assert is_all_zero(chunk[2:6, 1:7, 3:5])  # a strided view
    for where in [(0, 0, 0, 0), (7, 7, 7, 1), (3, 4, 5, 0), (0, 7, 0, 1)]:
        one = chunk.copy(order="F")
        one[where] = 1
        assert not is_all_zero(one), where
    assert is_all_zero(chunk[:0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_negative_zero_is_not_empty(dtype: str) -> None:
    # -0.0 == 0.0, but a missing chunk reads as +0.0: a chunk of -0.0 must be stored.
    chunk = np.zeros((4, 4, 4, 1), dtype=dtype)
    chunk[2, 1, 3, 0] = -0.0
    assert not is_all_zero(chunk)
    corner = np.zeros((4, 4, 4, 1), dtype=dtype)
    corner[0, 0, 0, 0] = -0.0
    assert not is_all_zero(corner)
