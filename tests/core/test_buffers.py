"""Recycled output memory (bigarrays_core/array/buffers.py): reused only when nothing refers to it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.array import buffers
from bigarrays_core.config import config

BIG = (256, 256, 128, 1)  # 8 MiB of uint8: pooled


@pytest.fixture(autouse=True)
def _empty_pool() -> Iterator[None]:
    """Each test starts and ends with an empty pool and the default limit."""
    gc.collect()
    buffers.set_recycle_limit(0)
    buffers.set_recycle_limit(256 << 20)
    yield
    gc.collect()
    buffers.set_recycle_limit(0)
    buffers.set_recycle_limit(256 << 20)


def test_zeros_is_a_zeroed_fortran_array_of_the_shape_and_dtype() -> None:
    for shape, dtype in [(BIG, np.uint8), ((64, 64, 64, 3), np.float32), ((3, 4, 5, 1), np.uint64)]:
        arr = buffers.zeros(shape, dtype)
        assert arr.shape == shape and arr.dtype == dtype
        assert arr.flags.f_contiguous and arr.flags.writeable
        assert not arr.any()


def test_a_dropped_output_is_reused_and_zeroed_again() -> None:
    a = buffers.zeros(BIG, np.uint8)
    a[...] = 7
    address = a.ctypes.data
    del a
    assert buffers.idle_bytes() >= np.prod(BIG)
    b = buffers.zeros(BIG, np.uint8)
    assert b.ctypes.data == address  # the same memory...
    assert not b.any()  # ...zeroed
    assert buffers.idle_bytes() == 0


def test_memory_a_view_still_refers_to_is_never_reused() -> None:
    a = buffers.zeros(BIG, np.uint8)
    a[...] = 7
    view = a[10:20, 5, :, 0]
    exported = memoryview(a[:, :, 3:4, :])
    del a
    assert buffers.idle_bytes() == 0
    b = buffers.zeros(BIG, np.uint8)
    b[...] = 9
    assert (view == 7).all() and (np.asarray(exported) == 7).all()
    del view
    assert buffers.idle_bytes() == 0  # the memoryview still holds it
    del exported
    assert buffers.idle_bytes() >= np.prod(BIG)


def test_small_outputs_are_not_pooled() -> None:
    a = buffers.zeros((64, 64, 64, 1), np.uint8)  # 256 KiB
    del a
    assert buffers.idle_bytes() == 0


def test_a_much_smaller_output_does_not_take_a_big_buffer() -> None:
    a = buffers.zeros((512, 512, 128, 1), np.uint8)  # 32 MiB
    del a
    b = buffers.zeros(BIG, np.uint8)  # 8 MiB: would waste three quarters
    assert buffers.idle_bytes() >= 32 << 20
    del b


def test_the_limit_caps_idle_memory_oldest_first() -> None:
    buffers.set_recycle_limit(20 << 20)
    a, b, c = (buffers.zeros(BIG, np.uint8) for _ in range(3))
    first = a.ctypes.data
    del a, b
    assert buffers.idle_bytes() == 16 << 20
    del c  # over the limit: the oldest goes
    assert buffers.idle_bytes() == 16 << 20
    d, e = buffers.zeros(BIG, np.uint8), buffers.zeros(BIG, np.uint8)
    addresses = {d.ctypes.data, e.ctypes.data}
    assert first not in addresses
    buffers.set_recycle_limit(0)
    del d, e
    assert buffers.idle_bytes() == 0


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="recycle limit"):
        buffers.set_recycle_limit(-1)


def test_empty_is_poisoned_in_the_test_suite() -> None:
    assert config().poison_buffers, "tests/conftest.py sets BIGARRAYS_POISON_BUFFERS=1"
    for shape in [BIG, (5, 6, 7, 2)]:
        arr = buffers.empty(shape, np.uint16)
        assert arr.shape == shape and arr.flags.f_contiguous
        assert (arr == 0xA5A5).all()


def test_threads_never_share_a_loaned_buffer() -> None:
    errors: list[str] = []

    def worker(k: int) -> None:
        for i in range(30):
            arr = buffers.zeros(BIG, np.uint8)
            if arr.any():
                errors.append(f"thread {k} got a dirty buffer")
            arr[::7, ::5] = k + 1
            if not (arr[::7, ::5] == k + 1).all() or arr[1::7, ::5].any():
                errors.append(f"thread {k} saw another thread's writes at round {i}")
            del arr

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_a_read_on_recycled_memory_has_zeros_outside_the_volume_and_in_missing_chunks() -> None:
    full = bc.create("memory://recycle-full", dtype="uint8", size=(256, 256, 128), chunk_size=(64, 64, 64))
    full[...] = 7
    sparse = bc.create("memory://recycle-sparse", dtype="uint8", size=(256, 256, 128),
                       chunk_size=(64, 64, 64), fill_missing=True)
    sparse[...] = 3
    sparse.store.delete_many([sparse.chunks()[5].key])
    expected = np.full(BIG, 3, np.uint8)
    expected[64:128, 64:128, 0:64] = 0
    for _ in range(2):
        dirty = full[...]
        assert (dirty == 7).all()
        del dirty  # its memory (all 7s) is what the next read gets
        np.testing.assert_array_equal(sparse.read(bc.Box((0, 0, 0), (256, 256, 128))), expected)
        dirty = full[...]
        del dirty
        shifted = sparse.read(bc.Box((-16, 0, 0), (240, 256, 128)))  # 16 voxels outside the volume
        assert not shifted[:16].any()
        np.testing.assert_array_equal(shifted[16:], expected[:240])


@pytest.mark.parametrize("huge_pages", [True, False])
def test_an_output_bigger_than_the_limit_is_not_kept(huge_pages: bool) -> None:
    buffers.set_recycle_limit(8 << 20)
    arr = buffers.zeros((256, 256, 256, 1), np.uint8, huge_pages=huge_pages)  # 16 MiB
    assert arr.flags.f_contiguous and arr.flags.writeable and not arr.any()
    arr[...] = 1
    del arr
    assert buffers.idle_bytes() == 0


def test_an_array_dying_while_the_pool_is_locked_does_not_deadlock() -> None:
    # A garbage collection inside a locked section may deallocate a loaned array there.
    arr = buffers.zeros(BIG, np.uint8)
    with buffers._lock:
        del arr  # its finalizer runs now, in this thread, under the lock
    assert buffers.idle_bytes() >= np.prod(BIG)  # settled at the next pool operation
    assert not buffers.zeros(BIG, np.uint8).any()


def test_small_temporary_arrays_are_pooled_and_zeroed_again() -> None:
    shape = (64, 64, 64, 1)  # 256 KiB: below MIN_BYTES, pooled only as a temporary
    a = buffers.zeros(shape, np.uint8, temporary=True)
    a[...] = 7
    address = a.ctypes.data
    del a
    assert buffers.idle_bytes() == 256 << 10  # rounded to the small grain, not to 2 MiB
    b = buffers.zeros(shape, np.uint8, temporary=True)
    assert b.ctypes.data == address and not b.any()
    del b
    c = buffers.empty(shape, np.uint8, temporary=True)
    assert c.ctypes.data == address and (c == 0xA5).all()  # poisoned, as any empty()


def test_temporaries_below_their_floor_are_not_pooled() -> None:
    assert buffers.TEMPORARY_MIN_BYTES < buffers.MIN_BYTES
    a = buffers.zeros((32, 32, 32, 1), np.uint8, temporary=True)  # 32 KiB
    assert a.flags.f_contiguous and not a.any()
    del a
    assert buffers.idle_bytes() == 0


def test_of_equal_idle_buffers_the_last_returned_is_reused_first() -> None:
    a, b = buffers.zeros(BIG, np.uint8), buffers.zeros(BIG, np.uint8)
    last = b.ctypes.data
    del a
    del b  # returned last: likeliest still in the caches
    assert buffers.zeros(BIG, np.uint8).ctypes.data == last
