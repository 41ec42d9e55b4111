"""Writing a box: encode the chunks it covers in parallel and store each object atomically.

A write replaces stored objects (*write units*, :meth:`ScaleIO.unit_keys`): chunk files
of an unsharded scale, shard files of a sharded one. Every unit is written while holding
its lock of this process, here and only here:

* unsharded: a chunk wholly covered (all channels) is encoded and stored blind; a partly
  covered one (only when the caller opted in to unaligned writes) is updated by
  :func:`update_chunk`;
* sharded: the chunks are encoded in parallel, a group of shards at a time, then each
  shard is stored once under its lock; a shard whose every chunk is written is built
  without reading, the others are read, changed and replaced whole (the chunk store,
  :class:`~bigarrays_core.kvstore.sharding.ShardedStore`, does that, with conditional
  writes of the shard), and partly covered chunks are updated by :func:`update_chunk`.

Across processes and machines, nothing is lost either: :func:`update_chunk` is a
conditional read-modify-write (read the chunk and its version, patch it, store it only if
it is still at that version, else read again and retry: ``KVStore.write_if_unchanged``), so
two writers patching one chunk at once both keep their voxels, on every store whose
conditional writes are atomic across processes (``atomic_updates``: local disk, memory,
S3, GCS). On other stores (e.g. fsspec protocols without conditional writes) only writers
of this process are serialised: writers in other processes must write disjoint units.
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import cast

import numpy as np

from bigarrays_core.array import buffers
from bigarrays_core.array.executor import run_batches
from bigarrays_core.array.scale_io import ChunkRef, ScaleIO
from bigarrays_core.codecs.raw import RawCodec
from bigarrays_core.errors import StorageError
from bigarrays_core.geometry import Box

__all__ = ["update_chunk", "write_box", "write_pieces"]

#: How often a conditional update of one chunk is tried before giving up (another writer
#: changed the chunk between our read and our write every time).
UPDATE_ATTEMPTS = 50

_STRIPES = 1024
_LOCKS = [threading.Lock() for _ in range(_STRIPES)]
#: A sharded write encodes (and holds) the chunks of at most about this many raw bytes of
#: shards at once, at least one shard.
_SHARD_GROUP_BYTES = 256 << 20


def _stripe(io: ScaleIO, key: str) -> int:
    return zlib.crc32(f"{io.store.url}\x00{key}".encode()) % _STRIPES


@contextmanager
def _locked(io: ScaleIO, unit_keys: Iterable[str]) -> Iterator[None]:
    """Hold the locks of these write units (taken in stripe order: no deadlock)."""
    stripes = sorted({_stripe(io, k) for k in unit_keys})
    for s in stripes:
        _LOCKS[s].acquire()
    try:
        yield
    finally:
        for s in reversed(stripes):
            _LOCKS[s].release()


def update_chunk(io: ScaleIO, ref: ChunkRef, box: Box, channels: tuple[int, int], data: np.ndarray) -> None:
    """Paste the part of ``data`` (the voxels of ``box`` x ``channels``) that falls in chunk
    ``ref`` into the stored chunk, keeping its other voxels: a conditional read-modify-write,
    read again and retried when another writer changed the chunk meanwhile (see the module
    docstring; the caller holds the chunk's unit lock of this process).

    Raises :class:`StorageError` after :data:`UPDATE_ATTEMPTS` lost races, and what the
    store and the codec raise.
    """
    store, where = io.store, io.store.describe(ref.key)
    inter = ref.box.intersect(box)
    target = inter.slices_in(ref.box) + (slice(channels[0], channels[1]),)
    part = data[inter.slices_in(box) + (slice(None),)]
    for attempt in range(UPDATE_ATTEMPTS):
        value, version = store.read_for_update(ref.key)
        if value is None:
            chunk = np.zeros(io.chunk_shape(ref), dtype=io.dtype, order="F")
        else:
            chunk = np.array(io.pipeline.decode(value.data, io.chunk_shape(ref), where, ref.key, value.encoding),
                             order="F")
        chunk[target] = part
        if store.write_if_unchanged(ref.key, io.pipeline.encode(chunk, where), version, io.pipeline.write_options):
            return
        time.sleep(random.uniform(0, min(1.0, 0.002 * 2**attempt)))  # another writer got there first: back off
    raise StorageError(f"cannot update {where}: other writers changed it between our read and our write "
                       f"{UPDATE_ATTEMPTS} times in a row")


def write_box(io: ScaleIO, box: Box, channels: tuple[int, int], data: np.ndarray) -> None:
    """Store ``data`` (4-D, shaped like ``box`` x ``channels``) into the chunks of ``box``.

    ``box`` must already be clipped to the volume. See the module docstring.
    """
    write_pieces(io, [(ref, ref.box.intersect(box)) for ref in io.chunks(box)], data, box, channels)


def write_pieces(io: ScaleIO, pieces: Sequence[tuple[ChunkRef, Box]], data: np.ndarray, data_box: Box,
                 channels: tuple[int, int] | None = None) -> None:
    """Store the part ``box`` of each chunk of ``pieces`` (``(chunk, box)`` pairs, one per
    chunk) from ``data``, the voxels of ``data_box`` x ``channels`` (default: all).

    A piece that is its whole chunk (all channels) replaces the chunk; a smaller one is
    merged into it (:func:`update_chunk`). Of a sharded scale, the pieces of one shard are
    stored with one rewrite of the shard. What a job that decided chunk by chunk (stored or
    not, whole or in part) calls; see the module docstring.
    """
    channels = channels or (0, io.num_channels)
    io.store.prepare_writes(io.scale.key)
    full_channels = channels == (0, io.num_channels)
    boxes = {ref.key: box for ref, box in pieces}
    refs = [ref for ref, _ in pieces]

    def covered(ref: ChunkRef) -> bool:
        return full_channels and boxes[ref.key] == ref.box

    def encode(ref: ChunkRef) -> bytes:
        part = data[ref.box.slices_in(data_box) + (slice(None),)]
        return io.pipeline.encode(part, io.store.describe(ref.key))

    def merge(ref: ChunkRef) -> None:
        box = boxes[ref.key]
        update_chunk(io, ref, box, channels, data[box.slices_in(data_box) + (slice(None),)])

    if io.sharding is not None:
        _write_sharded(io, refs, covered, encode, merge)
        return

    packs = io.pipeline.plain_raw and io.store.takes_buffers and data.dtype == io.dtype and io.dtype.kind != "b"

    def work(batch: Sequence[ChunkRef]) -> None:
        whole = [ref for ref in batch if covered(ref)]
        encoded: dict[str, bytes | memoryview] = dict(_packed(io, whole, data, data_box)) if packs else \
            {ref.key: encode(ref) for ref in whole}
        for ref in batch:
            if not covered(ref):
                with _locked(io, [ref.key]):
                    merge(ref)
        if encoded:
            with _locked(io, encoded):
                # Packed values are memoryviews, which stores that take buffers accept.
                io.store.set_many(cast(Mapping[str, bytes], encoded), io.pipeline.write_options)

    run_batches(work, refs, per_thread=4 if io.store.threaded_io else 1)


def _packed(io: ScaleIO, refs: Sequence[ChunkRef], data: np.ndarray, data_box: Box) -> Iterator[tuple[str, memoryview]]:
    """``(key, raw bytes)`` of the whole chunks ``refs`` of ``data`` (the voxels of
    ``data_box``, of the scale's dtype), laid out one after another in one buffer from the
    recycled pool (:mod:`bigarrays_core.array.buffers`) by
    :meth:`~bigarrays_core.codecs.raw.RawCodec.encode_into`: a write of many chunks then does
    not fault in fresh memory for every chunk's bytes, as ``tobytes`` per chunk does. The buffer goes back to
    the pool only once no view of it is left."""
    codec = io.pipeline.codec
    assert isinstance(codec, RawCodec)  # a plain raw scale
    shapes = [io.chunk_shape(ref) for ref in refs]
    sizes = [codec.expected_nbytes(shape) for shape in shapes]
    buf = buffers.empty((sum(sizes),), np.dtype(np.uint8), temporary=True)
    offset = 0
    for ref, n in zip(refs, sizes):
        part = buf[offset:offset + n]
        codec.encode_into(data[ref.box.slices_in(data_box) + (slice(None),)], part)
        yield ref.key, part.data
        offset += n


def _write_sharded(io: ScaleIO, refs: Sequence[ChunkRef], covered: Callable[[ChunkRef], bool],
                   encode: Callable[[ChunkRef], bytes], merge: Callable[[ChunkRef], None]) -> None:
    units: dict[str, list[ChunkRef]] = {}
    for ref, unit in zip(refs, io.unit_keys(list(refs))):
        units.setdefault(unit, []).append(ref)
    per_voxel = io.dtype.itemsize * io.num_channels
    groups: list[list[str]] = [[]]
    size = 0
    for unit, urefs in units.items():
        nbytes = sum(r.box.size for r in urefs) * per_voxel
        if groups[-1] and size + nbytes > _SHARD_GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(unit)
        size += nbytes
    for group in groups:
        full = [r for u in group for r in units[u] if covered(r)]
        partial = [r for u in group for r in units[u] if not covered(r)]
        encoded = _encode_all(full, encode)
        with _locked(io, group):
            if encoded:
                io.store.set_many(encoded, io.pipeline.write_options)
            for ref in partial:
                merge(ref)


def _encode_all(refs: Sequence[ChunkRef], encode: Callable[[ChunkRef], bytes]) -> dict[str, bytes]:
    """Every chunk encoded, in parallel."""
    out: list[bytes] = [b""] * len(refs)

    def work(batch: Sequence[int]) -> None:
        for i in batch:
            out[i] = encode(refs[i])

    run_batches(work, range(len(refs)), per_thread=4)
    return {r.key: v for r, v in zip(refs, out)}
