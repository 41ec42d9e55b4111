"""Reading decoded chunks and boxes through the per-worker :class:`ChunkCache`.

Owns: :class:`ChunkReader` (the cache-backed chunk loader the cutout, chunk and
precomputed routes share), :class:`CachedChunks` (the chunk source that plugs the cache into
the core's one read loop, ``BigArray.read(..., source=...)``) and :func:`body_view`, the
wire bytes of an array without a copy.

Cached chunks are Fortran-contiguous and read-only, so a chunk's response body is a view
of the cached array itself (no copy per request). With a zero cache budget, boxes are read
by the core's own source (decoding straight into the output): nothing would be kept, so
the cache would only add work.

Everything here but :func:`body_view` blocks: the routes call it through ``anyio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from bigarrays_server.cache import MISSING, ChunkCache

import bigarrays_core as bc
from bigarrays_core.array.plan import ChunkProjection
from bigarrays_core.array.source import ChunkSource, missing_chunk_error
from bigarrays_core.kernels.paste import paste

__all__ = ["CachedChunks", "ChunkReader", "body_view"]


def body_view(arr: np.ndarray) -> memoryview:
    """The little-endian, x-fastest (Fortran-order) bytes of ``arr`` as a flat byte view.

    No copy when ``arr`` is Fortran-contiguous (what :class:`ChunkReader` returns); the view
    keeps ``arr`` alive. Other arrays are copied once.
    """
    if not arr.flags.f_contiguous:
        arr = np.asfortranarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"), order="F")
    return memoryview(arr.T).cast("B")


class ChunkReader:
    """Decoded chunks and assembled boxes of any BigArray, through one cache."""

    def __init__(self, cache: ChunkCache) -> None:
        self.cache = cache

    @staticmethod
    def cache_key(ba: bc.BigArray, ref: bc.ChunkRef) -> Hashable:
        return ba.store.describe(ref.key)

    def chunks(self, ba: bc.BigArray, refs: Sequence[bc.ChunkRef]) -> list[Any]:
        """The decoded ``(x, y, z, c)`` array of each chunk (read-only), or :data:`MISSING`."""
        by_key = {self.cache_key(ba, r): r for r in refs}

        def load(keys: Sequence[Hashable]) -> list[Any]:
            arrays = ba.load_chunks([by_key[k] for k in keys])
            # Fortran-contiguous, so body_view() sends the cached array without a copy.
            return [MISSING if arr is None else arr for arr in arrays]

        return self.cache.get_many([self.cache_key(ba, r) for r in refs], load)

    def read_box(self, ba: bc.BigArray, box: bc.Box, channels: tuple[int, int]) -> np.ndarray:
        """The voxels of ``box`` x ``channels`` as a Fortran-ordered 4-D array.

        Voxels outside the volume and in missing chunks are 0 (or an error, as the
        dataset's ``fill_missing`` says). Through the core's read loop, with the chunks
        coming from the cache when it has a budget.
        """
        if not self.cache.max_bytes:
            return ba.read(box, channels)
        return ba.read(box, channels, source=CachedChunks(self, ba))

    def invalidate(self, ba: bc.BigArray, box: bc.Box) -> None:
        """Forget every cached chunk of ``ba`` that ``box`` touches."""
        self.cache.invalidate([self.cache_key(ba, r) for r in ba.chunks(box)])


class CachedChunks(ChunkSource):
    """The chunks of one BigArray through a :class:`ChunkReader`'s cache (pasted, not decoded)."""

    def __init__(self, reader: ChunkReader, ba: bc.BigArray) -> None:
        self.reader = reader
        self.ba = ba
        self.io = ba.scale_io

    @property
    def copies_only(self) -> bool:
        return True

    def fill(self, batch: Sequence[ChunkProjection], out: np.ndarray, fill_missing: bool) -> None:
        arrays = self.reader.chunks(self.ba, [p.ref for p in batch])
        for p, arr in zip(batch, arrays, strict=True):
            if arr is MISSING:
                if not fill_missing:
                    raise missing_chunk_error(self.io, p.ref)
                out[p.target] = 0
            else:
                paste(out[p.target], arr[p.region])
