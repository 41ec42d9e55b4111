"""An in-memory store: ``memory://name`` opens a process-wide named store."""

from __future__ import annotations

import itertools
import os
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence

from bigarrays_core.errors import BigArraysError
from bigarrays_core.kvstore.base import (
    ByteRange,
    ByteSpan,
    KVStore,
    Stamp,
    Value,
    Version,
    WriteOptions,
    check_key,
    check_range,
)

__all__ = ["MemoryStore"]

_NAMED: dict[str, dict[str, Value]] = {}
#: Per named store: key -> (the value object last stamped, its version number).
_NAMED_VERSIONS: dict[str, dict[str, tuple[Value, int]]] = {}
_NAMED_LOCK = threading.Lock()
#: Version numbers, unique in the process (a key deleted and written again gets a new one).
_VERSIONS = itertools.count(1)
#: Held by every change of any memory store's data (stores of one name share their data).
_WRITE_LOCK = threading.Lock()
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
    store = MemoryStore(url, read_only=read_only)
    store._values = live._values  # the same data, not a copy
    store._versions = live._versions
    return store


class MemoryStore(KVStore):
    """Keys in a dict. Stores opened with the same ``memory://`` URL share their data.

    Each value is kept with the content encoding it was written with
    (``WriteOptions.content_encoding``), which :meth:`iter_values` reports, as a file
    suffix or a ``Content-Encoding`` header would. ``data`` gives initial contents (copied;
    no encoding recorded). Each key has a version number (:meth:`stat_many`), a new one
    whenever its value is replaced.

    A store pickles by reference: unpickled in the same process it shares the data of the
    store it was pickled from; in another process (a Dask worker) every use of it raises
    :class:`BigArraysError`, since the data cannot follow it there.

    Conditional writes (:meth:`write_if_unchanged`) compare the value itself and are atomic
    (:attr:`atomic_updates`: the data lives in one process, and every change holds one lock).
    """

    atomic_updates = True
    local_stat = True
    reads_at_hand = True  # every value is in memory
    takes_buffers = True  # values are copied into bytes

    def __init__(self, url: str = "memory://", *, read_only: bool = False,
                 data: Mapping[str, bytes] | None = None) -> None:
        self.url = url.rstrip("/")
        self.read_only = read_only
        if data is not None:
            self._values = {check_key(k): Value(bytes(v)) for k, v in data.items()}
            self._versions: dict[str, tuple[Value, int]] = {}
        elif self.url in ("memory:", "memory:/", "memory://"):
            self._values = {}
            self._versions = {}
        else:
            with _NAMED_LOCK:
                self._values = _NAMED.setdefault(self.url, {})
                self._versions = _NAMED_VERSIONS.setdefault(self.url, {})
        self._token: str | None = None

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        named = self.url not in ("memory:", "memory:/", "memory://") and _NAMED.get(self.url) is self._values
        if not named and self._token is None:
            self._token = uuid.uuid4().hex
            _PICKLED[self._token] = self
        return (_unpickle, (self.url, self.read_only, os.getpid(), None if named else self._token))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        for k in keys:
            check_key(k)
        values = self._values
        out: list[bytes | None] = []
        for k in keys:
            v = values.get(k)
            out.append(None if v is None else v.data)  # type: ignore[arg-type]  # always bytes here
        return out

    def iter_values(self, keys: Sequence[str], spans: Sequence[ByteSpan | None] | None = None
                    ) -> Iterator[Value | None]:
        """Each value with the encoding it was written with; a value of exactly a span's
        size with no encoding is returned as a view of that span."""
        for k in keys:
            check_key(k)
        values = self._values
        for i, k in enumerate(keys):
            v = values.get(k)
            span = spans[i] if spans is not None else None
            if v is not None and span is not None and v.encoding is None and len(v.data) == span[0]:
                yield Value(memoryview(v.data)[span[1]:span[2]], None, True)
            else:
                yield v

    def get_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes | memoryview | None]:
        """Views of the stored bytes (values are immutable, so views stay valid)."""
        for r in ranges:
            check_range(r)
        values = self._values
        out: list[bytes | memoryview | None] = []
        for r in ranges:
            v = values.get(r.key)
            out.append(None if v is None else memoryview(v.data)[r.start:r.stop])
        return out

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        for k in items:
            check_key(k)
        self._check_writable("write", next(iter(items), None))
        encoding = options.content_encoding if options is not None else None
        with _WRITE_LOCK:
            for k, v in items.items():
                value = Value(bytes(v), encoding)
                self._values[k] = value
                self._versions[k] = (value, next(_VERSIONS))

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for k in keys:
            check_key(k)
        self._check_writable("delete", keys[0] if keys else None)
        with _WRITE_LOCK:
            for k in keys:
                self._values.pop(k, None)
                self._versions.pop(k, None)

    def stat_many(self, keys: Sequence[str]) -> list[Stamp | None]:
        """Each value's size, content encoding and version number. The number is the one its
        write was given; a value put into the shared dict without the store (another object
        than the one last stamped) gets a new number when it is first stamped."""
        for k in keys:
            check_key(k)
        out: list[Stamp | None] = []
        with _WRITE_LOCK:
            for k in keys:
                value = self._values.get(k)
                if value is None:
                    out.append(None)
                    continue
                known = self._versions.get(k)
                if known is None or known[0] is not value:
                    known = self._versions[k] = (value, next(_VERSIONS))
                out.append(Stamp(size=len(value.data), version=f"memory:{known[1]}", encoding=value.encoding))
        return out

    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        for k in keys:
            check_key(k)
        return [k in self._values for k in keys]

    def list(self, prefix: str = "") -> Iterator[str]:
        with _WRITE_LOCK:
            keys = [k for k in self._values if k.startswith(prefix)]
        return iter(keys)

    def read_for_update(self, key: str) -> tuple[Value | None, Version]:
        """The value and, as its version, the value itself (compared by content)."""
        check_key(key)
        value = self._values.get(key)
        return (value, Version(value)) if value is not None and value.data else (None, Version())

    def write_if_unchanged(self, key: str, value: bytes | None, expected: Version,
                           options: WriteOptions | None = None) -> bool:
        check_key(key)
        self._check_writable("write", key)
        with _WRITE_LOCK:
            now = self._values.get(key)
            if Version(now if now is not None and now.data else None) != expected:
                return False
            if value is None:
                self._values.pop(key, None)
                self._versions.pop(key, None)
            else:
                stored = Value(bytes(value), options.content_encoding if options is not None else None)
                self._values[key] = stored
                self._versions[key] = (stored, next(_VERSIONS))
            return True
