"""The one error tree of bigarrays.

Every error raised on purpose by bigarrays derives from :class:`BigArraysError` and
also from the builtin that fits, so callers can catch either. Each class has a stable
machine ``code`` (the ``"error"`` field of the server's JSON errors); :func:`error_class`
maps a code back to its class, which is how the REST client raises the server's errors
as themselves::

    BigArraysError                         internal
    ├── InfoError              (ValueError)        bad_dataset      a malformed or unsupported ``info`` field
    ├── DatasetNotFoundError   (FileNotFoundError) not_found        no ``info`` at the URL
    ├── DatasetExistsError     (FileExistsError)   exists           ``create`` over an existing dataset
    ├── SelectionError         (IndexError)        bad_bbox         an index bigarrays cannot take (step != 1, ...)
    │   └── TooLargeError                          too_large        a region too large to read in one piece
    ├── OutOfBoundsError       (IndexError)        out_of_bounds    a box outside the volume
    ├── AlignmentError         (ValueError)        unaligned        a write not on the chunk grid
    ├── WriteDataError         (ValueError)        bad_data         data of the wrong shape or dtype for a write
    ├── ChunkNotFoundError     (KeyError)          missing_chunk    a missing chunk with ``fill_missing=False``
    ├── ChunkDecodeError       (ValueError)        bad_chunk        stored chunk bytes that cannot be decoded
    ├── ChunkEncodeError       (ValueError)        cannot_encode    an array the scale's encoding cannot store
    ├── UnknownCodecError      (ValueError)        unknown_codec    an encoding or compression bigarrays lacks
    ├── InvalidKeyError        (ValueError)        bad_param        a key that is malformed or escapes the store
    ├── UnknownSchemeError     (ValueError)        unknown_scheme   a URL scheme with no key-value store
    ├── ConfigError            (ValueError)        bad_config       a BIGARRAYS_* variable with an unusable value
    └── StorageError           (OSError)           upstream_error   the store failed
        ├── ReadOnlyError      (PermissionError)   read_only        a write to a read-only store
        ├── StoragePermissionError (PermissionError) upstream_denied credentials or permissions refused
        └── StorageTimeoutError (TimeoutError)     upstream_timeout the store did not answer in time

Messages always name what was wrong: the key, the box, the field or the URL.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlignmentError",
    "BigArraysError",
    "ChunkDecodeError",
    "ChunkEncodeError",
    "ChunkNotFoundError",
    "ConfigError",
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
    "TooLargeError",
    "UnknownCodecError",
    "UnknownSchemeError",
    "WriteDataError",
    "error_class",
]


class BigArraysError(Exception):
    """Root of every error bigarrays raises on purpose.

    ``code`` is the class's machine code, unique in the tree; a subclass defined
    elsewhere inherits its parent's code unless it sets its own.
    """

    code: ClassVar[str] = "internal"

    def __str__(self) -> str:
        # KeyError subclasses would otherwise print the repr of their message.
        return str(self.args[0]) if self.args else ""


class InfoError(BigArraysError, ValueError):
    """A malformed or unsupported ``info`` field; the message names the field path."""

    code: ClassVar[str] = "bad_dataset"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DatasetNotFoundError(BigArraysError, FileNotFoundError):
    """There is no ``info`` at the dataset URL."""

    code: ClassVar[str] = "not_found"


class DatasetExistsError(BigArraysError, FileExistsError):
    """``create`` was asked to make a dataset where one already exists."""

    code: ClassVar[str] = "exists"


class SelectionError(BigArraysError, IndexError):
    """An index bigarrays does not support (a step other than 1, too many axes, ...)."""

    code: ClassVar[str] = "bad_bbox"


class TooLargeError(SelectionError):
    """A region too large to read in one piece: over a server's cutout limit (where the
    error's ``detail["split"]`` lists smaller boxes) or over ``max_array_bytes`` in
    ``np.asarray``; the message says how large it is and what the limit is."""

    code: ClassVar[str] = "too_large"


class OutOfBoundsError(BigArraysError, IndexError):
    """A box reaches outside the volume while ``bounded=True``, or a write lies wholly outside it."""

    code: ClassVar[str] = "out_of_bounds"


class AlignmentError(BigArraysError, ValueError):
    """A write that is not aligned to the chunk grid.

    ``box`` is the box asked for (clipped to the volume), ``nearest`` the smallest
    chunk-aligned box (clipped to the volume) that contains it, and ``reason`` says why
    ``box`` is not a whole-chunk write (off the grid, or only some channels).
    """

    code: ClassVar[str] = "unaligned"

    def __init__(self, message: str, *, box: object = None, nearest: object = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.box = box
        self.nearest = nearest
        self.reason = reason


class WriteDataError(BigArraysError, ValueError):
    """The data given to a write has the wrong shape or a dtype that cannot be stored."""

    code: ClassVar[str] = "bad_data"


class ChunkNotFoundError(BigArraysError, KeyError):
    """A chunk is missing and ``fill_missing=False``; ``key`` names it."""

    code: ClassVar[str] = "missing_chunk"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ChunkDecodeError(BigArraysError, ValueError):
    """Stored chunk bytes could not be decoded; ``key`` names the chunk."""

    code: ClassVar[str] = "bad_chunk"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ChunkEncodeError(BigArraysError, ValueError):
    """An array could not be encoded with the scale's encoding."""

    code: ClassVar[str] = "cannot_encode"


class UnknownCodecError(BigArraysError, ValueError):
    """An encoding or compression bigarrays does not know; the message lists the known ones."""

    code: ClassVar[str] = "unknown_codec"


class InvalidKeyError(BigArraysError, ValueError):
    """A key that is malformed or would escape the store's root."""

    code: ClassVar[str] = "bad_param"


class UnknownSchemeError(BigArraysError, ValueError):
    """A URL whose scheme has no registered key-value store."""

    code: ClassVar[str] = "unknown_scheme"


class ConfigError(BigArraysError, ValueError):
    """An environment variable of bigarrays' has a value it cannot use; the message names both."""

    code: ClassVar[str] = "bad_config"


class StorageError(BigArraysError, OSError):
    """The key-value store failed; the message names the URL (and the last status)."""

    code: ClassVar[str] = "upstream_error"


class ReadOnlyError(StorageError, PermissionError):
    """A write, delete or create on a read-only store."""

    code: ClassVar[str] = "read_only"


class StoragePermissionError(StorageError, PermissionError):
    """The store refused the credentials or the permission."""

    code: ClassVar[str] = "upstream_denied"


class StorageTimeoutError(StorageError, TimeoutError):
    """The store did not answer within the timeout."""

    code: ClassVar[str] = "upstream_timeout"


def error_class(code: str) -> type[BigArraysError] | None:
    """The class whose ``code`` is ``code``, or None when no class of the tree has it.

    The tree is walked from :class:`BigArraysError`, parents before children, and only a
    class that sets ``code`` itself claims it: a subclass defined elsewhere that keeps its
    parent's code never takes the parent's place, and one that declares a new code is
    found too (once it is imported).
    """
    todo: list[type[BigArraysError]] = [BigArraysError]
    while todo:
        cls = todo.pop(0)
        if cls.__dict__.get("code") == code:
            return cls
        todo.extend(cls.__subclasses__())
    return None
