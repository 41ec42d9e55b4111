"""An in-memory store: ``memory://name`` opens a process-wide named store."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

from bigarrays_core.kvstore.base import KVStore, Stamp, WriteOptions, check_key

__all__ = ["MemoryStore"]

_NAMED: dict[str, dict[str, bytes]] = {}
#: Per named store: key -> (the value object last stamped, its version number).
_NAMED_VERSIONS: dict[str, dict[str, tuple[bytes, int]]] = {}
_NAMED_LOCK = threading.Lock()
#: Version numbers, unique in the process (a key deleted and written again gets a new one).
_VERSIONS = itertools.count(1)


class MemoryStore(KVStore):
    """Keys in a dict. Stores opened with the same ``memory://`` URL share their data.

    Content encodings are not recorded: the bytes are kept as given. Each key has a
    version number (:meth:`stat_many`), a new one whenever its value is replaced, through
    the store or by writing into the shared dict directly.
    """

    local_stat = True

    def __init__(self, url: str = "memory://", *, read_only: bool = False,
                 data: dict[str, bytes] | None = None) -> None:
        self.url = url.rstrip("/")
        self.read_only = read_only
        if data is not None:
            self._data = data
            self._versions: dict[str, tuple[bytes, int]] = {}
        elif self.url in ("memory:", "memory:/", "memory://"):
            self._data = {}
            self._versions = {}
        else:
            with _NAMED_LOCK:
                self._data = _NAMED.setdefault(self.url, {})
                self._versions = _NAMED_VERSIONS.setdefault(self.url, {})
        self._lock = threading.Lock()

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
                value = bytes(v)
                self._data[k] = value
                self._versions[k] = (value, next(_VERSIONS))

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for k in keys:
            check_key(k)
        self._check_writable("delete", keys[0] if keys else None)
        with self._lock:
            for k in keys:
                self._data.pop(k, None)
                self._versions.pop(k, None)

    def stat_many(self, keys: Sequence[str]) -> list[Stamp | None]:
        """Each value's size and version number. The number is the one its write was given;
        a value put into the shared dict without the store (another object than the one last
        stamped) gets a new number when it is first stamped."""
        for k in keys:
            check_key(k)
        out: list[Stamp | None] = []
        with self._lock:
            for k in keys:
                value = self._data.get(k)
                if value is None:
                    out.append(None)
                    continue
                known = self._versions.get(k)
                if known is None or known[0] is not value:
                    known = self._versions[k] = (value, next(_VERSIONS))
                out.append(Stamp(size=len(value), version=f"memory:{known[1]}"))
        return out

    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        for k in keys:
            check_key(k)
        return [k in self._data for k in keys]

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            keys = [k for k in self._data if k.startswith(prefix)]
        return iter(keys)
