"""An in-memory store: ``memory://name`` opens a process-wide named store."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

from bigarrays_core.kvstore.base import (
    ByteRange,
    ByteSpan,
    KVStore,
    Stamp,
    Value,
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


class MemoryStore(KVStore):
    """Keys in a dict. Stores opened with the same ``memory://`` URL share their data.

    Each value is kept with the content encoding it was written with
    (``WriteOptions.content_encoding``), which :meth:`iter_values` reports, as a file
    suffix or a ``Content-Encoding`` header would. ``data`` gives initial contents (copied;
    no encoding recorded). Each key has a version number (:meth:`stat_many`), a new one
    whenever its value is replaced.
    """

    local_stat = True

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
        self._lock = threading.Lock()

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
        with self._lock:
            for k, v in items.items():
                value = Value(bytes(v), encoding)
                self._values[k] = value
                self._versions[k] = (value, next(_VERSIONS))

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for k in keys:
            check_key(k)
        self._check_writable("delete", keys[0] if keys else None)
        with self._lock:
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
        with self._lock:
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
        with self._lock:
            keys = [k for k in self._values if k.startswith(prefix)]
        return iter(keys)
