"""Chunk sources: where a read gets the chunks of its plan.

A :class:`ChunkSource` fills the output parts of a batch of
:class:`~bigarrays_core.array.plan.ChunkProjection` s. :class:`StoredChunks`, the default,
fetches the stored bytes of a batch from the scale's store and decodes each chunk's part
straight into the output (reading only the needed bytes of plain raw chunks). Other
sources plug in the same way: the server's reads through its decoded-chunk cache are a
source; so is anything that has chunks at hand. The one read loop,
:func:`bigarrays_core.array.read.read_box`, plans, batches and hands batches to a source.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from bigarrays_core.array.plan import ChunkProjection
from bigarrays_core.array.scale_io import ChunkRef, ScaleIO
from bigarrays_core.codecs.raw import RawCodec
from bigarrays_core.errors import ChunkNotFoundError
from bigarrays_core.kernels.scratch import ThreadScratch
from bigarrays_core.kernels.spans import GOT, NBYTES, reader
from bigarrays_core.kvstore.base import ByteSpan

__all__ = ["INLINE_CHUNKS", "ChunkSource", "StoredChunks", "load_chunks", "missing_chunk_error"]

#: Reads of at most this many chunks from a threaded source run in the caller's thread
#: (measured faster than the pool for plain and cheaply decoded chunks).
INLINE_CHUNKS = 8


def missing_chunk_error(io: ScaleIO, ref: ChunkRef) -> ChunkNotFoundError:
    """The error of a read that needs ``ref`` when it is missing and ``fill_missing`` is off."""
    return ChunkNotFoundError(
        f"chunk {io.store.describe(ref.key)} (voxels {ref.box}) is missing; "
        "open with fill_missing=True to read zeros there",
        key=ref.key,
    )


def load_chunks(io: ScaleIO, refs: Sequence[ChunkRef]) -> list[np.ndarray | None]:
    """The whole decoded ``(x, y, z, c)`` array of each chunk (Fortran order, owning its
    memory), or None where the chunk is missing (or a zero-byte object).

    For callers that keep or modify chunks (caches, read-modify-write). Raises
    :class:`ChunkDecodeError` naming the key of a chunk that does not decode.
    """
    out: list[np.ndarray | None] = []
    store = io.store
    for ref, value in zip(refs, store.iter_values([r.key for r in refs])):
        if value is None or not value.data:
            out.append(None)
            continue
        arr = io.pipeline.decode(value.data, io.chunk_shape(ref), store.describe(ref.key), ref.key, value.encoding)
        # The value may be a view of a reused buffer, and decoding may return a view of it.
        owns = arr.flags.f_contiguous and arr.flags.owndata and arr.flags.writeable
        out.append(arr if owns else np.array(arr, order="F"))
    return out


class ChunkSource(ABC):
    """Fills the parts of a read's output that a batch of chunks covers."""

    #: The scale read.
    io: ScaleIO

    @property
    def threaded(self) -> bool:
        """True when the source is cheap to call from many threads at once with small
        batches (local disk, memory, a cache); False when it wants big batches that it
        fetches concurrently itself (object stores)."""
        return self.io.store.threaded_io

    @property
    def copies_only(self) -> bool:
        """True when filling is a plain copy per chunk (bound by memory speed, not decoding)."""
        return self.io.pipeline.plain_raw

    @property
    def inline_chunks(self) -> int:
        """Reads of at most this many chunks are faster in the caller's thread alone than
        spread over the pool (for a threaded source): handing a batch to a pool thread costs
        about 0.1 ms, which a few cheap chunks do not repay."""
        return INLINE_CHUNKS

    @abstractmethod
    def fill(self, batch: Sequence[ChunkProjection], out: np.ndarray, fill_missing: bool) -> None:
        """Write every projection's part of ``out`` (``out[p.target]``).

        Missing chunks are written as zeros when ``fill_missing``, else raise
        :class:`ChunkNotFoundError` naming the chunk (see :func:`missing_chunk_error`).
        Undecodable chunks raise :class:`ChunkDecodeError` naming the key. Called from
        several threads at once, with disjoint batches.
        """


