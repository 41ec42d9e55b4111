"""Reading decoded chunks, their stamps and boxes through the per-worker :class:`ChunkCache`.

Owns: :class:`ChunkReader` (the cache-backed chunk loader the cutout, chunk, image and
precomputed routes share), :class:`CachedChunks` (the chunk source that plugs the cache into
the core's one read loop, ``BigArray.read(..., source=...)``) and :func:`body_view`, the
wire bytes of an array without a copy.

Chunk data goes through ``ba.scale_io.store``, the scale's *chunk store* (chunk keys for
sharded and unsharded scales alike): values with ``iter_values``, stamps with
``stat_many``. Before a chunk is read its stamp is taken (:meth:`ChunkReader.stamps`, which
a route calls first to make its entity tag), so a cached value is never older than its
stamp and the tag never newer than the body (see :mod:`bigarrays_server.cache`).

Cached chunks are Fortran-contiguous and read-only, so a chunk's response body is a view
of the cached array itself (no copy per request). With a zero cache budget, boxes are read
by the core's own source (decoding straight into the output): nothing would be kept, so
the cache would only add work.

Everything here but :func:`body_view` blocks: the routes call it through worker threads.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
from bigarrays_server.cache import MISSING, ChunkCache, Entry, Known, Loader, Stater

import bigarrays_core as bc
from bigarrays_core.array.plan import ChunkProjection
from bigarrays_core.array.scale_io import ScaleIO
from bigarrays_core.array.source import ChunkSource, missing_chunk_error
from bigarrays_core.kernels.paste import paste
from bigarrays_core.kvstore import NotAtHand, Stamp, at_hand_only

__all__ = ["CachedChunks", "ChunkReader", "HeldChunks", "body_view"]


def body_view(arr: np.ndarray) -> memoryview:
    """The little-endian, x-fastest (Fortran-order) bytes of ``arr`` as a flat byte view.

    No copy when ``arr`` is Fortran-contiguous (what :class:`ChunkReader` returns); the view
    keeps ``arr`` alive. Other arrays are copied once.
    """
    if not arr.flags.f_contiguous:
        arr = np.asfortranarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"), order="F")
    return arr.T.data.cast("B")


class ChunkReader:
    """Decoded chunks, their stamps and assembled boxes of any BigArray, through one cache."""

    def __init__(self, cache: ChunkCache) -> None:
        self.cache = cache

    @staticmethod
    def cache_key(ba: bc.BigArray, ref: bc.ChunkRef) -> Hashable:
        return ba.scale_io.store.describe(ref.key)

    def _io(self, ba: bc.BigArray, refs: Sequence[bc.ChunkRef]) -> tuple[list[Hashable], Loader, Stater]:
        """Cache keys of ``refs``, and the loader and stater of those keys."""
        keys = [self.cache_key(ba, r) for r in refs]
        by_key = dict(zip(keys, refs, strict=True))
        store = ba.scale_io.store

        def load(wanted: Sequence[Hashable]) -> list[object]:
            arrays = ba.load_chunks([by_key[k] for k in wanted])
            # Fortran-contiguous, so body_view() sends the cached array without a copy.
            return [MISSING if arr is None else arr for arr in arrays]

        def stat(wanted: Sequence[Hashable]) -> Sequence[Stamp | None]:
            return store.stat_many([by_key[k].key for k in wanted])

        return keys, load, stat

    def stamps(self, ba: bc.BigArray, refs: Sequence[bc.ChunkRef]) -> tuple[list[Stamp | None], Known]:
        """The current stamp of each chunk (as of at most the revalidation interval ago;
        None: not stored), and those just taken, to hand to a read that follows."""
        if not refs:
            return [], Known({}, 0.0)
        keys, _, stat = self._io(ba, refs)
        return self.cache.stamps(keys, stat)

    def chunks(self, ba: bc.BigArray, refs: Sequence[bc.ChunkRef], known: Known | None = None) -> list[Entry]:
        """The cache entry of each chunk: its decoded ``(x, y, z, c)`` array (read-only) or
        :data:`MISSING`, and its stamp."""
        if not refs:
            return []
        keys, load, stat = self._io(ba, refs)
        return self.cache.get_many(keys, load, stat, known)

    @staticmethod
    def reads_at_hand(ba: bc.BigArray) -> bool:
        """Whether :meth:`chunk_at_hand` may load ``ba``'s chunks: its store reads what is at
        hand without waiting, and its chunks are plain raw bytes (decoding them is one copy)."""
        return ba.scale_io.store.reads_at_hand and ba.scale_io.pipeline.plain_raw

    def chunk_at_hand(self, ba: bc.BigArray, ref: bc.ChunkRef) -> Entry | None:
        """The cache entry of ``ref``, loaded now if its bytes are in memory (the page cache),
        without waiting for a device: callable on the event loop, for a scale of which
        :meth:`reads_at_hand` is True. None when it is not at hand, while another thread loads
        it, or when the read fails: the caller then loads it with :meth:`chunks` in a worker
        thread, which reads it again and reports the failure."""
        keys, load, stat = self._io(ba, [ref])
        try:
            with at_hand_only():
                return self.cache.load_now(keys[0], load, stat)
        except (NotAtHand, bc.BigArraysError, OSError):
            return None

    def held(self, ba: bc.BigArray, refs: Sequence[bc.ChunkRef]) -> dict[str, Entry] | None:
        """The cache entries of ``refs`` by chunk key (in the order of ``refs``) when every
        one is cached and fresh, or (on a local disk or in memory, where a stat is a cheap
        local call) renewed by a stat made now; None otherwise. Nothing is loaded: callable
        on the event loop."""
        keys = [self.cache_key(ba, r) for r in refs]
        entries = self.cache.fresh_many(keys)
        if entries is None and ba.scale_io.store.local_stat:
            _, _, stat = self._io(ba, refs)
            entries = self.cache.renew_many(keys, stat)
        return None if entries is None else {r.key: e for r, e in zip(refs, entries, strict=True)}

    def read_held(self, ba: bc.BigArray, box: bc.Box, channels: tuple[int, int],
                  held: dict[str, Entry]) -> np.ndarray:
        """:meth:`read_box` from entries at hand (see :meth:`held`): pastes only, no I/O."""
        return ba.read(box, channels, source=HeldChunks(self, ba, held))

    def read_box(self, ba: bc.BigArray, box: bc.Box, channels: tuple[int, int],
                 known: Known | None = None) -> np.ndarray:
        """The voxels of ``box`` x ``channels`` as a Fortran-ordered 4-D array.

        Voxels outside the volume and in missing chunks are 0 (or an error, as the
        dataset's ``fill_missing`` says). Through the core's read loop, with the chunks
        coming from the cache when it has a budget.
        """
        if not self.cache.max_bytes:
            return ba.read(box, channels)
        return ba.read(box, channels, source=CachedChunks(self, ba, known))

    def invalidate(self, ba: bc.BigArray, box: bc.Box) -> None:
        """Forget every cached chunk of ``ba`` that ``box`` touches."""
        self.cache.invalidate([self.cache_key(ba, r) for r in ba.chunks(box)])


class CachedChunks(ChunkSource):
    """The chunks of one BigArray through a :class:`ChunkReader`'s cache (pasted, not decoded)."""

    def __init__(self, reader: ChunkReader, ba: bc.BigArray, known: Known | None = None) -> None:
        self.reader = reader
        self.ba = ba
        self.io = ba.scale_io
        self.known = known

    @property
    def copies_only(self) -> bool:
        return True

    def fill(self, batch: Sequence[ChunkProjection], out: np.ndarray, fill_missing: bool) -> None:
        entries = self.reader.chunks(self.ba, [p.ref for p in batch], self.known)
        for p, entry in zip(batch, entries, strict=True):
            _paste_entry(self.io, p, entry, out, fill_missing)


class HeldChunks(ChunkSource):
    """The chunks of one read from cache entries already at hand, by chunk key (pasted; no
    cache, no store)."""

    def __init__(self, reader: ChunkReader, ba: bc.BigArray, held: dict[str, Entry]) -> None:
        self.reader = reader
        self.ba = ba
        self.io = ba.scale_io
        self.held = held

    @property
    def copies_only(self) -> bool:
        return True

    def fill(self, batch: Sequence[ChunkProjection], out: np.ndarray, fill_missing: bool) -> None:
        held = self.held
        for p in batch:
            _paste_entry(self.io, p, held[p.ref.key], out, fill_missing)


def _paste_entry(io: ScaleIO, p: ChunkProjection, entry: Entry, out: np.ndarray, fill_missing: bool) -> None:
    """Copy the region ``p`` wants of a cached chunk into ``out``: zeros for a missing chunk,
    or the read's missing-chunk error when it does not fill missing ones."""
    if entry.value is MISSING:
        if not fill_missing:
            raise missing_chunk_error(io, p.ref)
        out[p.target] = 0
    else:
        paste(out[p.target], entry.value[p.region])
