"""The chunks of a sharded scale as a key-value store over the store that holds its shards.

:class:`ShardedStore` is TensorStore's model of the sharded format: an adapter that maps
the scale's ordinary chunk keys (``<scale key>/<x0-x1_y0-y1_z0-z1>``) to byte ranges of
shard files in a base store, so the read loop, ``load_chunks``, ``missing_chunks`` and the
write path see one interface for sharded and unsharded scales, and every base store that
reads byte ranges (:meth:`KVStore.get_ranges`: local, memory, GCS, S3, HTTP) reads shards.

Reading a batch of chunks takes at most three rounds of ranged reads, each one
:meth:`KVStore.get_ranges` call with the ranges of every shard involved (fetched
concurrently by stores that can): the shard indexes (the whole index when it is at most
:data:`WHOLE_INDEX_MAX` bytes, else the 16-byte entries needed), the minishard indexes,
then the chunk data, one range per run of chunks whose gaps are small (coalesced, up to
:data:`MAX_RUN` bytes a run). Shard and minishard indexes are kept in a byte-bounded LRU
per adapter (per open array), so later reads of the same minishards cost only the data
round. Every adapter of the process
sees every write of the process at once (:mod:`~bigarrays_core.kvstore.sharding.generations`:
cached indexes are valid for the shard version they were read at, and a read that saw its
shard replaced meanwhile reads again); shards rewritten by other processes after an adapter
cached their index are seen after :meth:`ShardedStore.stat_many` finds their stamp changed,
after :meth:`ShardedStore.clear_cache`, or on reopening.

Stamps (:meth:`ShardedStore.stat_many`, what a server revalidates its caches with) come from
the shard files: one base-store stat per distinct shard, the chunk's stamp made of its shard's
(any rewrite of the shard changes it) with the chunk's stored size and the spec's encoding,
None for a chunk its shard does not hold. The adapter remembers the stamp each shard had when
it was last stamped; a shard whose stamp differs (rewritten by anyone, anywhere) has its cached
indexes dropped, and the change counters bumped so no read in flight caches what it read of
the old file, so the lookup that follows (and every later read) reads the shard as it is now.
A stat reads the shard and minishard indexes it needs (cached, as reads cache them), never
chunk data: not a local metadata call (``local_stat`` is False).

Values carry the content encoding the spec records: ``"gzip"`` when ``data_encoding`` is
gzip, so the codec pipeline decodes them strictly. A missing shard, an empty minishard or a
chunk its minishard does not list is a missing value (None). A shard that is truncated or
corrupt (an index pointing past its end, a minishard index that does not decode) raises
:class:`ChunkDecodeError` naming the shard's key and the chunk's id, never a missing value.

Writes (:meth:`ShardedStore.set_many`, :meth:`ShardedStore.delete_many`) replace whole
shard files: a shard whose every chunk is given is built and written without reading;
otherwise the shard is read, changed and rewritten (read-modify-write) with a conditional
write of the base store (:meth:`KVStore.write_if_unchanged`), read again and retried when
another writer replaced the shard meanwhile, so two writers changing one shard at once,
in any processes, both keep their chunks (as far as the base store's ``atomic_updates``
goes; writers of this process are also serialised per shard by
:mod:`bigarrays_core.array.write`).
"""

from __future__ import annotations

import functools
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import numpy as np
import numpy.typing as npt
from cachetools import LRUCache

from bigarrays_core.errors import ChunkDecodeError, InvalidKeyError, StorageError
from bigarrays_core.geometry.grid import ChunkGrid
from bigarrays_core.geometry.morton import MortonCode
from bigarrays_core.kvstore.base import ByteRange, ByteSpan, KVStore, Stamp, Value, Version, WriteOptions
from bigarrays_core.kvstore.sharding.generations import GENERATIONS
from bigarrays_core.kvstore.sharding.shard_file import (
    EMPTY_MINISHARD,
    MinishardIndex,
    check_index_entries,
    decode_minishard_index,
    decode_shard,
    decode_shard_index,
    encode_shard,
    gzip_compress,
)
from bigarrays_core.kvstore.sharding.spec import ShardingSpec

__all__ = ["DEFAULT_CACHE_BYTES", "WHOLE_INDEX_MAX", "ShardedStore"]

