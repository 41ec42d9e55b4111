"""An in-memory store: ``memory://name`` opens a process-wide named store."""

from __future__ import annotations

import os
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence

from bigarrays_core.errors import BigArraysError
from bigarrays_core.kvstore.base import KVStore, WriteOptions, check_key

__all__ = ["MemoryStore"]

_NAMED: dict[str, dict[str, bytes]] = {}
_NAMED_LOCK = threading.Lock()
#: Anonymous stores that have been pickled, by token, so unpickling finds their data again.
_PICKLED: weakref.WeakValueDictionary[str, MemoryStore] = weakref.WeakValueDictionary()


class _Elsewhere(KVStore):
    """A memory store unpickled in another process: every use raises, naming why."""

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.pid = pid

    def _refuse(self, *args: object) -> BigArraysError:
        return BigArraysError(
            f"{self.url} is a memory store of process {self.pid}: its data cannot be used in another process "
            f"(process {os.getpid()}, a Dask worker, say); use a file:// directory or a gs:// / s3:// URL there")

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        raise self._refuse()

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        raise self._refuse()

    def delete_many(self, keys: Iterable[str]) -> None:
        raise self._refuse()

    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        raise self._refuse()

    def list(self, prefix: str = "") -> Iterator[str]:
        raise self._refuse()


def _unpickle(url: str, read_only: bool, pid: int, token: str | None) -> KVStore:
    if pid != os.getpid():  # unpickling must work (Dask would not say why); using it must not
        return _Elsewhere(url, pid)
    if token is None:
        return MemoryStore(url, read_only=read_only)
    live = _PICKLED.get(token)
    if live is None:
        raise BigArraysError(f"the anonymous memory store {url} that was pickled no longer exists")
    return MemoryStore(url, read_only=read_only, data=live._data)


class MemoryStore(KVStore):
    """Keys in a dict. Stores opened with the same ``memory://`` URL share their data.

    Content encodings are not recorded: the bytes are kept as given.

    A store pickles by reference: unpickled in the same process it shares the data of the
    store it was pickled from; in another process (a Dask worker) every use of it raises
    :class:`BigArraysError`, since the data cannot follow it there.
    """

    def __init__(self, url: str = "memory://", *, read_only: bool = False,
                 data: dict[str, bytes] | None = None) -> None:
        self.url = url.rstrip("/")
        self.read_only = read_only
        if data is not None:
            self._data = data
        elif self.url in ("memory:", "memory:/", "memory://"):
            self._data = {}
        else:
            with _NAMED_LOCK:
                self._data = _NAMED.setdefault(self.url, {})
        self._lock = threading.Lock()
        self._token: str | None = None

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        named = self.url not in ("memory:", "memory:/", "memory://") and _NAMED.get(self.url) is self._data
        if not named and self._token is None:
            self._token = uuid.uuid4().hex
            _PICKLED[self._token] = self
        return (_unpickle, (self.url, self.read_only, os.getpid(), None if named else self._token))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        for k in keys:
            check_key(k)
        data = self._data
        return [data.get(k) for k in keys]

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        for k in items:
            check_key(k)
        self._check_writable("write", next(iter(items), None))
        with self._lock:
            for k, v in items.items():
                self._data[k] = bytes(v)

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for k in keys:
            check_key(k)
        self._check_writable("delete", keys[0] if keys else None)
        with self._lock:
            for k in keys:
                self._data.pop(k, None)

    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        for k in keys:
            check_key(k)
        return [k in self._data for k in keys]

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            keys = [k for k in self._data if k.startswith(prefix)]
        return iter(keys)