class StoredChunks(ChunkSource):
    """The scale's stored chunks, decoded straight into the output."""

    def __init__(self, io: ScaleIO) -> None:
        self.io = io

    @property
    def inline_chunks(self) -> int:
        # Raw chunks under byte compression (gzip'd shards, gzip/zstd/blosc scales) are
        # inflated whole before any voxel is used: ~0.5 ms of CPU per 256 KiB chunk, so even
        # a 64³ cutout's 8 chunks are decoded on every core.
        pipeline = self.io.pipeline
        if pipeline.compressor is not None and isinstance(pipeline.codec, RawCodec):
            return 1
        return INLINE_CHUNKS

    def fill(self, batch: Sequence[ChunkProjection], out: np.ndarray, fill_missing: bool) -> None:
        io = self.io
        pipeline, store = io.pipeline, io.store
        # Plain raw chunks are read only from the first to the last byte the box needs.
        spans: list[ByteSpan | None] | None = None
        if pipeline.plain_raw:
            batch, spans = self._fill_in_place(batch, [pipeline.region_span(p.shape, p.region) for p in batch], out)
            if not batch:
                return
        values = store.iter_values([p.ref.key for p in batch], spans)
        # Values may share one reused buffer: each is decoded and pasted before the next.
        for p, value in zip(batch, values):
            key = p.ref.key
            if value is None or not value.data:  # CloudVolume treats zero-byte objects as missing too
                if not fill_missing:
                    raise missing_chunk_error(io, p.ref)
                out[p.target] = 0
            elif value.partial:
                pipeline.decode_span_into(value.data, p.shape, p.region, out[p.target], store.describe(key), key)
            else:
                pipeline.decode_into(value.data, p.shape, p.region, out[p.target], store.describe(key), key,
                                     value.encoding)

    def _fill_in_place(self, batch: Sequence[ChunkProjection], spans: list[ByteSpan | None], out: np.ndarray
                       ) -> tuple[Sequence[ChunkProjection], list[ByteSpan | None]]:
        """Fill the chunks of ``batch`` that the store keeps as plain files of their raw size
        with one call of the span kernel (:mod:`bigarrays_core.kernels.spans`: read and
        copied without the GIL); the projections (and spans) left for the ordinary path: the
        whole batch when the kernel is not loaded or the store has no such files."""
        kernel = reader(out.dtype)
        if kernel is None or self.io.dtype != out.dtype:
            return batch, spans
        sizes = [span[0] for span in spans if span is not None]
        if len(sizes) != len(spans):
            return batch, spans
        fds = self.io.store.plain_files([p.ref.key for p in batch], sizes)
        if fds is None:
            return batch, spans
        opened = [(k, fd) for k, fd in enumerate(fds) if fd is not None]
        try:
            if not opened:
                return batch, spans
            codec = self.io.pipeline.codec
            assert isinstance(codec, RawCodec)  # a plain raw scale
            item = out.dtype.itemsize
            table = []
            for k, fd in opened:
                p, span = batch[k], spans[k]
                assert span is not None
                (rx, ry, rz, rc), (tx, ty, tz, _) = p.region, p.target
                _, sy, sz, sc = codec.strides(p.shape)  # in bytes; the kernel counts elements
                table.append((fd, span[1], span[2] - span[1], rx.stop - rx.start, ry.stop - ry.start,
                              rz.stop - rz.start, rc.stop - rc.start, sy // item, sz // item, sc // item,
                              tx.start, ty.start, tz.start, 0))
            jobs = np.array(table, dtype=np.int64)
            largest = int(jobs[:, NBYTES].max())
            kernel(jobs, _scratch.get(largest)[:largest].view(out.dtype), out)
        finally:
            for _, fd in opened:
                os.close(fd)
        read = jobs[:, GOT] == jobs[:, NBYTES]
        if len(opened) == len(batch) and read.all():
            return (), []
        done = {k for (k, _), ok in zip(opened, read.tolist()) if ok}
        left = [k for k in range(len(batch)) if k not in done]
        return [batch[k] for k in left], [spans[k] for k in left]


#: Where the span kernel reads each chunk's bytes before copying them out.
_scratch = ThreadScratch()