#: Default budget of the per-adapter index cache.
DEFAULT_CACHE_BYTES = 32 << 20
#: Shard indexes up to this size (2**12 minishards) are read and cached whole.
WHOLE_INDEX_MAX = 64 << 10
#: Gaps between chunk data ranges up to this size are read through, coalescing the ranges:
#: small for stores read in worker threads (local files, memory), large for object stores
#: (where a request costs far more than reading a few hundred kB more).
LOCAL_GAP = 16 << 10
REMOTE_GAP = 1 << 20
#: Coalesced runs stop growing at this size, so big reads stay several requests (fetched
#: concurrently by stores that can) and their buffers stay small enough to be reused.
MAX_RUN = 16 << 20

_NAME = re.compile(r"(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)")
_MISSING_SHARD = "missing shard"
#: Batches of at most this many keys are located in plain Python, larger ones with arrays.
_SCALAR_KEYS = 24
#: Keys remembered for :meth:`ShardedStore.describe` (the memo is emptied beyond this).
_LOCATED_MAX = 1 << 16
#: Tries of a read whose shards keep changing under it before it is an error.
_ATTEMPTS = 5
#: Tries of a shard rewrite that other writers keep beating (conditional writes) before it is an error.
_UPDATE_ATTEMPTS = 50
_T = TypeVar("_T")
_Got = list[bytes | memoryview | None]


@dataclass(frozen=True)
class _Loc:
    """Where one requested chunk lives."""

    key: str
    chunk_id: int
    shard: int
    minishard: int


class _ShardState:
    """The version of a chunk of a sharded scale: its shard's key and version, and the shard's
    bytes as read (so a conditional write need not read them again). Equal when the key and
    the version are."""

    __slots__ = ("data", "key", "version")

    def __init__(self, key: str, version: Version, data: bytes | memoryview | None) -> None:
        self.key, self.version, self.data = key, version, data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ShardState) and (self.key, self.version) == (other.key, other.version)

    def __hash__(self) -> int:
        return hash((self.key, self.version))


class _Retry(Exception):
    """Cached indexes disagree with the shard file (rewritten meanwhile): read again uncached."""


