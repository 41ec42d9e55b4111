"""Reading decoded chunks and boxes through the per-worker :class:`ChunkCache`.

Owns: :class:`ChunkReader`, the only place the server fetches and decodes chunks for the
cutout, chunk and precomputed routes, and :func:`body_view`, the wire bytes of an array
without a copy. It uses the core's public pieces (``ba.chunks``, ``ba.store.get_many``,
``ba.decode_chunk``, ``ba.read``).

Cached chunks are Fortran-contiguous and read-only, so a chunk's response body is a view
of the cached array itself (no copy per request). With a zero cache budget, boxes are read
by the core's own reader (``ba.read``): nothing would be kept, so the cache would only add
work.

Everything here but :func:`body_view` blocks: the routes call it through ``anyio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from bigarrays_server.cache import MISSING, ChunkCache

import bigarrays_core as bc
from bigarrays_core.array.executor import run_batches
from bigarrays_core.array.read import new_output
from bigarrays_core.codecs.paste import paste

__all__ = ["ChunkReader", "body_view"]


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
            wanted = [by_key[k] for k in keys]
            datas = ba.store.get_many([r.key for r in wanted])
            out: list[Any] = []
            for ref, data in zip(wanted, datas, strict=False):
                arr = ba.decode_chunk(ref, data)  # None for missing or zero-byte objects
                # Fortran-contiguous, so body_view() sends the cached array without a copy.
                out.append(MISSING if arr is None else np.asfortranarray(arr))
            return out

        return self.cache.get_many([self.cache_key(ba, r) for r in refs], load)

    def read_box(self, ba: bc.BigArray, box: bc.Box, channels: tuple[int, int]) -> np.ndarray:
        """The voxels of ``box`` x ``channels`` as a zero-filled, Fortran-ordered 4-D array.

        Voxels outside the volume and in missing chunks are 0 (DESIGN.md §2 defaults).
        Without a cache budget this is the core's ``ba.read`` (which decodes straight into
        the output); otherwise chunks come through the cache.
        """
        if not self.cache.max_bytes:
            return ba.read(box, channels)
        # Recycled once the response has been sent (nothing refers to the slab any more).
        out = new_output(ba.grid, box, channels, ba.dtype)
        refs = ba.chunks(box)
        csel = slice(channels[0], channels[1])

        def work(batch: Sequence[bc.ChunkRef]) -> None:
            for ref, arr in zip(batch, self.chunks(ba, batch), strict=False):
                inter = ref.box.intersect(box)
                target = inter.slices_in(box) + (slice(None),)
                if arr is MISSING:
                    out[target] = 0
                else:
                    paste(out[target], arr[inter.slices_in(ref.box) + (csel,)])

        per_thread = 4 if ba.store.threaded_io else 1
        run_batches(work, refs, per_thread=per_thread)
        return out

    def invalidate(self, ba: bc.BigArray, box: bc.Box) -> None:
        """Forget every cached chunk of ``ba`` that ``box`` touches."""
        self.cache.invalidate([self.cache_key(ba, r) for r in ba.chunks(box)])
