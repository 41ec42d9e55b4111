"""The key-value store interface every storage backend implements.

A store maps string keys (``/``-separated, relative to the store's root) to bytes.
Calls are batch-shaped so a backend can run them concurrently; the single-key helpers
are thin wrappers. A missing key is a value (``None`` / ``False``), never an exception.

Writes may carry a *content encoding* (``"gzip"`` or ``"zstd"``): the bytes given are
already compressed, and the store records that in its own convention (a ``.gz`` /
``.zstd`` file suffix on local disk, a ``Content-Encoding`` header on object stores), the
conventions CloudVolume uses. Reads return the stored bytes as they are; the readers the
format layer uses (:meth:`KVStore.iter_values`) also say which content encoding the store
recorded for each value, so whether bytes are compressed is decided by where they came
from, never guessed from their size.

Byte ranges (:meth:`KVStore.get_ranges`) let adapters such as the sharded format read
parts of large values; every store answers them, most without reading the whole value.

Stamps (:meth:`KVStore.stat_many`) say which version of a value is stored without reading
it (a file's size, mtime and inode; an object's generation or ETag), so a cache can check
cheaply whether what it holds is still what is stored.

Updates that must not lose a concurrent writer's change (a read-modify-write of a chunk or
a shard) use conditional writes: :meth:`KVStore.read_for_update` returns a value with its
:class:`Version`, and :meth:`KVStore.write_if_unchanged` stores a new value only if the key
is still at that version, returning False (writing nothing) when another writer got there
first; the caller then reads again and retries. :attr:`KVStore.atomic_updates` says whether
that holds against writers in other processes and on other machines (local disk: a lock
file; memory: one process; S3: ``If-Match`` / ``If-None-Match``; GCS: generation match) or
only within this process (the default implementation, for stores that have nothing better).

This module imports nothing from the rest of bigarrays but the errors.
"""

from __future__ import annotations

import builtins
import hashlib
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

from bigarrays_core.errors import InvalidKeyError, ReadOnlyError

__all__ = ["ByteRange", "ByteSpan", "KVStore", "Stamp", "Value", "Version", "WriteOptions", "check_key",
           "check_range", "digest_stamp"]

#: The lock file a local store keeps under a dataset's root (``LocalStore``): no store lists it
#: as a key, whether it is read on disk, over HTTP or in a bucket it was copied to.
LOCK_KEY = ".bigarrays/locks"

#: Suffixes CloudVolume gives compressed files on local disk, by content encoding.
CONTENT_ENCODING_SUFFIX = {"gzip": ".gz", "zstd": ".zstd", "br": ".br"}


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key; raise :class:`InvalidKeyError` otherwise.

    A safe key is non-empty, relative, has no empty, ``.`` or ``..`` components, no
    backslash and no NUL byte, so it can never name anything outside the store's root.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"invalid key {key!r}: keys are non-empty strings")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidKeyError(f"invalid key {key!r}: keys are relative, '/'-separated paths")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKeyError(f"invalid key {key!r}: '{part}' components are not allowed")
    return key


#: ``(size, start, stop)``: bytes ``[start, stop)`` of a value expected to be ``size`` bytes.
ByteSpan = tuple[int, int, int]


class Value(NamedTuple):
    """One value as read from a store (see :meth:`KVStore.iter_values`)."""

    #: The stored bytes (or the requested part of them, when ``partial``).
    data: bytes | memoryview
    #: The content encoding the store recorded for the value (``"gzip"``, ``"zstd"``, ``"br"``,
    #: ...: a ``.gz`` / ``.zstd`` / ``.br`` file suffix, a ``Content-Encoding`` header), or
    #: None when it recorded none. None does not promise plain bytes: a value written by a
    #: tool that records nothing may still carry its compression in-band (magic bytes).
    encoding: str | None = None
    #: True when ``data`` is only the span that was asked for, not the whole value.
    partial: bool = False


class ByteRange(NamedTuple):
    """Bytes ``[start, stop)`` of the value of ``key``; ``stop=None`` reads to its end."""

    key: str
    start: int
    stop: int | None = None


