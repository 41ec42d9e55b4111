"""The key-value store interface every storage backend implements.

A store maps string keys (``/``-separated, relative to the store's root) to bytes.
Calls are batch-shaped so a backend can run them concurrently; the single-key helpers
are thin wrappers. A missing key is a value (``None`` / ``False``), never an exception.

Writes may carry a *content encoding* (``"gzip"`` or ``"zstd"``): the bytes given are
already compressed, and the store records that in its own convention (a ``.gz`` /
``.zstd`` file suffix on local disk, a ``Content-Encoding`` header on object stores), the
conventions CloudVolume uses. Reads return the stored bytes as they are (callers sniff
the compression from magic bytes).

This module imports nothing from the rest of bigarrays but the errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence

from bigarrays_core.errors import InvalidKeyError, ReadOnlyError

__all__ = ["ByteSpan", "KVStore", "WriteOptions", "check_key"]

#: Suffixes CloudVolume gives compressed files on local disk, by content encoding.
CONTENT_ENCODING_SUFFIX = {"gzip": ".gz", "zstd": ".zstd"}


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

    def iter_get(self, keys: Sequence[str]) -> Iterator[bytes | memoryview | None]:
        """The values of ``keys`` one by one, in order (``None`` where missing).

        A value may be a view of a buffer the store reuses: it is valid only until the
        next value is requested. Use this in hot loops that consume each value at once;
        the default yields from :meth:`get_many`.
        """
        yield from self.get_many(keys)

    def iter_get_spans(self, keys: Sequence[str], spans: Sequence[ByteSpan | None]
                       ) -> Iterator[tuple[bytes | memoryview | None, bool]]:
        """Like :meth:`iter_get`, but reading only part of values that are stored plainly.

        ``spans[i]`` is ``(size, start, stop)`` or ``None``. Where it is given and the value
        of ``keys[i]`` is stored as exactly ``size`` bytes with no content encoding (no
        ``.gz``/``.zstd`` variant, no Content-Encoding), this yields ``(value[start:stop],
        True)``; otherwise ``(whole value or None, False)``, exactly as :meth:`iter_get`.
        Values may be views of a reused buffer, valid until the next one is requested.
        The default reads whole values and slices them; stores that can read a byte range
        (local files) override it.
        """
        for data, span in zip(self.iter_get(keys), spans):
            if span is not None and data is not None and len(data) == span[0]:
                yield memoryview(data)[span[1]:span[2]], True
            else:
                yield data, False

    # -- single-key helpers ------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        return self.get_many([key])[0]

    def set(self, key: str, value: bytes, options: WriteOptions | None = None) -> None:
        self.set_many({key: value}, options)

    def delete(self, key: str) -> None:
        self.delete_many([key])

    def exists(self, key: str) -> bool:
        return self.exists_many([key])[0]

    def close(self) -> None:
        """Release resources; the default does nothing."""

    def _check_writable(self, action: str, key: str | None = None) -> None:
        if self.read_only:
            where = self.describe(key) if key else self.url
            raise ReadOnlyError(f"cannot {action} {where}: the store is read-only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
