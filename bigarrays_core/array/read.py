"""Reading a box: the one read loop (plan, batch, fill from a chunk source).

:func:`read_box` plans the read (:func:`~bigarrays_core.array.plan.plan_read`), allocates
one output array (Fortran order, the chunks' own order; from recycled memory when large,
:mod:`bigarrays_core.array.buffers`), cuts the plan into batches and has the worker threads
fill them from a :class:`~bigarrays_core.array.source.ChunkSource` (the scale's stored
chunks by default). Voxels outside the volume are zero (the output is allocated zeroed
when the box reaches outside it), and so are chunks that do not exist (with
``fill_missing=True``; the source zeroes them explicitly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bigarrays_core.array import buffers
from bigarrays_core.array.executor import run_batches
from bigarrays_core.array.plan import ChunkProjection, plan_read
from bigarrays_core.array.scale_io import ChunkRef, ScaleIO
from bigarrays_core.array.source import ChunkSource, StoredChunks, missing_chunk_error
from bigarrays_core.geometry import Box, ChunkGrid

__all__ = ["new_output", "read_box", "read_chunk"]

#: Reads from a threaded source of at most ``source.inline_chunks`` chunks run in the
#: caller's thread, and so do plain copies (bound by memory speed) of at most this many
#: output bytes: measured faster than two threads up to ~32 MiB, slower from ~36 MiB.
_INLINE_COPY_BYTES = 16 << 20


def new_output(grid: ChunkGrid, box: Box, channels: tuple[int, int], dtype: np.dtype, *,
               huge_pages: bool = True) -> np.ndarray:
    """The Fortran-ordered output of a read of ``box`` x ``channels`` (recycled memory if large).

    Zeroed where ``box`` reaches outside the volume. Inside it the contents are undefined:
    the reader must write every voxel, zeros for missing chunks included.
    """
    x, y, z = box.shape
    alloc = buffers.empty if grid.bounds.contains(box) else buffers.zeros
    return alloc((x, y, z, channels[1] - channels[0]), dtype, huge_pages=huge_pages)


def read_chunk(io: ScaleIO, ref: ChunkRef, data: bytes | memoryview | None, *, fill_missing: bool,
               encoding: str | None = None) -> np.ndarray | None:
    """Decode one chunk's stored bytes (``None`` if missing and ``fill_missing``).

    ``encoding`` is the content encoding the store recorded for them, if any.
    """
    if not data:  # CloudVolume treats zero-byte objects as missing too
        if fill_missing:
            return None
        raise missing_chunk_error(io, ref)
    return io.pipeline.decode(data, io.chunk_shape(ref), io.store.describe(ref.key), ref.key, encoding)


def read_box(io: ScaleIO, box: Box, channels: tuple[int, int], *, fill_missing: bool,
             out: np.ndarray | None = None, source: ChunkSource | None = None) -> np.ndarray:
    """The voxels of ``box`` x ``channels`` as a 4-D Fortran-ordered array.

    ``source`` supplies the chunks (default: the scale's stored chunks). ``out``, if
    given, must be a zeroed (or wanted-as-background) array of the right shape and dtype;
    it is filled in place and returned.
    """
    source = source or StoredChunks(io)
    if out is None:
        # Huge pages make local reads faster (fewer faults); for object stores, zeroing
        # 2 MiB at a fault stalls the pasting thread.
        out = new_output(io.grid, box, channels, io.dtype, huge_pages=source.threaded)
    plan = plan_read(io, box, channels)
    if not plan:
        return out

    def work(batch: Sequence[ChunkProjection]) -> None:
        source.fill(batch, out, fill_missing)

    # Several batches per thread: for threaded sources faster threads take more; for object
    # stores (which fetch a batch concurrently) pasting one batch overlaps fetching the
    # next. A few chunks, or a small plain copy, are read faster in the caller's thread
    # than handed to the pool (measured; copies are bound by memory speed). Every decoder
    # releases the GIL in its heavy work.
    serial = source.threaded and (
        len(plan) <= source.inline_chunks or (source.copies_only and out.nbytes <= _INLINE_COPY_BYTES))
    run_batches(work, plan, per_thread=4, inline_below=len(plan) + 1 if serial else 2)
    return out
