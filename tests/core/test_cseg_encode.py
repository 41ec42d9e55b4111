"""The numba compressed_segmentation encoder: the same bytes as the ``compressed_segmentation``
package (Neuroglancer's reference choices), decoded back exactly, any layout, GIL released."""

from __future__ import annotations

import threading

import compressed_segmentation as cs
import numpy as np
import pytest

from bigarrays_core.kernels import cseg_encode
from bigarrays_core.kernels.cseg_encode import encode_channel
from tests.pyramid.reference import segmentation


def _cases(rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for shape in [(64, 64, 64), (37, 20, 9), (8, 8, 8), (1, 1, 1), (5, 64, 3)]:
        for dt in (np.uint64, np.uint32):
            top = 2**32 if dt == np.uint32 else 2**64
            out.append(segmentation(rng, shape, cells=7).astype(dt))  # few labels, runs
            out.append(rng.integers(0, top, size=shape, dtype=dt, endpoint=False))  # all different
            out.append(rng.integers(0, 3, size=shape).astype(dt))  # ties everywhere
        for k in (63, 64, 65, 200):  # around the count of values where blocks are sorted whole
            out.append(rng.permutation(np.arange(16 * 16 * 8) % k).reshape(16, 16, 8).astype(np.uint64))
    return [np.asfortranarray(a) for a in out]


@pytest.mark.parametrize("block", [(8, 8, 8), (4, 4, 2), (8, 8, 4), (3, 5, 7)])
def test_the_streams_are_the_packages_bytes(block: tuple[int, int, int]) -> None:
    for a in _cases(np.random.default_rng(4)):
        ours = encode_channel(a, block)
        theirs = np.frombuffer(bytes(cs.compress(a, block_size=block, order="F")), np.uint32)[1:]
        assert np.array_equal(ours, theirs), (a.shape, a.dtype, block)
        back = cs.decompress(np.concatenate([[np.uint32(1)], ours]).tobytes(), a.shape, a.dtype, block, order="F")
        np.testing.assert_array_equal(np.asarray(back).reshape(a.shape, order="F"), a)


def _slot(v: int) -> int:
    """The slot of ``v`` in the encoder's per-block value table (its own hash constants, so
    the values below keep sharing a slot if those change)."""
    return ((v * int(cseg_encode._GOLD)) % 2**64) >> int(cseg_encode._SHIFT)


def test_values_that_share_a_table_slot_keep_their_own_indices() -> None:
    # The encoder finds a voxel's index in a direct-mapped table keyed by a hash of its
    # value: values sharing a slot evict each other. Blocks made of such values (the
    # block's first value among them, alternating voxel by voxel, and with other values)
    # must still give the package's bytes.
    same = [v for v in range(1, 200_000) if _slot(v) == _slot(1)][:6]
    assert len(same) == 6
    rng = np.random.default_rng(7)
    for dt in (np.uint64, np.uint32):
        alternating = np.resize(np.array(same[:2], dt), 16 * 16 * 8).reshape(16, 16, 8, order="F")
        mixed = rng.choice(np.array(same + [7, 8, 9], dt), size=(16, 16, 8))
        for a in (alternating, mixed, np.asfortranarray(mixed[::-1])):
            a = np.asfortranarray(a)
            theirs = np.frombuffer(bytes(cs.compress(a, block_size=(8, 8, 8), order="F")), np.uint32)[1:]
            assert np.array_equal(encode_channel(a, (8, 8, 8)), theirs), dt


def test_views_of_any_layout_encode_like_copies() -> None:
    big = np.asfortranarray(segmentation(np.random.default_rng(5), (70, 60, 20), cells=9))
    view = big[3:67, 1:60:2, 4:20]
    np.testing.assert_array_equal(encode_channel(view, (8, 8, 8)),
                                  encode_channel(np.asfortranarray(view), (8, 8, 8)))
    np.testing.assert_array_equal(encode_channel(np.ascontiguousarray(view), (8, 8, 8)),
                                  encode_channel(np.asfortranarray(view), (8, 8, 8)))


def test_bad_input_is_named_and_threads_encode_at_once() -> None:
    with pytest.raises(ValueError, match="uint32 or uint64"):
        encode_channel(np.zeros((4, 4, 4), np.int64), (8, 8, 8))
    a = np.asfortranarray(segmentation(np.random.default_rng(6), (64, 64, 64), cells=30))
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(encode_channel(a, (8, 8, 8)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(np.array_equal(r, results[0]) for r in results)
