"""How LocalStore puts a value in place: an unnamed file (``O_TMPFILE``) linked under the key
when the key is new, linked under a temporary name and renamed over the key when it replaces
a value, a named temporary where the file system has no unnamed files. Whichever way, the
key holds the whole new value, no temporary name is left, the key's other variants are
dropped, and no descriptor leaks, also when a step fails."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from bigarrays_core import StorageError
from bigarrays_core.kvstore import WriteOptions, local
from bigarrays_core.kvstore.local import LocalStore

pytestmark = pytest.mark.skipif(not local._UNNAMED_FILES, reason="needs O_TMPFILE and /proc (Linux)")

TMP = ".bigarrays-tmp-"


def _names(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "locks")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _store(root: Path) -> LocalStore:
    """A store whose lock file is open already (it stays open for good, by design)."""
    store = LocalStore(str(root))
    store.set("warm/up", b"")
    store.delete("warm/up")
    return store


@pytest.fixture
def renames(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets of every rename the store makes."""
    seen: list[str] = []
    real = os.replace

    def spy(src: Any, dst: Any, **kw: Any) -> None:
        seen.append(os.path.basename(str(dst)))
        real(src, dst, **kw)

    monkeypatch.setattr(local.os, "replace", spy)
    return seen


@pytest.fixture
def unnamed_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The directories in which the store opened an unnamed file."""
    seen: list[str] = []
    real = os.open

    def spy(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & local._O_TMPFILE == local._O_TMPFILE:
            seen.append(str(path))
        return real(path, flags, *args, **kw)

    monkeypatch.setattr(local.os, "open", spy)
    return seen


def test_a_new_key_is_one_link_of_an_unnamed_file(tmp_path: Path, renames: list[str],
                                                  unnamed_opens: list[str]) -> None:
    store = _store(tmp_path)
    unnamed_opens.clear()
    before = _fds()
    store.set_many({f"s/{i}": bytes([i]) * 70_000 for i in range(20)})
    assert len(unnamed_opens) == 20 and renames == []
    assert _names(tmp_path) == sorted(f"s/{i}" for i in range(20))
    for i in range(20):
        assert (tmp_path / "s" / str(i)).read_bytes() == bytes([i]) * 70_000
    assert _fds() == before


def test_a_rewrite_is_renamed_over_the_key_and_drops_other_variants(tmp_path: Path, renames: list[str]) -> None:
    store = LocalStore(str(tmp_path))
    store.set("s/k", b"old plain")
    store.set("s/k", b"new gzip", WriteOptions(content_encoding="gzip"))  # a new name: linked
    assert renames == [] and _names(tmp_path) == ["s/k.gz"]
    assert (tmp_path / "s" / "k.gz").read_bytes() == b"new gzip"
    store.set("s/k", b"newer gzip", WriteOptions(content_encoding="gzip"))  # over it: renamed
    store.set("s/k", b"plain again")
    assert renames == ["k.gz"] and _names(tmp_path) == ["s/k"]
    assert (tmp_path / "s" / "k").read_bytes() == b"plain again"


def test_a_key_that_appears_meanwhile_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  renames: list[str]) -> None:
    """Another writer (one that takes no key lock) creates the key between the lookup and the
    link: the link fails, and the value is renamed over the key instead."""
    store = LocalStore(str(tmp_path))
    real = local._link_open_file
    raced: list[str] = []

    def link(fd: int, path: str) -> None:
        if not raced:
            raced.append(path)
            Path(path).write_bytes(b"theirs")
        real(fd, path)

    monkeypatch.setattr(local, "_link_open_file", link)
    store.set("s/k", b"ours")
    assert renames == ["k"] and _names(tmp_path) == ["s/k"]
    assert (tmp_path / "s" / "k").read_bytes() == b"ours"


def test_a_file_system_without_unnamed_files_gets_named_temporaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    renames: list[str]) -> None:
    real = os.open
    tried: list[str] = []

    def refuse(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & local._O_TMPFILE == local._O_TMPFILE:
            tried.append(str(path))
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real(path, flags, *args, **kw)

    monkeypatch.setattr(local.os, "open", refuse)
    store = LocalStore(str(tmp_path))
    store.set_many({"s/a": b"a", "s/b": b"b"})
    assert len(tried) == 1  # remembered: not asked again
    assert len(renames) == 2 and _names(tmp_path) == ["s/a", "s/b"]
    assert (tmp_path / "s" / "b").read_bytes() == b"b"


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_link_or_rename_raises_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           existing: bool) -> None:
    store = _store(tmp_path)
    if existing:
        store.set("s/k", b"old")
    before = _fds()

    def broken(*args: Any, **kw: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    if existing:  # the rename over the key fails
        monkeypatch.setattr(local.os, "replace", broken)
    else:  # the link under the key fails
        monkeypatch.setattr(local, "_link_open_file", broken)
    with pytest.raises(StorageError, match=r"cannot write .*s/k.*Input/output error"):
        store.set("s/k", b"new")
    assert _fds() == before
    assert _names(tmp_path) == (["s/k"] if existing else [])
    if existing:
        assert (tmp_path / "s" / "k").read_bytes() == b"old"


def test_a_failed_lock_discards_the_written_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    before = _fds()

    def no_lock(*args: Any, **kw: Any) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(local, "_lock_range", no_lock)
    with pytest.raises(StorageError, match=r"cannot lock .*s/k"):
        store.set("s/k", b"new")
    assert _fds() == before and _names(tmp_path) == []


def test_conditional_writes_link_new_keys_and_replace_old_ones(tmp_path: Path, renames: list[str]) -> None:
    store = LocalStore(str(tmp_path))
    value, version = store.read_for_update("s/k")
    assert value is None and store.write_if_unchanged("s/k", b"first", version)
    value, version = store.read_for_update("s/k")
    assert value is not None and bytes(value.data) == b"first"
    assert store.write_if_unchanged("s/k", b"second", version)
    assert not store.write_if_unchanged("s/k", b"stale", version)  # the version moved on
    assert renames == ["k"] and _names(tmp_path) == ["s/k"]
    assert (tmp_path / "s" / "k").read_bytes() == b"second"


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("why", [errno.EPERM, errno.EXDEV])
def test_unnamed_files_that_cannot_be_linked_are_copied_to_a_named_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed_opens: list[str], existing: bool, why: int) -> None:
    """A file system (or a security rule) that makes unnamed files but refuses to link them:
    the value is copied to a named temporary renamed over the key, and the store writes
    named temporaries from then on. Nothing is lost, no name nor descriptor is left."""
    store = _store(tmp_path)
    if existing:
        store.set("s/k", b"old")
    value = bytes(range(256)) * 9000  # more than one block of the copy

    def refuse(fd: int, path: str) -> None:
        raise OSError(why, os.strerror(why))

    monkeypatch.setattr(local, "_link_open_file", refuse)
    unnamed_opens.clear()
    before = _fds()
    store.set("s/k", value)
    assert (tmp_path / "s" / "k").read_bytes() == value and _names(tmp_path) == ["s/k"]
    store.set("s/other", b"x")  # not tried again
    assert len(unnamed_opens) == 1 and (tmp_path / "s" / "other").read_bytes() == b"x"
    assert _fds() == before
