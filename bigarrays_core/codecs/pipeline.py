"""One scale's full chunk codec: encoding plus optional byte compression.

Whether stored bytes are compressed is decided by where they came from, in this order:

1. the content encoding the store recorded for the value (CloudVolume's ``.gz`` /
   ``.zstd`` / ``.br`` file suffixes on local disk, ``Content-Encoding`` on object stores):
   the bytes are decoded with it, strictly;
2. otherwise a value of exactly the raw chunk size in a raw scale that records no
   compression is the raw chunk (that is what the info and the store both say);
3. otherwise, as BigArrays.jl and CloudVolume read, gzip and zstd are recognised by their
   magic bytes (objects whose Content-Encoding a client already undid, tools that record
   nothing), blosc is undone when the scale records it, and so is brotli, which has no
   magic bytes: a scale that records ``br`` holds brotli streams, or their content where
   a client already undid the Content-Encoding (then they do not parse as brotli);
4. last, for CloudVolume's brotli chunks on object stores (CloudVolume records
   ``Content-Encoding: br``, which S3 and GCS reads do not report, and nothing in the
   info): when the bytes do not decode as the scale's encoding, the scale records no
   compression and the store recorded nothing, they are decoded again as one complete
   brotli stream, and kept if its content decodes. No encoding's chunks parse as brotli
   (each has a signature, a size or a structure brotli streams do not have), so this
   never turns a damaged chunk into a wrong one: the first error is reported.

A size coincidence never overrides a recorded encoding. Every failure becomes
:class:`ChunkDecodeError` naming the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from bigarrays_core.codecs.base import ByteCodec, ChunkCodec, Region4, Shape4
from bigarrays_core.codecs.compression import content_codec
from bigarrays_core.codecs.raw import RawCodec
from bigarrays_core.errors import ChunkDecodeError, ChunkEncodeError
from bigarrays_core.kvstore.base import WriteOptions

__all__ = ["ChunkPipeline"]

_GZIP_MAGIC = b"\x1f\x8b\x08"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: The content encoding with no magic bytes (see the module docstring, rules 3 and 4).
_BROTLI = "br"

T = TypeVar("T")


class ChunkPipeline:
    """Encode chunk arrays to stored bytes and back for one scale."""

    def __init__(self, codec: ChunkCodec, compressor: ByteCodec | None = None) -> None:
        self.codec = codec
        self.compressor = compressor
        self._raw_nbytes = codec.expected_nbytes if isinstance(codec, RawCodec) else None
        #: Chunks are stored as plain raw bytes: decoding is a copy, bound by memory speed.
        self.plain_raw = self._raw_nbytes is not None and compressor is None
        self.write_options = WriteOptions(
            content_encoding=compressor.content_encoding if compressor else None,
            content_type=codec.content_type,
        )
        self._gzip: ByteCodec | None = None
        self._zstd: ByteCodec | None = None

    def _sniffed(self, data: bytes | memoryview) -> ByteCodec | None:
        """The codec that undoes ``data``'s in-band byte compression, or None if it has none."""
        head = bytes(data[:4])
        if head[:3] == _GZIP_MAGIC:
            return self._content_decoder("gzip")
        if head == _ZSTD_MAGIC:
            return self._content_decoder("zstd")
        if self.compressor is not None and self.compressor.content_encoding is None:
            return self.compressor  # blosc: no magic; the scale records it
        return None

    def encode(self, chunk: np.ndarray, where: str = "chunk") -> bytes:
        """Stored bytes for a 4-D ``(x, y, z, c)`` chunk array."""
        try:
            data = self.codec.encode(chunk)
            if self.compressor is not None:
                data = self.compressor.encode(data)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise ChunkEncodeError(f"cannot encode {where} as {self.describe()}: {exc}") from exc
        except Exception as exc:  # codec libraries raise their own error types
            raise ChunkEncodeError(f"cannot encode {where} as {self.describe()}: {exc!r}") from exc
        return data

    def decode(self, data: bytes | memoryview, shape: Shape4, where: str = "chunk",
               key: str | None = None, encoding: str | None = None, *, transient: bool = False) -> np.ndarray:
        """The ``(x, y, z, c)`` array of exactly ``shape`` stored in ``data``.

        ``where`` (the chunk's URL) goes into error messages, ``key`` (its store key) into
        the error's ``key`` attribute; ``encoding`` is the content encoding the store
        recorded for the value (see the module docstring). ``transient``: the caller is done
        with the array before this thread decodes anything else, so it may view a buffer
        the thread reuses (see :meth:`ByteCodec.decode_transient`).
        """
        return self._decoding(lambda plain: self.codec.decode(plain, shape), data, shape, where, key, encoding,
                              transient=transient)

    def decode_into(self, data: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray,
                    where: str = "chunk", key: str | None = None, encoding: str | None = None) -> None:
        """Write ``region`` of the chunk of ``shape`` stored in ``data`` into ``out``.

        ``out`` has the region's shape; see :meth:`ChunkCodec.decode_into`. Arguments and
        errors as :meth:`decode`.
        """
        # The content is pasted before this thread decodes anything else: it may be transient.
        self._decoding(lambda plain: self.codec.decode_into(plain, shape, region, out), data, shape, where, key,
                       encoding, transient=True)

    def unwrap(self, data: bytes | memoryview, shape: Shape4, where: str = "chunk", key: str | None = None,
               encoding: str | None = None) -> bytes | memoryview:
        """The bytes of the chunk's encoding alone: ``data`` with its byte compression undone,
        by the same rule as :meth:`decode` (``data`` itself when it has none).

        For passing chunks on in a standard encoding (Neuroglancer reads raw, jpeg, png and
        compressed_segmentation, not zstd or blosc). The encoding itself is not decoded, so
        only a raw chunk's size is checked. Errors as :meth:`decode`.
        """
        def checked(plain: bytes | memoryview) -> bytes | memoryview:
            if self._raw_nbytes is not None and len(plain) != self._raw_nbytes(shape):
                raise ValueError(f"raw chunk is {len(plain)} bytes, expected {self._raw_nbytes(shape)}")
            return plain

        return self._decoding(checked, data, shape, where, key, encoding)

    def region_span(self, shape: Shape4, region: Region4) -> tuple[int, int, int] | None:
        """``(size, start, stop)``: the bytes of a stored chunk that hold ``region``, if known.

        Only plain raw chunks (no compression recorded) have such a span; a store asked for
        it reads ``[start, stop)`` when the stored value is exactly ``size`` bytes (and is
        then raw by the rule of :meth:`decode`), else the whole value. None otherwise.
        """
        if not self.plain_raw:
            return None
        assert isinstance(self.codec, RawCodec) and self._raw_nbytes is not None
        return (self._raw_nbytes(shape), *self.codec.region_span(shape, region))

    def decode_span_into(self, span: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray,
                         where: str = "chunk", key: str | None = None) -> None:
        """Write ``region`` into ``out`` from the bytes :meth:`region_span` named."""
        try:
            assert isinstance(self.codec, RawCodec)
            self.codec.decode_span_into(span, shape, region, out)
        except Exception as exc:  # as decode
            raise self._decode_error(exc, span, shape, where, key) from exc

    def _decoding(self, step: Callable[[bytes | memoryview], T], data: bytes | memoryview, shape: Shape4,
                  where: str, key: str | None, encoding: str | None, transient: bool = False) -> T:
        """``step`` applied to the bytes of the chunk's encoding, by the rules of the module
        docstring; every failure becomes :class:`ChunkDecodeError`. ``transient``: ``step`` is
        done with those bytes when it returns (see :meth:`ByteCodec.decode_transient`)."""
        try:
            return step(self._decompressed(data, shape, encoding, transient))
        except Exception as exc:  # every codec library has its own error types
            plain = self._unrecorded_brotli(data, shape, encoding)
            if plain is not None:
                try:
                    return step(plain)
                except Exception:  # not brotli after all: report the first error
                    pass
            raise self._decode_error(exc, data, shape, where, key, encoding) from exc

    def _decompressed(self, data: bytes | memoryview, shape: Shape4,
                      encoding: str | None, transient: bool = False) -> bytes | memoryview:
        if encoding is not None:
            decoder = self._recorded_decoder(encoding)
            return decoder.decode_transient(data) if transient else decoder.decode(data)
        # A raw chunk of exactly the raw size is taken as is, unless the scale records a
        # compression (then an incompressible chunk may happen to have that size).
        if self.plain_raw and len(data) == self._raw_nbytes(shape):  # type: ignore[misc]
            return data
        compressor = self._sniffed(data)
        if compressor is not None:
            return compressor.decode_transient(data) if transient else compressor.decode(data)
        if self.compressor is not None and self.compressor.content_encoding == _BROTLI:
            try:
                return self.compressor.decode(data)
            except ValueError:
                return data  # a client undid the Content-Encoding already (rule 3)
        return data

    def _unrecorded_brotli(self, data: bytes | memoryview, shape: Shape4, encoding: str | None) -> bytes | None:
        """The content of ``data`` if rule 4 of the module docstring applies to it and it is
        one complete brotli stream, else None."""
        if encoding is not None or self.compressor is not None or self._sniffed(data) is not None:
            return None
        if self.plain_raw and len(data) == self._raw_nbytes(shape):  # type: ignore[misc]
            return None
        codec = content_codec(_BROTLI)
        assert codec is not None
        try:
            return codec.decode(data)
        except ValueError:
            return None

    def _recorded_decoder(self, encoding: str) -> ByteCodec:
        """The codec that undoes a content encoding the store recorded: the scale's own
        compression when it is that one, else the shared codec for gzip, zstd or br, else
        :meth:`_content_decoder`."""
        if self.compressor is not None and self.compressor.content_encoding == encoding:
            return self.compressor
        return content_codec(encoding) or self._content_decoder(encoding)

    def _content_decoder(self, encoding: str) -> ByteCodec:
        """The codec that undoes a content encoding a store recorded: gzip and zstd (kept per
        pipeline), br, xz and bz2 (CloudVolume's others: :mod:`.content_encodings`).

        Raises ``ValueError`` naming any other encoding.
        """
        if encoding == "gzip":
            if self._gzip is None:
                from bigarrays_core.codecs.gzip import GzipCodec

                self._gzip = GzipCodec()
            return self._gzip
        if encoding == "zstd":
            if self._zstd is None:
                from bigarrays_core.codecs.zstd import ZstdCodec

                self._zstd = ZstdCodec()
            return self._zstd
        from bigarrays_core.codecs.content_encodings import content_decoder

        return content_decoder(encoding)

    def _decode_error(self, exc: Exception, data: bytes | memoryview, shape: Shape4, where: str,
                      key: str | None, encoding: str | None = None) -> ChunkDecodeError:
        recorded = f", stored with content encoding {encoding}" if encoding else ""
        return ChunkDecodeError(
            f"cannot decode {where} ({len(data)} bytes{recorded}, {self.describe()}, "
            f"expected {'x'.join(map(str, shape))}): {exc}",
            key=key if key is not None else where,
        )

    def describe(self) -> str:
        c = self.compressor
        return self.codec.name + (f"+{c.name}" if c else "")

    def __repr__(self) -> str:
        return f"ChunkPipeline({self.codec!r}, {self.compressor!r})"
