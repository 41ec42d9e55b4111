"""The bytes of a shard file: its index, its minishard indexes, and whole shards.

Layout (``neuroglancer_uint64_sharded_v1``)::

    [0, 16 * 2**minishard_bits)   shard index: per minishard, (start, end) uint64 LE of its
                                  minishard index, relative to the end of the shard index;
                                  start == end: the minishard is empty
    [16 * 2**minishard_bits, EOF) chunk data and minishard indexes, in any order

A minishard index (gzip'd when ``minishard_index_encoding`` is gzip) is ``3 x n`` uint64 LE
in C order: the chunk ids delta-coded; each chunk's start delta-coded from the end of the
previous chunk (the first from the end of the shard index); each chunk's size.

:func:`encode_shard` writes TensorStore's order (per minishard, in increasing order: its
chunks sorted by id, then its index), so readers that binary-search minishard indexes
(TensorStore) and those that scan them (Neuroglancer) both read it. Pure: no I/O; every
malformation raises :class:`ChunkDecodeError` with the message and key the caller gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from isal import igzip

from bigarrays_core.errors import ChunkDecodeError
from bigarrays_core.kvstore.sharding.spec import ShardingSpec

__all__ = [
    "MinishardIndex",
    "decode_minishard_index",
    "decode_shard",
    "decode_shard_index",
    "encode_minishard_index",
    "encode_shard",
    "gzip_compress",
]

#: Offsets past this are refused (they cannot be file offsets, and keep int64 arithmetic exact).
_MAX_OFFSET = 1 << 62
#: gzip level of minishard indexes and of chunks a caller hands over uncompressed (ISA-L).
GZIP_LEVEL = 1


def gzip_compress(data: bytes | memoryview) -> bytes:
    """One gzip member of ``data`` (ISA-L, level :data:`GZIP_LEVEL`)."""
    return igzip.compress(data, compresslevel=GZIP_LEVEL)


@dataclass(frozen=True)
class MinishardIndex:
    """One decoded minishard index: chunk ids (sorted) and their absolute byte ranges."""

    ids: npt.NDArray[np.uint64]
    starts: npt.NDArray[np.int64]
    stops: npt.NDArray[np.int64]

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.starts.nbytes + self.stops.nbytes) + 64

    def find(self, chunk_ids: npt.NDArray[np.uint64]) -> npt.NDArray[np.intp]:
        """The entry of each chunk id, or -1 where the minishard does not hold it.

        With duplicate ids the first listed wins (as Neuroglancer's scan and TensorStore's
        binary search over sorted indexes read it).
        """
        pos = np.searchsorted(self.ids, chunk_ids)
        pos = np.minimum(pos, max(len(self.ids) - 1, 0))
        if not len(self.ids):
            return np.full(len(chunk_ids), -1, dtype=np.intp)
        return np.where(self.ids[pos] == chunk_ids, pos, -1).astype(np.intp)


EMPTY_MINISHARD = MinishardIndex(np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64))


def decode_shard_index(data: bytes | memoryview, spec: ShardingSpec, what: str, key: str) -> npt.NDArray[np.int64]:
    """The ``(2**minishard_bits, 2)`` shard index as absolute ``[start, stop)`` file offsets.

    ``data`` must be the whole index. Raises :class:`ChunkDecodeError` (``what`` says
    which shard and chunk, ``key`` goes into the error) when it is short or inconsistent.
    """
    expected = spec.index_nbytes
    if len(data) != expected:
        raise ChunkDecodeError(f"{what}: the shard index is {len(data)} bytes, expected {expected} "
                               "(truncated shard)", key=key)
    rel = np.frombuffer(data, dtype="<u8").reshape(-1, 2)
    return check_index_entries(rel, spec, what, key)


def check_index_entries(rel: npt.NDArray[np.uint64], spec: ShardingSpec, what: str, key: str
                        ) -> npt.NDArray[np.int64]:
    """Shard index entries (relative, as stored) as absolute offsets, after checking them."""
    bad = (rel[:, 0] > rel[:, 1]) | (rel[:, 1] >= np.uint64(_MAX_OFFSET))
    if bad.any():
        i = int(np.argmax(bad))
        raise ChunkDecodeError(
            f"{what}: the shard index entry of minishard {i} is [{int(rel[i, 0])}, {int(rel[i, 1])}), "
            "which is no byte range (corrupt shard)", key=key)
    return rel.astype(np.int64) + spec.index_nbytes


def decode_minishard_index(data: bytes | memoryview, spec: ShardingSpec, what: str, key: str) -> MinishardIndex:
    """Decode a minishard index as stored (after ``minishard_index_encoding``).

    Chunk offsets come back absolute; ids are sorted (stably) for binary search. Raises
    :class:`ChunkDecodeError` for bad gzip, a length that is not ``24 * n``, or offsets that
    overflow.
    """
    if spec.minishard_index_encoding == "gzip":
        try:
            data = igzip.decompress(data)  # type: ignore[no-untyped-call]
        except Exception as exc:  # ISA-L raises its own error types
            raise ChunkDecodeError(f"{what}: the minishard index does not gunzip: {exc} (corrupt shard)",
                                   key=key) from exc
    if len(data) % 24:
        raise ChunkDecodeError(f"{what}: the minishard index is {len(data)} bytes, not a multiple of 24 "
                               "(corrupt shard)", key=key)
    rows = np.frombuffer(data, dtype="<u8").reshape(3, -1)
    if not rows.shape[1]:
        return EMPTY_MINISHARD
    ids = np.cumsum(rows[0], dtype=np.uint64)  # wraps modulo 2**64, as unsigned deltas may
    gaps, sizes = rows[1].astype(np.uint64), rows[2].astype(np.uint64)
    step = gaps + sizes
    ends = np.cumsum(step, dtype=np.uint64)
    if (step < gaps).any() or (ends[1:] < ends[:-1]).any() or int(ends[-1]) >= _MAX_OFFSET:
        raise ChunkDecodeError(f"{what}: the minishard index's chunk offsets overflow (corrupt shard)", key=key)
    stops = ends.astype(np.int64) + spec.index_nbytes
    starts = stops - sizes.astype(np.int64)
    if len(ids) > 1 and (ids[1:] < ids[:-1]).any():
        order = np.argsort(ids, kind="stable")
        ids, starts, stops = ids[order], starts[order], stops[order]
    return MinishardIndex(ids, starts, stops)


def encode_minishard_index(ids: npt.NDArray[np.uint64], starts: npt.NDArray[np.int64],
                           sizes: npt.NDArray[np.int64], spec: ShardingSpec) -> bytes:
    """The stored bytes of a minishard index; ``ids`` sorted, ``starts`` absolute offsets."""
    n = len(ids)
    rows = np.empty((3, n), dtype="<u8")
    if n:
        rows[0, 0] = ids[0]
        rows[0, 1:] = np.diff(ids)
        ends = starts + sizes
        rows[1, 0] = starts[0] - spec.index_nbytes
        rows[1, 1:] = starts[1:] - ends[:-1]
        rows[2] = sizes
    out = rows.tobytes()
    return gzip_compress(out) if spec.minishard_index_encoding == "gzip" else out


def encode_shard(chunks: Mapping[int, bytes | memoryview], spec: ShardingSpec) -> bytes:
    """A whole shard file holding ``chunks`` (chunk id -> stored bytes, already after
    ``data_encoding``). Every id must belong to this shard (not checked here)."""
    ids = np.fromiter(chunks.keys(), dtype=np.uint64, count=len(chunks))
    _, minishards = spec.locate(ids)
    order = np.lexsort((ids, minishards))
    ids, minishards = ids[order], minishards[order]
    index = np.zeros((spec.num_minishards, 2), dtype="<u8")
    parts: list[bytes | memoryview] = []
    offset = spec.index_nbytes  # absolute position of the next byte written
    bounds = np.flatnonzero(np.diff(minishards)) + 1
    for group in np.split(np.arange(len(ids)), bounds) if len(ids) else []:
        m = int(minishards[group[0]])
        gids = ids[group]
        sizes = np.empty(len(group), dtype=np.int64)
        starts = np.empty(len(group), dtype=np.int64)
        for j, cid in enumerate(gids.tolist()):
            data = chunks[cid]
            starts[j] = offset
            sizes[j] = len(data)
            parts.append(data)
            offset += len(data)
        minishard_index = encode_minishard_index(gids, starts, sizes, spec)
        index[m] = (offset - spec.index_nbytes, offset - spec.index_nbytes + len(minishard_index))
        parts.append(minishard_index)
        offset += len(minishard_index)
    return b"".join([index.tobytes(), *parts])


def decode_shard(data: bytes | memoryview, spec: ShardingSpec, what: str, key: str) -> dict[int, memoryview]:
    """Every chunk of a whole shard file: chunk id -> its stored bytes (views of ``data``).

    Checks everything a reader relies on (index length, ranges inside the file); raises
    :class:`ChunkDecodeError` naming ``what`` otherwise. Where an id is listed twice the
    first entry wins, as for readers.
    """
    view = memoryview(data)
    size = len(view)
    if size < spec.index_nbytes:
        raise ChunkDecodeError(f"{what}: {size} bytes cannot hold the {spec.index_nbytes}-byte shard index "
                               "(truncated shard)", key=key)
    entries = decode_shard_index(view[:spec.index_nbytes], spec, what, key)
    out: dict[int, memoryview] = {}
    for m in np.flatnonzero(entries[:, 1] > entries[:, 0]).tolist():
        start, stop = (int(v) for v in entries[m])
        if stop > size:
            raise ChunkDecodeError(f"{what}: the index of minishard {m} ends at byte {stop}, past the end of "
                                   f"the {size}-byte shard (truncated shard)", key=key)
        ms = decode_minishard_index(view[start:stop], spec, f"{what} (minishard {m})", key)
        if len(ms.stops) and int(ms.stops.max()) > size:
            raise ChunkDecodeError(f"{what}: minishard {m} lists chunk data past the end of the {size}-byte "
                                   "shard (truncated shard)", key=key)
        for cid, a, b in zip(ms.ids.tolist(), ms.starts.tolist(), ms.stops.tolist()):
            if cid not in out:
                out[cid] = view[a:b]
    return out
