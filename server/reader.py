"""Reading decoded chunks and boxes through the per-worker :class:`ChunkCache`.

Owns: :class:`ChunkReader`, the only place the server fetches and decodes chunks for the
cutout, chunk and precomputed routes. It uses the core's public pieces (``ba.chunks``,
``ba.store.get_many``, ``ba.decode_chunk``).

Everything here is blocking: the routes call it through ``anyio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from bigarrays_server.cache import MISSING, ChunkCache

import bigarrays_core as bc
from bigarrays_core.array.executor import run_batches

__all__ = ["ChunkReader"]


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
                out.append(MISSING if arr is None else arr)
            return out

        return self.cache.get_many([self.cache_key(ba, r) for r in refs], load)

    def read_box(self, ba: bc.BigArray, box: bc.Box, channels: tuple[int, int]) -> np.ndarray:
        """The voxels of ``box`` x ``channels`` as a zero-filled, Fortran-ordered 4-D array.

        Voxels outside the volume and in missing chunks are 0 (DESIGN.md §2 defaults).
        """
        x, y, z = box.shape
        out = np.zeros((x, y, z, channels[1] - channels[0]), dtype=ba.dtype, order="F")
        refs = ba.chunks(box)
        csel = slice(channels[0], channels[1])

        def work(batch: Sequence[bc.ChunkRef]) -> None:
            for ref, arr in zip(batch, self.chunks(ba, batch), strict=False):
                if arr is MISSING:
                    continue
                inter = ref.box.intersect(box)
                out[inter.slices_in(box) + (slice(None),)] = arr[inter.slices_in(ref.box) + (csel,)]

        per_thread = 4 if ba.store.threaded_io else 1
        run_batches(work, refs, per_thread=per_thread)
        return out

    def invalidate(self, ba: bc.BigArray, box: bc.Box) -> None:
        """Forget every cached chunk of ``ba`` that ``box`` touches."""
        self.cache.invalidate([self.cache_key(ba, r) for r in ba.chunks(box)])
