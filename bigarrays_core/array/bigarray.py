"""``BigArray``: one scale of a precomputed volume, indexed like a numpy array.

Coordinates are global and absolute (docs/format.md): ``ba[-64:0, 0:64, 0:64]`` is the block
just before the origin, whatever the volume's ``voxel_offset``. Reads return a new
Fortran-ordered ndarray ``(x, y, z, c)`` (minus axes indexed by an integer); writes must
be chunk-aligned unless ``non_aligned_writes=True``.
"""

from __future__ import annotations

import functools
from typing import Any, NoReturn

import numpy as np

from bigarrays_core.array import whole
from bigarrays_core.array.indexing import Selection, parse_selection
from bigarrays_core.array.read import read_box, read_chunk
from bigarrays_core.array.scale_io import ChunkRef, ScaleIO
from bigarrays_core.array.source import ChunkSource, load_chunks
from bigarrays_core.array.values import write_array
from bigarrays_core.array.write import write_box
from bigarrays_core.errors import (
    AlignmentError,
    OutOfBoundsError,
    ReadOnlyError,
    SelectionError,
)
from bigarrays_core.format import Info, Scale, read_info
from bigarrays_core.geometry import Box, ChunkGrid, Vec3
from bigarrays_core.kvstore import KVStore
from bigarrays_core.kvstore.sharding import ShardedStore, ShardingSpec

__all__ = ["BigArray"]