def check_range(r: ByteRange) -> ByteRange:
    """Return ``r`` if its key is safe and ``0 <= start <= stop`` (or ``stop`` is None);
    raise :class:`InvalidKeyError` / ``ValueError`` naming the range otherwise."""
    check_key(r.key)
    if (not isinstance(r.start, int) or r.start < 0
            or (r.stop is not None and (not isinstance(r.stop, int) or r.stop < r.start))):
        raise ValueError(f"invalid byte range [{r.start}, {r.stop}) of {r.key!r}: need 0 <= start <= stop")
    return r


@dataclass(frozen=True)
class Stamp:
    """Which version of a value is stored, as a store can tell without reading it.

    Two stamps of the same key compare equal only if the stored value is (as far as the
    store can tell) the same: a rewrite gives a different stamp. Fields a store cannot
    fill are None. ``mtime_ns`` is the value's modification time (nanoseconds since the
    epoch) when the store knows one; it is information, not part of what changes: on a
    file system whose clock is coarse, two writes in the same tick may share it, which is
    why stores add what else they know (an inode, a generation, an ETag) to ``version``.
    """

    #: The size in bytes of what a read returns (the stored, possibly compressed, bytes);
    #: None when the store cannot tell without reading.
    size: int | None = None
    #: Modification time, ns since the epoch (None when unknown).
    mtime_ns: int | None = None
    #: Everything else that identifies the stored version: an object generation or ETag, a
    #: file's variant, device, inode and change time, a version counter, a content digest.
    version: str | None = None
    #: The content encoding the store recorded for the value (as :attr:`Value.encoding`):
    #: ``size`` counts those encoded bytes.
    encoding: str | None = None

    def token(self) -> str:
        """A short, stable text naming this stamp (for HTTP ETags and cache keys): equal
        stamps give equal tokens, in every process and on every machine."""
        cached: str | None = self.__dict__.get("_token")
        if cached is None:
            text = f"{self.size}|{self.mtime_ns}|{self.version}|{self.encoding}"
            cached = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
            object.__setattr__(self, "_token", cached)  # made once: a stamp never changes
        return cached


def digest_stamp(data: bytes | memoryview, encoding: str | None, mtime_ns: int | None = None) -> Stamp:
    """The stamp of a value made from its bytes (for stores that cannot tell its version
    otherwise): its size, a digest of its bytes, and the content encoding recorded for it."""
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    return Stamp(size=len(data), mtime_ns=mtime_ns, version=f"blake2b:{digest}", encoding=encoding)


