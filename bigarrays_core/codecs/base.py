"""The two codec interfaces.

A :class:`ChunkCodec` turns one chunk array into the bytes of a precomputed *encoding*
and back. A chunk array is 4-D ``(x, y, z, c)`` with the scale's dtype; ``decode``
returns such an array (any memory order, possibly read-only, possibly a view of the
input bytes) and raises on bytes that do not decode to exactly ``shape``.

A :class:`ByteCodec` is the optional second stage (gzip, zstd, blosc, brotli) on the
encoded bytes. Codecs are values: configured once, stateless between calls, safe to call from
several threads at once, and they release the GIL in their heavy work where the
underlying library does.

Must not import from ``kvstore``, ``array`` or the server.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from bigarrays_core.kernels.paste import paste

__all__ = ["ByteCodec", "ChunkCodec", "Region4", "Shape4"]

Shape4 = tuple[int, int, int, int]
#: A region of a chunk: one slice per axis ``(x, y, z, c)``, each with step 1 and in bounds.
Region4 = tuple[slice, slice, slice, slice]


class ChunkCodec(ABC):
    """Array <-> bytes for one precomputed encoding."""

    #: The ``encoding`` name in the info.
    name: ClassVar[str]
    #: The Content-Type stored chunks get on object stores.
    content_type: ClassVar[str] = "application/octet-stream"
    #: The ``data_type`` names the encoding stores (None: every one).
    dtypes: ClassVar[tuple[str, ...] | None] = None
    #: The channel counts it stores (None: any).
    channels: ClassVar[tuple[int, ...] | None] = None
    #: The scale members (info fields) holding its settings, read by :meth:`from_scale`.
    settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dtype: np.dtype[Any], num_channels: int) -> None:
        self.dtype = np.dtype(dtype)
        self.num_channels = num_channels
        if self.dtypes is not None and self.dtype.name not in self.dtypes:
            raise ValueError(f"{self.name} stores data_type {' or '.join(self.dtypes)}, not {self.dtype.name}")
        if self.channels is not None and num_channels not in self.channels:
            counts = " or ".join(map(str, self.channels))
            raise ValueError(f"{self.name} stores {counts} channel{'s' if self.channels != (1,) else ''}, "
                             f"not {num_channels}")

    @classmethod
    def from_scale(cls, dtype: np.dtype[Any], num_channels: int, scale: Mapping[str, Any]) -> ChunkCodec:
        """The codec for a scale of the info: ``scale`` is its JSON object, whose members
        (``jpeg_quality``, ``jxl_effort``, ...) hold the encoding's settings.

        Raises ``ValueError`` for a dtype or channel count the encoding cannot store and
        :class:`~bigarrays_core.errors.InfoError` whose ``field`` is the member's name for a
        bad setting. Codecs with settings override this.
        """
        return cls(dtype, num_channels)

    @abstractmethod
    def encode(self, chunk: np.ndarray) -> bytes:
        """Encode a 4-D ``(x, y, z, c)`` array of this codec's dtype."""

    @abstractmethod
    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        """Decode bytes (``bytes`` or a ``memoryview``, as stores return them) into a 4-D
        ``(x, y, z, c)`` array of exactly ``shape``.

        Raises ``ValueError`` (or the underlying library's error) on bytes that do not fit.
        """

    def decode_into(self, data: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray) -> None:
        """Decode the chunk of ``shape`` in ``data`` and write its ``region`` into ``out``.

        ``out`` has the region's shape (usually a strided view of a cutout). The bytes are
        validated as strictly as by :meth:`decode`; on an error ``out`` may have been
        partly written. The default decodes the whole chunk and copies; codecs that can
        decode a region directly (only the blocks it touches, straight into ``out``)
        override this.
        """
        paste(out, self.decode(data, shape)[region])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype.name}, num_channels={self.num_channels})"


class ByteCodec(ABC):
    """Bytes <-> bytes compression applied on top of an encoding."""

    #: The ``id`` in the scale's ``compression`` object.
    name: ClassVar[str]
    #: How stores record it: ``"gzip"``/``"zstd"`` (suffix or Content-Encoding) or None.
    content_encoding: ClassVar[str | None] = None

    @abstractmethod
    def encode(self, data: bytes) -> bytes:
        """Compress."""

    @abstractmethod
    def decode(self, data: bytes | memoryview) -> bytes:
        """Decompress ``bytes`` or a ``memoryview``; raises on corrupt input."""

    def decode_transient(self, data: bytes | memoryview) -> bytes | memoryview:
        """What :meth:`decode` gives, possibly as a view of a buffer that the calling thread
        reuses at its next ``decode_transient``: for callers that are done with the content
        before they decode anything else in that thread (a chunk pasted into a cutout).
        Spares a fresh allocation per chunk where the allocator would map one afresh (a
        Dask worker's). Same errors as :meth:`decode`."""
        return self.decode(data)

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """The JSON object recorded in the info (``{"id": name, ...}``)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ByteCodec) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.config().items())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "id")
        return f"{type(self).__name__}({args})"