class ShardedStore(KVStore):
    """The chunks of one sharded scale, keyed as unsharded chunks are (see the module docstring).

    Parameters
    ----------
    base:
        The store holding the dataset (the shard files are ``<prefix>/<shard>.shard`` in it).
    prefix:
        The scale's key.
    spec:
        The scale's sharding spec.
    grid:
        The scale's chunk grid (chunk ids are the compressed Morton codes of its cells).
    cache_bytes:
        Budget of the shard and minishard index cache.
    """

    def __init__(self, base: KVStore, prefix: str, spec: ShardingSpec, grid: ChunkGrid, *,
                 cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.base = base
        self.prefix = prefix.strip("/")
        self.spec = spec
        self.grid = grid
        self.code = MortonCode(grid.grid_shape)
        self.url = base.url
        self.read_only = base.read_only
        self.threaded_io = base.threaded_io
        self._key_head = self.prefix + "/"
        #: Per axis: voxel offset, chunk size, end of the volume, cells.
        self._axes = tuple(zip(grid.voxel_offset, grid.chunk_size,
                               (o + s for o, s in zip(grid.voxel_offset, grid.size)), grid.grid_shape))
        #: Recently located keys (so describing a chunk just read costs a dict look-up).
        self._located: dict[str, _Loc] = {}
        #: Chunks per axis of each shard when shards are boxes of the grid, else None.
        self.shard_shape = spec.shard_shape_in_chunks(self.code)
        self._encoding = "gzip" if spec.data_encoding == "gzip" else None
        self._whole_index = spec.index_nbytes <= WHOLE_INDEX_MAX
        self._gap = LOCAL_GAP if base.threaded_io else REMOTE_GAP
        #: (kind, shard, ...) -> (generation it was read at, value); see :class:`_Attempt`.
        self._cache: LRUCache[tuple[Any, ...], tuple[int, Any]] = LRUCache(maxsize=cache_bytes, getsizeof=_sizeof)
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # A store pickles as what it is made of; its index cache stays behind.
        return (functools.partial(ShardedStore, cache_bytes=int(self._cache.maxsize)),
                (self.base, self.prefix, self.spec, self.grid))

    # -- keys ------------------------------------------------------------------------------
    def chunk_cell(self, key: str) -> tuple[int, int, int]:
        """The grid cell of chunk key ``key``; :class:`InvalidKeyError` if it is no chunk of this scale."""
        head = self._key_head
        m = _NAME.fullmatch(key, len(head)) if key.startswith(head) else None
        if m is not None:
            x0, x1, y0, y1, z0, z1 = (int(v) for v in m.groups())
            cell = []
            for a, b, (o, c, end, n) in zip((x0, y0, z0), (x1, y1, z1), self._axes):
                i, r = divmod(a - o, c)
                if r or not 0 <= i < n or b != min(a + c, end):
                    break
                cell.append(i)
            else:
                return (cell[0], cell[1], cell[2])
        raise InvalidKeyError(
            f"{key!r} is not a chunk key of the sharded scale {self.prefix!r} (expected "
            f"'{self.prefix}/x0-x1_y0-y1_z0-z1' on its chunk grid)"
        )

    def chunk_ids(self, keys: Sequence[str]) -> npt.NDArray[np.uint64]:
        """The chunk id (compressed Morton code) of each chunk key."""
        if not keys:
            return np.zeros(0, dtype=np.uint64)
        return self.code.encode([self.chunk_cell(k) for k in keys])

    def _locate(self, keys: Sequence[str]) -> list[_Loc]:
        if len(keys) <= _SCALAR_KEYS:  # plain Python beats array set-up for a few keys
            out = []
            for k in keys:
                cid = self.code.encode_one(self.chunk_cell(k))
                out.append(_Loc(k, cid, *self.spec.locate_one(cid)))
        else:
            ids = self.chunk_ids(keys)
            shards, minishards = self.spec.locate(ids)
            out = [_Loc(k, i, s, m) for k, i, s, m in zip(keys, ids.tolist(), shards.tolist(), minishards.tolist())]
        located = self._located
        if len(located) > _LOCATED_MAX:
            located.clear()
        for loc in out:
            located[loc.key] = loc
        return out

    def shard_key(self, shard: int) -> str:
        """The base-store key of shard number ``shard``."""
        return f"{self.prefix}/{self.spec.shard_name(shard)}"

    def shard_key_of(self, key: str) -> str:
        """The base-store key of the shard file that holds chunk key ``key``."""
        return self.shard_key(self._locate([key])[0].shard)

    def shard_keys_of(self, keys: Sequence[str]) -> list[str]:
        """:meth:`shard_key_of` for many keys at once."""
        return [self.shard_key(loc.shard) for loc in self._locate(keys)]

    def describe(self, key: str) -> str:
        """``<shard URL> (chunk <key>, id <chunk id>)`` for a chunk key, for messages."""
        loc = self._located.get(key)
        if loc is None:
            try:
                loc = self._locate([key])[0]
            except InvalidKeyError:
                return self.base.describe(key)
        return f"{self.base.describe(self.shard_key(loc.shard))} (chunk {key}, id {loc.chunk_id})"

    def _what(self, loc: _Loc) -> str:
        return f"shard {self.base.describe(self.shard_key(loc.shard))}, reading chunk {loc.key} (id {loc.chunk_id})"

    # -- cache -----------------------------------------------------------------------------
    def clear_cache(self) -> None:
        """Forget every cached shard and minishard index (to see shards other processes rewrote)."""
        with self._lock:
            self._cache.clear()

    def _slot(self, shard: int) -> int:
        return GENERATIONS.slot(self.url, self.shard_key(shard))

    def _revalidate(self, stamps: Mapping[int, Stamp | None]) -> None:
        """Compare each shard's stamp (None: no file) with the one it had when this adapter last
        stamped it; where it differs, or is not known, drop what is cached of the shard (in
        every open array of the process, as :meth:`_invalidate` does) and remember the new one.

        One lock section: no other thread sees the new stamp as known before the shard's old
        indexes are gone."""
        with self._lock:
            changed = set()
            for shard, stamp in stamps.items():
                known = self._cache.get(("t", shard))
                if known is None or known[1] != stamp:
                    changed.add(shard)
            if not changed:
                return
            GENERATIONS.bump(self._slot(s) for s in changed)  # reads in flight cache nothing they read
            for k in [k for k in self._cache.keys() if k[1] in changed]:
                self._cache.pop(k, None)
            for shard in changed:
                try:
                    self._cache[("t", shard)] = (-1, stamps[shard])
                except ValueError:  # a budget smaller than one entry: nothing is remembered
                    pass

    def _invalidate(self, shards: Iterable[int]) -> None:
        """Drop what this process has cached about ``shards`` (in every open array)."""
        shards = set(shards)
        GENERATIONS.bump(self._slot(s) for s in shards)
        with self._lock:
            for k in [k for k in self._cache.keys() if k[1] in shards]:
                self._cache.pop(k, None)

    # -- reading -----------------------------------------------------------------------------
    def _minishards(self, locs: Sequence[_Loc], attempt: _Attempt) -> dict[tuple[int, int], Any]:
        """The minishard index of every (shard, minishard) ``locs`` need: a
        :class:`MinishardIndex`, or :data:`_MISSING_SHARD`. Two rounds of ranged reads at most."""
        want: dict[tuple[int, int], _Loc] = {}
        for loc in locs:
            want.setdefault((loc.shard, loc.minishard), loc)
        out: dict[tuple[int, int], Any] = {}
        index_key = (lambda shard, m: ("s", shard)) if self._whole_index else (lambda shard, m: ("e", shard, m))
        entries: dict[tuple[int, int], tuple[int, int]] = {}
        fetch: dict[tuple[Any, ...], _Loc] = {}
        for pair, loc in want.items():
            shard, m = pair
            hit = attempt.cached(("m", shard, m), shard)
            if hit is None:
                missing = attempt.cached(("s", shard), shard)
                hit = missing if missing is _MISSING_SHARD else None
            if hit is not None:
                out[pair] = hit
                continue
            index = attempt.cached(index_key(shard, m), shard)
            if index is _MISSING_SHARD:
                out[pair] = _MISSING_SHARD
            elif index is not None:
                entries[pair] = _entry(index, m)
            else:
                fetch.setdefault(index_key(shard, m), loc)
        # Round 1: shard index entries (whole indexes when small) not cached.
        new: dict[tuple[Any, ...], Any] = {}
        if fetch:
            ranges = [ByteRange(self.shard_key(k[1]), 0, self.spec.index_nbytes) if self._whole_index
                      else ByteRange(self.shard_key(k[1]), 16 * k[2], 16 * k[2] + 16) for k in fetch]
            got: _Got = self.base.get_ranges(ranges)
            for (k, loc), data in zip(fetch.items(), got):
                if data is None:
                    new[("s", k[1])] = _MISSING_SHARD
                elif self._whole_index:
                    new[k] = attempt.checked(decode_shard_index, data, self.spec, self._what(loc), loc.key)
                elif len(data) != 16:
                    attempt.corrupt(f"{self._what(loc)}: the shard index entry of minishard {loc.minishard} is "
                                    f"{len(data)} bytes, expected 16 (truncated shard)", loc.key)
                else:
                    rel = np.frombuffer(data, dtype="<u8").reshape(1, 2)
                    new[k] = attempt.checked(check_index_entries, rel, self.spec, self._what(loc), loc.key)[0]
            for pair in want:
                if pair in out or pair in entries:
                    continue
                if new.get(("s", pair[0])) is _MISSING_SHARD:
                    out[pair] = _MISSING_SHARD
                else:
                    entries[pair] = _entry(new[index_key(*pair)], pair[1])
        # Round 2: the non-empty minishard indexes.
        ranges2: list[tuple[tuple[int, int], int, int]] = []
        for pair, (start, stop) in entries.items():
            if start == stop:
                out[pair] = new[("m", pair[0], pair[1])] = EMPTY_MINISHARD
            else:
                ranges2.append((pair, start, stop))
        if ranges2:
            got = self.base.get_ranges([ByteRange(self.shard_key(p[0]), a, b) for p, a, b in ranges2])
            for (pair, start, stop), data in zip(ranges2, got):
                loc = want[pair]
                if data is None:
                    attempt.vanished(f"{self._what(loc)}: the shard disappeared after its index was read", loc.key)
                elif len(data) != stop - start:
                    attempt.corrupt(f"{self._what(loc)}: the index of minishard {loc.minishard} is listed at bytes "
                                    f"[{start}, {stop}), past the end of the shard (truncated shard)", loc.key)
                else:
                    ms = attempt.checked(decode_minishard_index, data, self.spec,
                                         f"{self._what(loc)} (minishard {loc.minishard})", loc.key)
                    out[pair] = new[("m", pair[0], pair[1])] = ms
        attempt.remember(new)
        return out

    def _lookup(self, locs: Sequence[_Loc], attempt: _Attempt) -> list[tuple[int, int] | None]:
        """Each chunk's absolute ``[start, stop)`` in its shard, or None when it is missing."""
        minishards = self._minishards(locs, attempt)
        out: list[tuple[int, int] | None] = [None] * len(locs)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, loc in enumerate(locs):
            groups.setdefault((loc.shard, loc.minishard), []).append(i)
        for pair, idx in groups.items():
            ms = minishards[pair]
            if ms is _MISSING_SHARD or not len(ms.ids):
                continue
            found = ms.find(np.array([locs[i].chunk_id for i in idx], dtype=np.uint64))
            for i, j in zip(idx, found.tolist()):
                if j >= 0:
                    out[i] = (int(ms.starts[j]), int(ms.stops[j]))
        return out

    def _read(self, locs: Sequence[_Loc], spans: Sequence[ByteSpan | None] | None, attempt: _Attempt
              ) -> list[Value | None]:
        where = self._lookup(locs, attempt)
        # What to read of each present chunk: all of it, or only a span of a raw one.
        wanted: list[tuple[int, int, int, bool]] = []  # (loc index, start, stop, partial)
        for i, w in enumerate(where):
            if w is None:
                continue
            start, stop = w
            span = spans[i] if spans is not None else None
            if span is not None and self._encoding is None and stop - start == span[0]:
                wanted.append((i, start + span[1], start + span[2], True))
            else:
                wanted.append((i, start, stop, False))
        out: list[Value | None] = [None] * len(locs)
        if not wanted:
            return out
        # Runs: per shard, ranges sorted by start, merged across gaps up to self._gap.
        runs: list[tuple[int, int, int, list[tuple[int, int, int, bool]]]] = []  # shard, start, stop, members
        for item in sorted(wanted, key=lambda t: (locs[t[0]].shard, t[1])):
            shard = locs[item[0]].shard
            if (runs and runs[-1][0] == shard and item[1] - runs[-1][2] <= self._gap
                    and max(runs[-1][2], item[2]) - runs[-1][1] <= MAX_RUN):
                s, a, b, members = runs[-1]
                members.append(item)
                runs[-1] = (s, a, max(b, item[2]), members)
            else:
                runs.append((shard, item[1], item[2], [item]))
        got: _Got = self.base.get_ranges([ByteRange(self.shard_key(s), a, b) for s, a, b, _ in runs])
        for (_, a, _b, members), data in zip(runs, got):
            view = None if data is None else memoryview(data)
            for i, start, stop, partial in members:
                loc = locs[i]
                if view is None:
                    attempt.vanished(f"{self._what(loc)}: the shard disappeared after its index was read", loc.key)
                elif stop - a > len(view):
                    attempt.corrupt(f"{self._what(loc)}: the minishard index lists the chunk at bytes [{start}, "
                                    f"{stop}), past the end of the shard (truncated shard)", loc.key)
                else:
                    out[i] = Value(view[start - a:stop - a], self._encoding, partial)
        return out

    def _consistent(self, keys: Sequence[str], work: Callable[[list[_Loc], _Attempt], _T]) -> _T:
        """``work(locs, attempt)`` on a consistent view of the shards ``keys`` live in.

        A try that saw a shard change (a writer of this process replaced it meanwhile), or
        whose cached indexes disagree with a shard (another process rewrote it), is made
        again without what was cached; a shard that keeps changing is an error.
        """
        locs = self._locate(keys)
        slots = {shard: self._slot(shard) for shard in {loc.shard for loc in locs}}
        for _ in range(_ATTEMPTS):
            attempt = _Attempt(self, slots, GENERATIONS.snapshot(slots.values()))
            try:
                result = work(locs, attempt)
            except _Retry:
                self._invalidate({loc.shard for loc in locs})
                continue
            if GENERATIONS.unchanged(attempt.snapshot):
                return result
        raise ChunkDecodeError(
            f"shard {self.base.describe(self.shard_key(locs[0].shard))} (reading chunk {locs[0].key}) kept changing "
            f"while it was read ({_ATTEMPTS} tries)", key=locs[0].key)

    def _read_values(self, keys: Sequence[str], spans: Sequence[ByteSpan | None] | None) -> list[Value | None]:
        if not keys:
            return []
        return self._consistent(keys, lambda locs, attempt: self._read(locs, spans, attempt))

    def iter_values(self, keys: Sequence[str], spans: Sequence[ByteSpan | None] | None = None
                    ) -> Iterator[Value | None]:
        """The stored bytes of each chunk with the spec's data encoding (``"gzip"`` or None);
        a span of a raw (``data_encoding`` raw) chunk of exactly the span's size is read in part.

        Raises :class:`ChunkDecodeError` naming the shard and chunk id for a corrupt shard,
        :class:`InvalidKeyError` for a key that is no chunk of this scale.
        """
        return iter(self._read_values(list(keys), spans))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Each chunk's stored bytes (gzip'd when ``data_encoding`` is gzip), None where missing."""
        return [None if v is None else bytes(v.data) for v in self._read_values(list(keys), None)]

    def stat_many(self, keys: Sequence[str]) -> list[Stamp | None]:
        """The stamp of each chunk: made of its shard file's stamp (one base-store stat per
        distinct shard) with the chunk's stored size and the spec's data encoding (what
        :meth:`iter_values` returns); None where the shard is missing or does not hold the
        chunk. Shards whose stamp changed since this adapter last stamped them have their
        cached indexes dropped first (see the module docstring). Reads at most the indexes.

        Raises :class:`InvalidKeyError` for a key that is no chunk of this scale,
        :class:`ChunkDecodeError` for a corrupt shard, and as the base store's ``stat_many``.
        """
        keys = list(keys)
        if not keys:
            return []
        locs = self._locate(keys)
        shards = list(dict.fromkeys(loc.shard for loc in locs))
        stamps = dict(zip(shards, self.base.stat_many([self.shard_key(s) for s in shards])))
        self._revalidate(stamps)
        present = [i for i, loc in enumerate(locs) if stamps[loc.shard] is not None]
        out: list[Stamp | None] = [None] * len(keys)
        if not present:
            return out
        where = self._consistent([keys[i] for i in present], self._lookup)
        for i, w in zip(present, where):
            shard = stamps[locs[i].shard]
            if w is not None and shard is not None:
                out[i] = Stamp(size=w[1] - w[0], mtime_ns=shard.mtime_ns,
                               version=f"shard {shard.token()} chunk {locs[i].chunk_id}", encoding=self._encoding)
        return out

    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        """Whether each chunk is listed in its minishard (reads at most the indexes)."""
        keys = list(keys)
        if not keys:
            return []
        found = self._consistent(keys, self._lookup)
        return [w is not None for w in found]

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every chunk key stored in the scale's shard files that starts with ``prefix``.

        Reads the index and the minishard indexes of every shard (two rounds of ranged
        reads); ids that name no cell of the grid are skipped.
        """
        shards: dict[int, str] = {}
        for key in self.base.list(self.prefix + "/"):
            m = re.fullmatch(r"([0-9a-f]+)\.shard", key[len(self.prefix) + 1:])
            if m is not None and self.shard_key(int(m.group(1), 16)) == key:
                shards[int(m.group(1), 16)] = key
        order = sorted(shards)
        got: _Got = self.base.get_ranges([ByteRange(shards[s], 0, self.spec.index_nbytes) for s in order])
        ranges: list[tuple[str, int, int, int]] = []  # shard key, minishard, start, stop
        for shard, index in zip(order, got):
            if index is None:
                continue
            key = shards[shard]
            what = f"shard {self.base.describe(key)} (listing its chunks)"
            entries = decode_shard_index(index, self.spec, what, key)
            for ms in np.flatnonzero(entries[:, 1] > entries[:, 0]).tolist():
                ranges.append((key, ms, int(entries[ms, 0]), int(entries[ms, 1])))
        ids: set[int] = set()
        got = self.base.get_ranges([ByteRange(k, a, b) for k, _, a, b in ranges])
        for (key, ms, start, stop), data in zip(ranges, got):
            what = f"shard {self.base.describe(key)} (listing its chunks, minishard {ms})"
            if data is None or len(data) != stop - start:
                raise ChunkDecodeError(f"{what}: the minishard index lies past the end of the shard "
                                       "(truncated shard)", key=key)
            ids.update(decode_minishard_index(data, self.spec, what, key).ids.tolist())
        cells = self.code.decode(np.array(sorted(ids), dtype=np.uint64))
        inside = (self.code.encode(cells) == np.array(sorted(ids), dtype=np.uint64)) & (
            cells < np.array(self.grid.grid_shape)).all(axis=1)
        keys = [f"{self.prefix}/{self.grid.chunk_name((int(x), int(y), int(z)))}" for x, y, z in cells[inside]]
        return iter([k for k in keys if k.startswith(prefix)])

    # -- writing -----------------------------------------------------------------------------
    def chunks_in_shard(self, shard: int) -> int | None:
        """How many cells of the grid shard ``shard`` holds, when shards are boxes; else None."""
        if self.shard_shape is None:
            return None
        low = min(self.spec.preshift_bits + self.spec.minishard_bits, self.code.total_bits)
        if low < 64 and shard >> max(self.code.total_bits - low, 0):
            return 0
        origin = self.code.decode([shard << low if low < 64 else 0])[0]
        n = 1
        for o, s, g in zip(origin.tolist(), self.shard_shape, self.grid.grid_shape):
            n *= max(min(g - o, s), 0)
        return n

    def _stored(self, items: Mapping[str, bytes], options: WriteOptions | None) -> dict[str, bytes | memoryview]:
        """The values as the shard stores them (after ``data_encoding``).

        With ``data_encoding`` raw the bytes are stored as given, whatever compression they
        carry (a scale's own ``compression``, recognised on reading by its magic bytes or
        the scale's record); with gzip they must be gzip'd already or are gzip'd here.
        """
        given = options.content_encoding if options is not None else None
        if self._encoding is None or given == self._encoding:
            return dict(items)
        if given is None:
            return {k: gzip_compress(v) for k, v in items.items()}
        raise ValueError(
            f"shards of {self.base.describe(self.prefix)} store chunks with data_encoding gzip; values "
            f"compressed with {given!r} cannot be stored in them"
        )

    def _rewrite(self, changes: Mapping[int, Mapping[int, bytes | memoryview | None]], complete: set[int]) -> None:
        """Apply ``changes`` (shard -> chunk id -> new stored bytes, or None to delete) and
        store each changed shard whole. Shards in ``complete`` are built from the changes
        alone and written blind; the others are read, changed and written back only if
        unchanged meanwhile (:meth:`KVStore.write_if_unchanged` of the base store), read
        again and retried when another writer (another process, another machine) replaced
        the shard in between, so its chunks are never lost."""
        shards = sorted(changes)
        writes: dict[str, bytes] = {}
        for shard in shards:
            if shard in complete:
                chunks = {cid: v for cid, v in changes[shard].items() if v is not None}
                if chunks:
                    writes[self.shard_key(shard)] = encode_shard(chunks, self.spec)
        if writes:
            with GENERATIONS.writing(self._slot(s) for s in shards if s in complete):
                try:
                    self.base.set_many(writes)  # never content-encoded: readers need byte ranges
                finally:
                    self._invalidate([s for s in shards if s in complete])
        for shard in shards:
            if shard not in complete:
                self._update_shard(shard, changes[shard])

    def _update_shard(self, shard: int, changes: Mapping[int, bytes | memoryview | None]) -> None:
        key = self.shard_key(shard)
        for attempt in range(_UPDATE_ATTEMPTS):
            old, version = self.base.read_for_update(key)
            chunks: dict[int, bytes | memoryview] = {}
            if old is not None:
                chunks.update(decode_shard(old.data, self.spec, f"shard {self.base.describe(key)} (to rewrite it)",
                                           key))
            for cid, value in changes.items():
                if value is None:
                    chunks.pop(cid, None)
                else:
                    chunks[cid] = value
            if not chunks and old is None:
                return
            with GENERATIONS.writing([self._slot(shard)]):
                try:
                    done = self.base.write_if_unchanged(key, encode_shard(chunks, self.spec) if chunks else None,
                                                        version)
                finally:
                    self._invalidate([shard])
            if done:
                return
            time.sleep(random.uniform(0, min(1.0, 0.002 * 2**attempt)))  # another writer got there first
        raise StorageError(f"cannot rewrite shard {self.base.describe(key)}: other writers replaced it between "
                           f"our read and our write {_UPDATE_ATTEMPTS} times in a row")

    # -- conditional writes of single chunks (read-modify-write of part of a chunk) ---------
    @property
    def atomic_updates(self) -> bool:
        """As atomic as the base store's conditional writes of shard files."""
        return self.base.atomic_updates

    def read_for_update(self, key: str) -> tuple[Value | None, Version]:
        """The chunk's stored value and, as its version, its shard's (read whole, and kept in
        the version, so the conditional write changes that shard without reading it again)."""
        (loc,) = self._locate([key])
        shard_key = self.shard_key(loc.shard)
        old, version = self.base.read_for_update(shard_key)
        value = None
        if old is not None:
            raw = decode_shard(old.data, self.spec, f"shard {self.base.describe(shard_key)}", shard_key).get(
                loc.chunk_id)
            if raw is not None and len(raw):
                value = Value(bytes(raw), self._encoding)
        return value, Version(_ShardState(shard_key, version, None if old is None else old.data))

    def write_if_unchanged(self, key: str, value: bytes | None, expected: Version,
                           options: WriteOptions | None = None) -> bool:
        """Replace (or delete) the chunk in its shard, written only if the shard is still as
        :meth:`read_for_update` saw it (the base store's conditional write)."""
        self._check_writable("write", key)
        (loc,) = self._locate([key])
        shard_key = self.shard_key(loc.shard)
        state = expected.token
        if not isinstance(state, _ShardState) or state.key != shard_key:
            raise ValueError(f"write_if_unchanged({key!r}): the version was not read for this chunk's shard")
        stored = None if value is None else self._stored({key: value}, options)[key]
        chunks: dict[int, bytes | memoryview] = {}
        if state.data is not None:
            chunks.update(decode_shard(state.data, self.spec,
                                       f"shard {self.base.describe(shard_key)} (to rewrite it)", shard_key))
        if stored is None:
            chunks.pop(loc.chunk_id, None)
        else:
            chunks[loc.chunk_id] = stored
        if not chunks and state.data is None:
            _, now = self.base.read_for_update(shard_key)
            return now == state.version
        with GENERATIONS.writing([self._slot(loc.shard)]):
            try:
                return self.base.write_if_unchanged(shard_key, encode_shard(chunks, self.spec) if chunks else None,
                                                    state.version)
            finally:
                self._invalidate([loc.shard])

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        """Store the chunks, rewriting each shard they fall in once (see the module docstring).

        With ``data_encoding`` gzip, ``options.content_encoding`` must be gzip (the bytes are
        stored as given) or None (they are gzip'd here); with raw, bytes are stored as given.
        """
        self._check_writable("write", next(iter(items), None))
        if not items:
            return
        keys = list(items)
        stored = self._stored(items, options)
        if self.spec.minishard_bits > 24:
            raise ValueError(
                f"{self.base.describe(self.prefix)}: minishard_bits {self.spec.minishard_bits} makes every shard "
                f"index {self.spec.index_nbytes} bytes; bigarrays writes shards with minishard_bits <= 24"
            )
        changes: dict[int, dict[int, bytes | memoryview | None]] = {}
        for loc in self._locate(keys):
            changes.setdefault(loc.shard, {})[loc.chunk_id] = stored[loc.key]
        complete = {s for s, c in changes.items() if self.chunks_in_shard(s) == len(c)}
        self._rewrite(changes, complete)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove the chunks from their shards (a shard left empty is deleted)."""
        keys = list(keys)
        self._check_writable("delete", keys[0] if keys else None)
        changes: dict[int, dict[int, bytes | memoryview | None]] = {}
        for loc in self._locate(keys):
            changes.setdefault(loc.shard, {})[loc.chunk_id] = None
        if changes:
            self._rewrite(changes, set())

    def prepare_writes(self, prefix: str) -> None:
        """The shard files live under the same prefix in the base store: prepare there."""
        self.base.prepare_writes(prefix)

    def close(self) -> None:
        self.clear_cache()

    def __repr__(self) -> str:
        return f"ShardedStore({self.base!r}, {self.prefix!r}, {self.spec!r})"


class _Attempt:
    """One try at a consistent read: the generations it started from, the cache entries it
    may use (those read at these generations) and what it does on inconsistencies."""

    def __init__(self, store: ShardedStore, slots: dict[int, int], snapshot: dict[int, int]) -> None:
        self.store = store
        self.slots = slots
        self.snapshot = snapshot
        #: Whether anything came from the cache (then a mismatch means it was stale).
        self.used_cache = False

    def _gen(self, shard: int) -> int | None:
        slot = self.slots.get(shard)
        return None if slot is None else self.snapshot[slot]

    def cached(self, key: tuple[Any, ...], shard: int) -> Any:
        with self.store._lock:
            hit = self.store._cache.get(key)
        if hit is None or hit[0] != self._gen(shard):
            return None
        self.used_cache = True
        return hit[1]

    def remember(self, items: Mapping[tuple[Any, ...], Any]) -> None:
        """Cache what this try read, at the generation it started from (dropped later if a
        writer changed the shard meanwhile: its generation no longer matches)."""
        with self.store._lock:
            for k, v in items.items():
                gen = self._gen(k[1])
                if gen is not None:
                    try:
                        self.store._cache[k] = (gen, v)
                    except ValueError:  # larger than the whole budget
                        pass

    def _changed(self) -> bool:
        return self.used_cache or not GENERATIONS.unchanged(self.snapshot)

    def corrupt(self, message: str, key: str) -> NoReturn:
        """A shard looks truncated or corrupt: stale cache or a concurrent write? Else an error."""
        if self._changed():
            raise _Retry(message)
        raise ChunkDecodeError(message, key=key)

    def vanished(self, message: str, key: str) -> NoReturn:
        raise _Retry(message)

    def checked(self, decode: Callable[..., _T], *args: Any) -> _T:
        """``decode(*args)``, its ChunkDecodeError judged as :meth:`corrupt` judges."""
        try:
            return decode(*args)
        except ChunkDecodeError as exc:
            if self._changed():
                raise _Retry(str(exc)) from exc
            raise


def _entry(index: npt.NDArray[np.int64], minishard: int) -> tuple[int, int]:
    """``(start, stop)`` of a minishard's index from a cached whole shard index or one entry."""
    row = index[minishard] if index.ndim == 2 else index
    return int(row[0]), int(row[1])


def _sizeof(entry: tuple[int, Any]) -> int:
    value = entry[1]
    if isinstance(value, MinishardIndex):
        return value.nbytes
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + 112
    return 64
