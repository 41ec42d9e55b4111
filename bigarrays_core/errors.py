"""The one error tree of bigarrays.

Every error raised on purpose by bigarrays derives from :class:`BigArraysError` and
also from the builtin that fits, so callers can catch either::

    BigArraysError
    ├── InfoError              (ValueError)      a malformed or unsupported ``info`` field
    ├── DatasetNotFoundError   (FileNotFoundError) no ``info`` at the URL
    ├── DatasetExistsError     (FileExistsError) ``create`` over an existing dataset
    ├── SelectionError         (IndexError)      an index bigarrays cannot take (step != 1, ...)
    ├── OutOfBoundsError       (IndexError)      a box outside the volume with ``bounded=True``
    ├── AlignmentError         (ValueError)      a write not on the chunk grid
    ├── WriteDataError         (ValueError)      data of the wrong shape or dtype for a write
    ├── ChunkNotFoundError     (KeyError)        a missing chunk with ``fill_missing=False``
    ├── ChunkDecodeError       (ValueError)      stored chunk bytes that cannot be decoded
    ├── ChunkEncodeError       (ValueError)      an array the scale's encoding cannot store
    ├── UnknownCodecError      (ValueError)      an encoding or compression bigarrays lacks
    ├── InvalidKeyError        (ValueError)      a key that is malformed or escapes the store
    ├── UnknownSchemeError     (ValueError)      a URL scheme with no key-value store
    └── StorageError           (OSError)         the store failed
        ├── ReadOnlyError      (PermissionError) a write to a read-only store
        ├── StoragePermissionError (PermissionError) credentials or permissions refused
        └── StorageTimeoutError (TimeoutError)   the store did not answer in time

Messages always name what was wrong: the key, the box, the field or the URL.
"""

from __future__ import annotations

__all__ = [
    "AlignmentError",
    "BigArraysError",
    "ChunkDecodeError",
    "ChunkEncodeError",
    "ChunkNotFoundError",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "InfoError",
    "InvalidKeyError",
    "OutOfBoundsError",
    "ReadOnlyError",
    "SelectionError",
    "StorageError",
    "StoragePermissionError",
    "StorageTimeoutError",
    "UnknownCodecError",
    "UnknownSchemeError",
    "WriteDataError",
]


class BigArraysError(Exception):
    """Root of every error bigarrays raises on purpose."""

    def __str__(self) -> str:
        # KeyError subclasses would otherwise print the repr of their message.
        return str(self.args[0]) if self.args else ""


class InfoError(BigArraysError, ValueError):
    """A malformed or unsupported ``info`` field; the message names the field path."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DatasetNotFoundError(BigArraysError, FileNotFoundError):
    """There is no ``info`` at the dataset URL."""


class DatasetExistsError(BigArraysError, FileExistsError):
    """``create`` was asked to make a dataset where one already exists."""


class SelectionError(BigArraysError, IndexError):
    """An index bigarrays does not support (a step other than 1, too many axes, ...)."""


class OutOfBoundsError(BigArraysError, IndexError):
    """A box reaches outside the volume while ``bounded=True``."""


class AlignmentError(BigArraysError, ValueError):
    """A write that is not aligned to the chunk grid.

    ``nearest`` is the smallest chunk-aligned box (clipped to the volume) that contains
    the requested one.
    """

    def __init__(self, message: str, *, box: object = None, nearest: object = None) -> None:
        super().__init__(message)
        self.box = box
        self.nearest = nearest


class WriteDataError(BigArraysError, ValueError):
    """The data given to a write has the wrong shape or a dtype that cannot be stored."""


class ChunkNotFoundError(BigArraysError, KeyError):
    """A chunk is missing and ``fill_missing=False``; ``key`` names it."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ChunkDecodeError(BigArraysError, ValueError):
    """Stored chunk bytes could not be decoded; ``key`` names the chunk."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ChunkEncodeError(BigArraysError, ValueError):
    """An array could not be encoded with the scale's encoding."""


class UnknownCodecError(BigArraysError, ValueError):
    """An encoding or compression bigarrays does not know; the message lists the known ones."""


class InvalidKeyError(BigArraysError, ValueError):
    """A key that is malformed or would escape the store's root."""


class UnknownSchemeError(BigArraysError, ValueError):
    """A URL whose scheme has no registered key-value store."""


class StorageError(BigArraysError, OSError):
    """The key-value store failed; the message names the URL (and the last status)."""


class ReadOnlyError(StorageError, PermissionError):
    """A write, delete or create on a read-only store."""


class StoragePermissionError(StorageError, PermissionError):
    """The store refused the credentials or the permission."""


class StorageTimeoutError(StorageError, TimeoutError):
    """The store did not answer within the timeout."""
