"""Volumes as Dask arrays: :func:`to_dask` (``BigArray.to_dask``) and :func:`from_dask`.

BigArray indexing is absolute (voxel ``(x, y, z)`` is ``ba[x, y, z]``, whatever the voxel
offset), Dask's is zero-based. :func:`to_dask` bridges the two: element ``[0, 0, 0, 0]``
of the Dask array is the voxel at ``ba.voxel_offset``, so ``darr[i, j, k]`` is
``ba[ox + i, oy + j, oz + k]`` (a plain ``dask.array.from_array(ba)`` would read the wrong
place). Its chunks are the storage chunks by default: each Dask task reads (decodes) each
stored chunk once.

:func:`from_dask` writes a Dask array into a BigArray at an absolute ``offset``. It
rechunks the array on the scale's write units (chunks) so that every Dask task writes
whole units, except where the array's own edge cuts a unit: that unit is read, patched and
rewritten, by that one task. No two tasks ever write the same stored object, so the tasks
run in parallel on any number of workers without locks.

No oversubscription: every function bigarrays hands to Dask does its chunk work in the
thread Dask runs it in (:func:`bigarrays_core.array.executor.serial`); Dask's threads (or
worker processes) are the parallelism. The same holds for any BigArray read or write made
inside a task of a ``distributed`` worker (detected by ``distributed.get_worker()``).
Dask is imported only when these functions are called (``pip install 'bigarrays[dask]'``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bigarrays_core.array.bigarray import BigArray
from bigarrays_core.array.executor import num_threads, serial
from bigarrays_core.array.write_units import unit_size
from bigarrays_core.errors import BigArraysError, OutOfBoundsError, ReadOnlyError, SelectionError
from bigarrays_core.geometry import Box

__all__ = ["from_dask", "open_client", "to_dask"]


def _dask() -> Any:
    try:
        import dask.array
    except ImportError as exc:
        raise BigArraysError("Dask arrays need dask: pip install 'bigarrays[dask]'") from exc
    return dask


class _ZeroBased:
    """A BigArray seen from zero, for ``dask.array.from_array``: ``window[i, j, k, c]`` is
    ``ba[ox + i, oy + j, oz + k, c]``. Takes what Dask's getters pass: slices (step 1 or
    not) and integers, non-negative or counted from the end as numpy does."""

    def __init__(self, ba: BigArray) -> None:
        self.ba = ba
        self.shape = ba.shape
        self.dtype = ba.dtype
        self.ndim = 4

    def __dask_tokenize__(self) -> Any:
        ba = self.ba
        return ("bigarray", ba.url, ba.mip, json.dumps(ba.info, sort_keys=True), ba.fill_missing, ba.bounded)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > 4 or any(k is None or k is Ellipsis for k in key):
            raise SelectionError(f"unsupported Dask selection {key!r} of {self.ba!r}")
        key = key + (slice(None),) * (4 - len(key))
        origin = self.ba.voxel_offset + (0,)
        absolute: list[Any] = []
        steps: list[slice] = []
        for k, n, o in zip(key, self.shape, origin):
            if isinstance(k, slice):
                a, b, step = k.indices(n)
                if step < 0:
                    raise SelectionError(f"unsupported Dask selection {key!r}: negative steps")
                absolute.append(slice(o + a, o + max(a, b)))
                steps.append(slice(None, None, step))
            else:
                i = int(k) + n if int(k) < 0 else int(k)
                if not 0 <= i < n:
                    raise IndexError(f"index {int(k)} is out of bounds for an axis of size {n}")
                absolute.append(o + i)
        with serial():
            out = self.ba[tuple(absolute)]
        if any(s.step != 1 for s in steps):
            out = out[tuple(steps)]
        return out


def to_dask(ba: BigArray, chunks: Any = None) -> Any:
    """``ba`` as a ``dask.array.Array`` (see the module docstring).

    ``chunks``: Dask's chunk specification for the ``(x, y, z, c)`` array (3 entries mean
    every channel in one chunk); default: the storage chunks.
    """
    dask = _dask()
    if chunks is None:
        chunks = ba.chunk_size + (ba.num_channels,)
    elif isinstance(chunks, (tuple, list)) and len(chunks) == 3:
        chunks = tuple(chunks) + (ba.num_channels,)
    window = _ZeroBased(ba)
    name = "bigarray-" + dask.base.tokenize(window, chunks)
    return dask.array.from_array(window, chunks=chunks, name=name, asarray=False, fancy=False, lock=False,
                                 meta=np.empty((0, 0, 0, 0), ba.dtype))


def _cuts(a: int, b: int, origin: int, unit: int, want: int) -> list[int]:
    """Cut points of ``[a, b)``: ``a``, every ``k``-th grid line of ``unit`` (``k`` units of
    about ``want`` voxels), ``b``."""
    k = max(1, round(want / unit))
    lines = range(origin + ((a - origin) // unit + 1) * unit, b, unit)
    return [a, *lines[k - 1::k], b]


def _write_block(ba: BigArray, box: Box, block: np.ndarray) -> int:
    with serial():
        ba.write(box, block)
    return len(ba.chunks(box))


def from_dask(darr: Any, ba: BigArray, offset: Sequence[int] | None = None, *, client: Any = None,
              progress: Callable[[int], None] | None = None) -> int:
    """Write the Dask array ``darr`` (``(x, y, z)`` or ``(x, y, z, c)``) into ``ba`` with its
    element ``[0, 0, 0]`` at the absolute voxel ``offset`` (default ``ba.voxel_offset``).

    Tasks are cut on write-unit boundaries (see the module docstring); what falls outside
    the volume is clipped away, as for ``ba[...] = ...`` (with ``bounded`` it is an error).
    ``client``: a ``distributed.Client`` or a scheduler address to run on; default: Dask's
    threads on this machine (:func:`bigarrays_core.num_threads` of them). ``progress(n)``
    is called as tasks finish, with their chunk counts. Returns the number of chunks written.

    Raises :class:`SelectionError` for a wrong number of dimensions or channels,
    :class:`OutOfBoundsError` when nothing (or, with ``bounded``, not everything) lies
    inside the volume, :class:`ReadOnlyError`, and what a task raises (a value that does
    not fit the dtype is a :class:`WriteDataError` naming its box).
    """
    dask = _dask()
    if getattr(darr, "ndim", None) == 3:
        darr = darr[..., None]
    if getattr(darr, "ndim", None) != 4:
        raise SelectionError(f"from_dask takes an (x, y, z) or (x, y, z, c) array, got shape "
                             f"{getattr(darr, 'shape', None)}")
    if darr.shape[3] != ba.num_channels:
        raise SelectionError(f"the array has {darr.shape[3]} channel(s); {ba.url} has {ba.num_channels}")
    if ba.store.read_only:
        raise ReadOnlyError(f"cannot write to {ba.url}: the store is read-only")
    off = tuple(int(o) for o in offset) if offset is not None else ba.voxel_offset
    target = Box.from_shape(off, darr.shape[:3])
    inner = target.intersect(ba.bounds)
    if ba.bounded and not ba.bounds.contains(target):
        raise OutOfBoundsError(f"cannot write {target} to {ba.url} mip {ba.mip}: it reaches outside the volume "
                               f"{ba.bounds} (opened with bounded=True)")
    if inner.is_empty:
        raise OutOfBoundsError(f"cannot write {target} to {ba.url} mip {ba.mip}: it lies wholly outside the "
                               f"volume {ba.bounds}")
    darr = darr[inner.slices_in(target)]
    unit = unit_size(ba)
    cuts = [_cuts(inner.start[a], inner.stop[a], ba.voxel_offset[a], unit[a], darr.chunks[a][0]) for a in range(3)]
    darr = darr.rechunk(tuple(tuple(np.diff(c).tolist()) for c in cuts) + ((ba.num_channels,),))
    writer = BigArray(ba.store, ba.parsed_info, ba.mip, non_aligned_writes=True)
    target_ba = dask.delayed(writer, pure=True)
    blocks = darr.to_delayed()
    tasks = []
    for i in range(len(cuts[0]) - 1):
        for j in range(len(cuts[1]) - 1):
            for k in range(len(cuts[2]) - 1):
                box = Box((cuts[0][i], cuts[1][j], cuts[2][k]), (cuts[0][i + 1], cuts[1][j + 1], cuts[2][k + 1]))
                tasks.append(dask.delayed(_write_block, pure=False)(target_ba, box, blocks[i, j, k, 0]))
    report = progress or (lambda n: None)
    if client is not None:
        return _on_cluster(client, tasks, report)
    from dask.callbacks import Callback

    keys = {t.key for t in tasks}

    class _Progress(Callback):
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if key in keys:
                report(int(result))

    with _Progress():  # type: ignore[no-untyped-call]  # dask leaves Callback() unannotated
        counts = dask.compute(*tasks, scheduler="threads", num_workers=num_threads())
    return int(sum(counts))


def open_client(client: Any) -> tuple[Any, bool]:
    """``(distributed.Client, owned)`` for ``client``: a Client as it is, or a new one for a
    scheduler address (``owned``: the caller closes it; it is not made the process's default
    client, so ``dask.compute`` elsewhere in the process goes where it went before).

    Raises :class:`BigArraysError` when ``distributed`` is not installed or the scheduler
    cannot be reached, and :class:`TypeError` for anything else.
    """
    try:
        import distributed
    except ImportError as exc:
        raise BigArraysError(
            "running on a Dask cluster needs dask.distributed: pip install 'bigarrays[dask]'") from exc
    if isinstance(client, distributed.Client):
        return client, False
    if isinstance(client, str):
        try:
            # distributed leaves Client and as_completed unannotated (here and below).
            return distributed.Client(client, timeout="20s", set_as_default=False), True  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise BigArraysError(f"cannot reach the Dask scheduler at {client}: {exc}") from exc
    raise TypeError(f"client must be a distributed.Client or a scheduler address, not {type(client).__name__}")


def _on_cluster(client: Any, tasks: list[Any], report: Callable[[int], None]) -> int:
    from distributed import as_completed

    client, owned = open_client(client)
    try:
        futures = client.compute(tasks)
        total = 0
        try:
            # This client's loop, not the default client's (see jobs._run_dask).
            for fut in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
                n = int(fut.result())
                total += n
                report(n)
        finally:
            client.cancel(futures)
        return total
    finally:
        if owned:
            client.close()
