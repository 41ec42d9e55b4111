"""Reads at hand: inside ``at_hand_only()`` a store serves only what is in memory, never waiting
for a device (what the server's event loop may read itself), and says so when it cannot."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from bigarrays_core.errors import StorageError
from bigarrays_core.kvstore import LocalStore, MemoryStore, NotAtHand, WriteOptions, at_hand_only
from bigarrays_core.kvstore.at_hand import only_at_hand
from bigarrays_core.kvstore.base import KVStore
from tests.page_cache import evict


def read(store: KVStore, key: str) -> bytes | None:
    (value,) = store.iter_values([key])
    return None if value is None else bytes(value.data)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(str(tmp_path))


def test_a_file_in_the_page_cache_is_read_at_hand_and_one_that_is_not_raises(store: LocalStore,
                                                                             tmp_path: Path) -> None:
    data = os.urandom(300_000)
    store.set("scale/0-64_0-64_0-64", data)
    assert store.reads_at_hand
    with at_hand_only():
        assert read(store, "scale/0-64_0-64_0-64") == data  # just written: in the page cache
    evict(tmp_path / "scale" / "0-64_0-64_0-64")
    with at_hand_only(), pytest.raises(NotAtHand, match="not in the page cache"):
        read(store, "scale/0-64_0-64_0-64")
    assert read(store, "scale/0-64_0-64_0-64") == data  # an ordinary read waits for the disk
    with at_hand_only():
        assert read(store, "scale/0-64_0-64_0-64") == data  # and leaves it in the page cache


def test_a_missing_key_is_none_at_hand_too(store: LocalStore) -> None:
    with at_hand_only():
        assert read(store, "scale/nothing") is None


def test_compressed_variants_are_not_read_at_hand(store: LocalStore) -> None:
    store.set("scale/c", b"\x1f\x8b" + b"x" * 100, WriteOptions(content_encoding="gzip"))  # stored as scale/c.gz
    with at_hand_only(), pytest.raises(NotAtHand, match="plain file"):
        read(store, "scale/c")
    (value,) = store.iter_values(["scale/c"])
    assert value is not None and value.encoding == "gzip"


def test_a_kernel_that_refuses_the_flag_turns_reads_at_hand_off(store: LocalStore,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store.set("scale/k", b"abc" * 1000)
    preadv = os.preadv

    def refusing(fd: int, buffers: list[memoryview], offset: int, flags: int = 0) -> int:
        if flags:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return preadv(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", refusing)
    with at_hand_only(), pytest.raises(NotAtHand, match="not supported"):
        read(store, "scale/k")
    assert not store.reads_at_hand
    assert LocalStore.reads_at_hand  # only this store stops asking
    assert read(store, "scale/k") == b"abc" * 1000


def test_other_errors_of_a_read_at_hand_are_storage_errors(store: LocalStore,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store.set("scale/e", b"abc")

    def failing(fd: int, buffers: list[memoryview], offset: int, flags: int = 0) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "preadv", failing)
    with at_hand_only(), pytest.raises(StorageError, match="cannot read .*scale/e: Input/output error"):
        read(store, "scale/e")
    assert store.reads_at_hand


def test_memory_stores_have_everything_at_hand() -> None:
    store = MemoryStore()
    store.set("a/b", b"123")
    assert store.reads_at_hand
    with at_hand_only():
        assert read(store, "a/b") == b"123"


def test_the_setting_holds_in_its_block_only_and_not_in_threads_started_there() -> None:
    seen: list[bool] = []
    assert not only_at_hand()
    with at_hand_only():
        assert only_at_hand()
        t = threading.Thread(target=lambda: seen.append(only_at_hand()))
        t.start()
        t.join()
    assert not only_at_hand()
    assert seen == [False]