class WriteOptions:
    """How a batch of values is stored: content encoding, content type, cache control."""

    __slots__ = ("cache_control", "content_encoding", "content_type")

    def __init__(
        self,
        content_encoding: str | None = None,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> None:
        if content_encoding is not None and content_encoding not in CONTENT_ENCODING_SUFFIX:
            raise ValueError(
                f"content_encoding {content_encoding!r} is not one of {sorted(CONTENT_ENCODING_SUFFIX)}"
            )
        self.content_encoding = content_encoding
        self.content_type = content_type
        self.cache_control = cache_control


class Version(NamedTuple):
    """The state of a key as :meth:`KVStore.read_for_update` saw it, for
    :meth:`KVStore.write_if_unchanged` to compare with.

    ``token`` is the store's own (a digest of the bytes, an ETag, a GCS generation, ...);
    None means the key did not exist.
    """

    token: object = None

    @property
    def exists(self) -> bool:
        return self.token is not None


#: Locks of the default (this process only) conditional write, by store and key.
_UPDATE_LOCKS = [threading.Lock() for _ in range(256)]


def _digest(data: bytes | memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class KVStore(ABC):
    """A byte key-value store rooted at :attr:`url`.

    Subclasses implement the four batch methods and :meth:`list`; everything else has a
    default. Thread-safety: every method may be called from several threads at once.
    """

    #: The URL of the store's root (no trailing slash).
    url: str
    #: True when writes and deletes raise :class:`ReadOnlyError`.
    read_only: bool = False
    #: True when the store is cheap to call from many threads (local disk, memory):
    #: readers then fetch in their worker threads instead of in one big batch.
    threaded_io: bool = True
    #: True when :meth:`stat_many` is a local metadata call (no network request, no read), so
    #: cheap enough to make where blocking must be brief (a server's event loop).
    local_stat: bool = False
    #: True when :meth:`iter_values` honours :func:`~bigarrays_core.kvstore.at_hand.at_hand_only`
    #: (serves only what is already in memory, else raises ``NotAtHand``), so a read may be
    #: tried where blocking is not allowed (a server's event loop).
    reads_at_hand: bool = False
    #: True when :meth:`set_many` takes any buffer (a ``memoryview``) as a value, not only
    #: ``bytes``, and keeps no reference to it after returning except through a copy or the
    #: buffer itself: writers may then pass views of one buffer they reuse.
    takes_buffers: bool = False
    @property
    def atomic_updates(self) -> bool:
        """True when :meth:`write_if_unchanged` is atomic against writers in other processes and
        on other machines too; False when only against other threads of this process (the default).
        Subclasses override it with a class attribute or a property."""
        return False

    def describe(self, key: str) -> str:
        """The full URL of ``key``, for messages."""
        return f"{self.url}/{key}"

    # -- batch interface -------------------------------------------------------------
    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The stored bytes of each key, in order; ``None`` where a key is missing.

        Raises :class:`InvalidKeyError` for an unsafe key, :class:`StorageError` when the
        store fails.
        """

    @abstractmethod
    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        """Store every value. Each key is replaced atomically (readers see old or new bytes).

        Raises :class:`ReadOnlyError` on a read-only store (nothing is written).
        """

    @abstractmethod
    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete each key (with any compressed variant); missing keys are ignored."""

    @abstractmethod
    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key (or a compressed variant of it) is stored."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Every stored key that starts with ``prefix``, in no particular order.

        Compressed variants are listed under their plain key.
        """

    def iter_values(self, keys: Sequence[str], spans: Sequence[ByteSpan | None] | None = None
                    ) -> Iterator[Value | None]:
        """The values of ``keys`` one by one, in order, with the content encoding the store
        recorded for each (``None`` where a key is missing).

        ``spans[i]``, when given, is ``(size, start, stop)``: if the value of ``keys[i]`` is
        stored as exactly ``size`` bytes with no content encoding recorded, the store may
        return only bytes ``[start, stop)`` of it (``partial=True``); otherwise it returns
        the whole value (``partial=False``).

        A value's ``data`` may be a view of a buffer the store reuses: it is valid only until
        the next value is requested. Use this in hot loops that consume each value at once.
        The default reads whole values with :meth:`get_many` (recording no encoding) and
        slices them; stores that know more (suffixes, headers) or read ranges cheaply
        override it.
        """
        for data, span in zip(self.get_many(keys), spans if spans is not None else repeat(None)):
            if data is None:
                yield None
            elif span is not None and len(data) == span[0]:
                yield Value(memoryview(data)[span[1]:span[2]], None, True)
            else:
                yield Value(data)

    def plain_files(self, keys: Sequence[str], sizes: Sequence[int]) -> builtins.list[int | None] | None:
        """Open file descriptors of the values of ``keys`` that are stored as plain files of
        exactly ``sizes[i]`` bytes with no content encoding recorded, for reading them in
        place (``pread``); None at position ``i`` for a key stored any other way (missing,
        compressed, another size), which the caller reads with :meth:`iter_values`. The
        caller closes every descriptor. None (the default) when the store has no such files,
        and inside :func:`~bigarrays_core.kvstore.at_hand.at_hand_only`.
        """
        return None

    def get_ranges(self, ranges: Sequence[ByteRange]) -> builtins.list[bytes | memoryview | None]:
        """The bytes of each range, in order; ``None`` where its key is missing.

        A range that reaches past the end of its value gives the bytes that exist (possibly
        none): callers that know how long a value must be check the length. Ranges read the
        stored bytes, whatever content encoding the store recorded. The default reads each
        distinct key once with :meth:`get_many` and slices; stores that can read a range
        directly (local files, object stores, HTTP) override it.

        Raises as :meth:`get_many`, and ``ValueError`` for a range with ``start < 0`` or
        ``stop < start`` (see :func:`check_range`).
        """
        for r in ranges:
            check_range(r)
        keys = list(dict.fromkeys(r.key for r in ranges))
        whole = dict(zip(keys, self.get_many(keys)))
        out: builtins.list[bytes | memoryview | None] = []
        for r in ranges:
            data = whole[r.key]
            out.append(None if data is None else memoryview(data)[r.start:r.stop])
        return out

    def stat_many(self, keys: Sequence[str]) -> builtins.list[Stamp | None]:
        """The :class:`Stamp` of each key's stored value, in order; ``None`` where the key
        (and its compressed variants) is missing.

        Meant to be cheap (one metadata call per key, batched): stores override it with a
        real stat (file metadata, object HEAD). This default is correct for any store but
        reads every value: it stamps each one with its size, content encoding and a digest
        of its bytes.

        Raises :class:`InvalidKeyError` for an unsafe key, :class:`StorageError` when the
        store fails.
        """
        out: list[Stamp | None] = []
        for value in self.iter_values(keys):
            if value is None:
                out.append(None)
            else:  # digested at once: the value may be a view of a reused buffer
                out.append(digest_stamp(value.data, value.encoding))
        return out
    # -- conditional writes ------------------------------------------------------------
    def read_for_update(self, key: str) -> tuple[Value | None, Version]:
        """The value of ``key`` (None if missing) and its :class:`Version`, the state
        :meth:`write_if_unchanged` compares with. The value owns its bytes.

        The default reads the whole value and takes a digest of its bytes (and content
        encoding) as the version. Raises as :meth:`get_many`.
        """
        (value,) = self.iter_values([key])
        if value is None or not value.data:
            return None, Version()
        value = Value(bytes(value.data), value.encoding)
        return value, Version((_digest(value.data), value.encoding))

    def write_if_unchanged(self, key: str, value: bytes | None, expected: Version,
                           options: WriteOptions | None = None) -> bool:
        """Store ``value`` under ``key`` (delete the key when ``value`` is None), but only if
        the key is still as :meth:`read_for_update` saw it (``expected``): True when written,
        False when another writer changed, created or deleted it meanwhile (nothing written).

        Atomic against other writers as :attr:`atomic_updates` says. The default compares
        versions and writes under a lock of this process: stores with a cross-process
        mechanism override it. Raises :class:`ReadOnlyError`, and as :meth:`set_many`.
        """
        self._check_writable("write", key)
        with _UPDATE_LOCKS[zlib.crc32(f"{self.url}\x00{key}".encode()) % len(_UPDATE_LOCKS)]:
            _, now = self.read_for_update(key)
            if now != expected:
                return False
            if value is None:
                self.delete_many([key])
            else:
                self.set_many({key: value}, options)
            return True

    # -- single-key helpers ------------------------------------------------------------
    def stat(self, key: str) -> Stamp | None:
        return self.stat_many([key])[0]

    def get(self, key: str) -> bytes | None:
        return self.get_many([key])[0]

    def set(self, key: str, value: bytes, options: WriteOptions | None = None) -> None:
        self.set_many({key: value}, options)

    def delete(self, key: str) -> None:
        self.delete_many([key])

    def exists(self, key: str) -> bool:
        return self.exists_many([key])[0]

    def prepare_writes(self, prefix: str) -> None:
        """Called before a writer stores keys under ``prefix`` (a scale's directory).

        A store may tidy up there: :class:`LocalStore` removes the stale temporary files of
        killed writers, once per directory and process. The default does nothing.
        """

    def close(self) -> None:
        """Release resources; the default does nothing."""

    def _check_writable(self, action: str, key: str | None = None) -> None:
        if self.read_only:
            where = self.describe(key) if key else self.url
            raise ReadOnlyError(f"cannot {action} {where}: the store is read-only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