class BigArray:
    """A numpy-like view of scale ``mip`` of the precomputed dataset in ``store``.

    Parameters
    ----------
    store, info:
        Where the dataset lives and its parsed info (see :func:`bigarrays_core.open`).
    mip:
        The scale (0 is the finest).
    fill_missing:
        Read missing chunks as zeros (default). False raises :class:`ChunkNotFoundError`
        naming the chunk's key.
    bounded:
        Make any read or write reaching outside the volume an :class:`OutOfBoundsError`.
        By default reads outside give zeros and writes outside are clipped away.
    non_aligned_writes:
        Allow writes that do not cover whole chunks, as a read-modify-write under
        per-chunk locks. By default they raise :class:`AlignmentError`.

    Sharded scales (``"sharding"`` in the scale's info) read and write like the others,
    through the scale's chunk store (:attr:`scale_io`); :attr:`sharding` is the parsed spec.
    A chunk-aligned write that covers part of a shard rewrites that shard (locked like an
    unaligned write); :meth:`write_boxes` cuts a region into whole shards. The array caches
    its shards' indexes: :meth:`clear_cache` makes it see shards other processes rewrote.
    Raises :class:`InfoError` naming the field when the scale cannot be read (e.g. a bad
    sharding spec); other scales of the info are not affected.

    ``np.asarray(ba)`` reads the whole volume (see :mod:`bigarrays_core.array.whole`), up
    to :attr:`max_array_bytes`; iterating over a BigArray is a ``TypeError``.
    :meth:`to_dask` is the volume as a Dask array. A BigArray pickles (its store, info,
    scale and options), so Dask sends it to workers.
    """

    #: The largest ``np.asarray(ba)`` read without complaint (bytes; set it per object or class).
    max_array_bytes: int = whole.MAX_ARRAY_BYTES

    def __init__(self, store: KVStore, info: Info, mip: int = 0, *, fill_missing: bool = True,
                 bounded: bool = False, non_aligned_writes: bool = False) -> None:
        scale = info.scale(mip)
        if scale.problem is not None:  # only this scale is unusable; the others open
            raise scale.problem.error(f"{store.url} mip {mip}")
        self._store = store
        self._info = info
        self._io = ScaleIO.of(store, info, mip)
        self.fill_missing = fill_missing
        self.bounded = bounded
        self.non_aligned_writes = non_aligned_writes

    # -- description -------------------------------------------------------------------
    @property
    def store(self) -> KVStore:
        """The dataset's store (the info, chunk files, shard files). Chunk-level access goes
        through ``scale_io.store``, which also reads sharded scales."""
        return self._store

    @property
    def url(self) -> str:
        return self._store.url

    @property
    def mip(self) -> int:
        return self._io.scale.index

    @property
    def scale(self) -> Scale:
        return self._io.scale

    @property
    def num_mips(self) -> int:
        return len(self._info.scales)

    @property
    def info(self) -> dict[str, Any]:
        """The dataset's info JSON (a copy; unknown fields included)."""
        return self._info.to_json()

    @property
    def parsed_info(self) -> Info:
        return self._info

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._io.dtype

    @property
    def num_channels(self) -> int:
        return self._io.num_channels

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(X, Y, Z, C)``: the scale's size and the channel count."""
        x, y, z = self._io.scale.size
        return (x, y, z, self.num_channels)

    @property
    def voxel_offset(self) -> tuple[int, int, int]:
        return self._io.scale.voxel_offset

    @property
    def chunk_size(self) -> tuple[int, int, int]:
        return self._io.scale.chunk_size

    @property
    def resolution(self) -> tuple[float, float, float]:
        return self._io.scale.resolution

    @property
    def encoding(self) -> str:
        return self._io.scale.encoding

    @property
    def compression(self) -> dict[str, Any] | None:
        return self._io.scale.compression

    @property
    def bounds(self) -> Box:
        """The volume's voxels ``[voxel_offset, voxel_offset + size)``."""
        return self._io.grid.bounds

    @property
    def grid(self) -> ChunkGrid:
        return self._io.grid

    @property
    def key(self) -> str:
        """The scale's key (its chunks' directory)."""
        return self._io.scale.key

    @property
    def sharding(self) -> ShardingSpec | None:
        """The scale's parsed sharding spec, or None when it is unsharded."""
        return self._io.sharding

    @property
    def write_chunk_size(self) -> Vec3:
        """The voxels per axis of one write unit: the chunk size, or for a sharded scale the
        size of a shard (the whole volume when shards are not boxes, e.g. murmurhash).

        Writes of boxes aligned to these units never touch the same stored object, so they
        can run in parallel (in other processes too) without locks.
        """
        return self._io.write_chunk_size

    def write_boxes(self, box: Box | str | None = None) -> list[Box]:
        """The write units (:attr:`write_chunk_size` boxes on the grid, clipped to the volume)
        that ``box`` (default: the whole volume) touches, x fastest."""
        if isinstance(box, str):
            box = Box.parse(box)
        return self._io.write_boxes(self.bounds if box is None else box)

    def clear_cache(self) -> None:
        """Forget the cached shard and minishard indexes of a sharded scale (no-op otherwise),
        so shards rewritten by other processes are read afresh."""
        store = self._io.store
        if isinstance(store, ShardedStore):
            store.clear_cache()

    def at_mip(self, mip: int) -> BigArray:
        """The same dataset and options at another scale. A scale this array's info does not
        have is looked for in the info stored now (scales added since, e.g. by
        :func:`bigarrays_core.downsample`); :class:`InfoError` if it has none either."""
        info = self._info
        if isinstance(mip, int) and not isinstance(mip, bool) and mip >= len(info.scales):
            info = read_info(self._store)
        return BigArray(self._store, info, mip, fill_missing=self.fill_missing, bounded=self.bounded,
                        non_aligned_writes=self.non_aligned_writes)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        options: dict[str, Any] = {"fill_missing": self.fill_missing, "bounded": self.bounded,
                                   "non_aligned_writes": self.non_aligned_writes}
        return (functools.partial(BigArray, **options), (self._store, self._info, self.mip))

    def to_dask(self, chunks: Any = None) -> Any:
        """This scale as a ``dask.array.Array`` of shape :attr:`shape`: element ``[0, 0, 0, 0]``
        is the voxel at :attr:`voxel_offset` (Dask indexes from zero; see
        :mod:`bigarrays_core.array.dask_io`). ``chunks``: Dask's chunks, by default the
        storage chunks (all channels in one)."""
        from bigarrays_core.array.dask_io import to_dask

        return to_dask(self, chunks)

    def __repr__(self) -> str:
        return (f"BigArray({self.url!r}, mip={self.mip}, shape={self.shape}, dtype={self.dtype.name}, "
                f"voxel_offset={self.voxel_offset}, chunk_size={self.chunk_size}, encoding={self.encoding!r})")

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The whole volume, all channels, as ``(x, y, z, c)``; :class:`TooLargeError` above
        :attr:`max_array_bytes`."""
        return whole.to_numpy(self, dtype, copy)

    def __iter__(self) -> NoReturn:
        raise whole.not_iterable(self)

    # -- reading -----------------------------------------------------------------------
    def _selection(self, key: Any) -> Selection:
        return parse_selection(key, self.bounds, self.num_channels)

    def _check_bounded(self, box: Box, action: str) -> None:
        if self.bounded and not self.bounds.contains(box):
            raise OutOfBoundsError(
                f"cannot {action} {box} of {self.url} mip {self.mip}: it reaches outside the volume "
                f"{self.bounds} (opened with bounded=True)"
            )

    def __getitem__(self, key: Any) -> np.ndarray:
        sel = self._selection(key)
        return sel.drop_axes(self.read(sel.box, sel.channels))

    def read(self, box: Box | str, channels: tuple[int, int] | None = None, *,
             source: ChunkSource | None = None) -> np.ndarray:
        """The 4-D ``(x, y, z, c)`` voxels of ``box`` (a :class:`Box` or ``"x0:x1,y0:y1,z0:z1"``).

        ``source`` supplies the chunks instead of the store (for example a cache, see
        :class:`~bigarrays_core.array.source.ChunkSource`); it must be a source of this
        array's :attr:`scale_io`.
        """
        if isinstance(box, str):
            box = Box.parse(box)
        channels = channels or (0, self.num_channels)
        if not 0 <= channels[0] <= channels[1] <= self.num_channels:
            raise SelectionError(f"channels {channels[0]}:{channels[1]} are outside 0:{self.num_channels}")
        self._check_bounded(box, "read")
        return read_box(self._io, box, channels, fill_missing=self.fill_missing, source=source)

    @property
    def scale_io(self) -> ScaleIO:
        """Everything chunk I/O needs about this scale (chunk store, grid, codec pipeline),
        for chunk sources and other low-level readers. Its ``store`` takes chunk keys
        (:attr:`ChunkRef.key`) for sharded and unsharded scales alike; :attr:`store` is the
        dataset's own store (the info, and the shard files of sharded scales)."""
        return self._io

    # -- writing -----------------------------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        sel = self._selection(key)
        data = self._write_data(value, sel)
        self._write(sel.box, sel.channels, data)

    def write(self, box: Box | str, data: Any) -> None:
        """Save 4-D ``data`` (or 3-D for one channel) at ``box``; see :meth:`__setitem__`."""
        if isinstance(box, str):
            box = Box.parse(box)
        sel = Selection(box, (0, self.num_channels), ())
        self._write(box, sel.channels, self._write_data(data, sel))

    def _write_data(self, value: Any, sel: Selection) -> np.ndarray:
        return write_array(value, self.dtype, sel)

    def _write(self, box: Box, channels: tuple[int, int], data: np.ndarray) -> None:
        if self._store.read_only:
            raise ReadOnlyError(f"cannot write {box} to {self.url}: the store is read-only")
        self._check_bounded(box, "write")
        if box.is_empty or channels[1] <= channels[0]:
            return  # an empty selection writes nothing, as in numpy
        inner = box.intersect(self.bounds)
        if inner.is_empty:
            raise OutOfBoundsError(
                f"cannot write {box} to {self.url} mip {self.mip}: it lies wholly outside the volume "
                f"{self.bounds}, so nothing would be written (a write partly outside is clipped to the volume)"
            )
        data = data[inner.slices_in(box) + (slice(None),)]
        partial_channels = channels != (0, self.num_channels)
        if not self.non_aligned_writes and (partial_channels or not self.grid.is_aligned(inner)):
            nearest = self.grid.expand_to_grid(inner)
            why = (f"it writes channels {channels[0]}:{channels[1]} of {self.num_channels}" if partial_channels
                   else f"it is not aligned to the chunk grid (voxel_offset {list(self.voxel_offset)}, "
                        f"chunk_size {list(self.chunk_size)})")
            raise AlignmentError(
                f"cannot write {inner} to {self.url} mip {self.mip}: {why}. The nearest aligned box is "
                f"{nearest}; write that, or open with non_aligned_writes=True for a locked read-modify-write",
                box=inner,
                nearest=nearest,
                reason=why,
            )
        write_box(self._io, inner, channels, data)

    # -- chunk utilities ---------------------------------------------------------------
    def chunks(self, box: Box | str | None = None) -> list[ChunkRef]:
        """The chunks a box touches (the whole volume by default), x fastest."""
        if isinstance(box, str):
            box = Box.parse(box)
        return self._io.chunks(self.bounds if box is None else box)

    def decode_chunk(self, ref: ChunkRef, data: bytes | memoryview | None,
                     encoding: str | None = None) -> np.ndarray | None:
        """The ``(x, y, z, c)`` array of one chunk's stored bytes (as ``scale_io.store``
        gives them), or None when the chunk is missing (None or zero bytes).

        ``encoding`` is the content encoding the store recorded for the bytes (a ``.gz``
        suffix, a ``Content-Encoding`` header; see :meth:`KVStore.iter_values`), if any.
        Raises :class:`ChunkDecodeError` naming the chunk when the bytes do not decode.
        """
        return read_chunk(self._io, ref, data, fill_missing=True, encoding=encoding)

    def load_chunks(self, refs: list[ChunkRef]) -> list[np.ndarray | None]:
        """The whole decoded array of each chunk (Fortran order, owning its memory), or
        None where it is missing. Raises :class:`ChunkDecodeError` naming a bad chunk."""
        return load_chunks(self._io, refs)

    def missing_chunks(self, box: Box | str | None = None) -> list[ChunkRef]:
        """The chunks of :meth:`chunks` that are not stored."""
        refs = self.chunks(box)
        exists = self._io.store.exists_many([r.key for r in refs]) if refs else []
        return [r for r, e in zip(refs, exists) if not e]
