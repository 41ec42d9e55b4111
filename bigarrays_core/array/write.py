"""Writing a box: encode the chunks it covers in parallel and store each atomically.

An aligned write never reads. An unaligned write (only when the caller opted in) does a
read-modify-write of each partly covered chunk while holding that chunk's lock, so
concurrent writers in this process never lose each other's voxels (blind writes take
the same locks while they store). Locks are per
process: writers in other processes must write disjoint chunks.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence

import numpy as np

from bigarrays_core.array.executor import run_batches
from bigarrays_core.array.scale_io import ChunkRef, ScaleIO
from bigarrays_core.array.source import load_chunks
from bigarrays_core.geometry import Box

__all__ = ["write_box"]

_STRIPES = 1024
_LOCKS = [threading.Lock() for _ in range(_STRIPES)]


def _stripe(io: ScaleIO, key: str) -> int:
    return zlib.crc32(f"{io.store.url}\x00{key}".encode()) % _STRIPES


def _store_locked(io: ScaleIO, encoded: dict[str, bytes]) -> None:
    """Store a batch while holding its chunks' locks (taken in stripe order: no deadlock)."""
    stripes = sorted({_stripe(io, k) for k in encoded})
    for s in stripes:
        _LOCKS[s].acquire()
    try:
        io.store.set_many(encoded, io.pipeline.write_options)
    finally:
        for s in reversed(stripes):
            _LOCKS[s].release()


def write_box(io: ScaleIO, box: Box, channels: tuple[int, int], data: np.ndarray) -> None:
    """Store ``data`` (4-D, shaped like ``box`` x ``channels``) into the chunks of ``box``.

    ``box`` must already be clipped to the volume. Chunks wholly covered (all channels)
    are written blind; the others are read, patched and rewritten under their lock.
    """
    refs = io.chunks(box)
    full_channels = channels == (0, io.num_channels)
    csel = slice(channels[0], channels[1])

    def work(batch: Sequence[ChunkRef]) -> None:
        encoded: dict[str, bytes] = {}
        for ref in batch:
            inter = ref.box.intersect(box)
            if full_channels and inter == ref.box:
                part = data[inter.slices_in(box) + (slice(None),)]
                encoded[ref.key] = io.pipeline.encode(part, io.store.describe(ref.key))
                continue
            # Partly covered: flush what is pending, then patch this chunk under its lock.
            if encoded:
                _store_locked(io, encoded)
                encoded = {}
            with _LOCKS[_stripe(io, ref.key)]:
                (old,) = load_chunks(io, [ref])
                chunk = np.zeros(io.chunk_shape(ref), dtype=io.dtype, order="F") if old is None else old
                chunk[inter.slices_in(ref.box) + (csel,)] = data[inter.slices_in(box) + (slice(None),)]
                io.store.set(ref.key, io.pipeline.encode(chunk, io.store.describe(ref.key)),
                             io.pipeline.write_options)
        if encoded:
            _store_locked(io, encoded)

    run_batches(work, refs, per_thread=4 if io.store.threaded_io else 1)
