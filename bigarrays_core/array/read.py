"""Reading a box: fetch the chunks it touches, decode them in parallel, paste into one output.

One output array (Fortran order, the chunks' own order) is allocated, from recycled
memory when large (:mod:`bigarrays_core.array.buffers`); each worker thread fetches a
batch of chunks, decodes them and copies the overlapping part straight into it. Voxels
outside the volume are zero (the output is allocated zeroed when the box reaches outside
it), and so are chunks that do not exist (with ``fill_missing=True``; zeroed explicitly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeGuard

import numpy as np

from bigarrays_core.array import buffers
from bigarrays_core.array.executor import run_batches
from bigarrays_core.array.scale_io import ChunkRef, ScaleIO
from bigarrays_core.errors import ChunkNotFoundError
from bigarrays_core.geometry import Box, ChunkGrid

__all__ = ["new_output", "read_box", "read_chunk"]

#: Reads of at most this many chunks from a local store run in the caller's thread.
_INLINE_CHUNKS = 8
#: ... and plain raw reads (a copy per chunk, bound by memory speed) of at most this many
#: output bytes: measured faster than two threads up to ~32 MiB, slower from ~36 MiB.
_INLINE_RAW_BYTES = 16 << 20


def new_output(grid: ChunkGrid, box: Box, channels: tuple[int, int], dtype: np.dtype, *,
               huge_pages: bool = True) -> np.ndarray:
    """The Fortran-ordered output of a read of ``box`` x ``channels`` (recycled memory if large).

    Zeroed where ``box`` reaches outside the volume. Inside it the contents are undefined:
    the reader must write every voxel, zeros for missing chunks included.
    """
    x, y, z = box.shape
    alloc = buffers.empty if grid.bounds.contains(box) else buffers.zeros
    return alloc((x, y, z, channels[1] - channels[0]), dtype, huge_pages=huge_pages)


def _missing(io: ScaleIO, ref: ChunkRef) -> ChunkNotFoundError:
    return ChunkNotFoundError(
        f"chunk {io.store.describe(ref.key)} (voxels {ref.box}) is missing; "
        "open with fill_missing=True to read zeros there",
        key=ref.key,
    )


def _present(data: bytes | memoryview | None, io: ScaleIO, ref: ChunkRef,
             fill_missing: bool) -> TypeGuard[bytes | memoryview]:
    """Whether ``data`` holds the chunk; False for a missing one if ``fill_missing``, else raises."""
    if data:
        return True
    if fill_missing:  # CloudVolume treats zero-byte objects as missing too
        return False
    raise _missing(io, ref)


def read_chunk(io: ScaleIO, ref: ChunkRef, data: bytes | memoryview | None, *,
               fill_missing: bool) -> np.ndarray | None:
    """Decode one chunk's stored bytes (``None`` if missing and ``fill_missing``)."""
    if not _present(data, io, ref, fill_missing):
        return None
    return io.pipeline.decode(data, io.chunk_shape(ref), io.store.describe(ref.key), ref.key)


def read_box(io: ScaleIO, box: Box, channels: tuple[int, int], *, fill_missing: bool,
             out: np.ndarray | None = None) -> np.ndarray:
    """The voxels of ``box`` x ``channels`` as a 4-D Fortran-ordered array.

    ``out``, if given, must be a zeroed (or wanted-as-background) array of the right shape
    and dtype; it is filled in place and returned.
    """
    if out is None:
        # Huge pages make local reads faster (fewer faults); for object stores, zeroing
        # 2 MiB at a fault stalls the pasting thread.
        out = new_output(io.grid, box, channels, io.dtype, huge_pages=io.store.threaded_io)
    refs = io.chunks(box)
    if not refs:
        return out
    csel = slice(channels[0], channels[1])

    pipeline = io.pipeline
    store = io.store

    def work(batch: Sequence[ChunkRef]) -> None:
        shapes, regions, targets = [], [], []
        for ref in batch:
            inter = ref.box.intersect(box)
            shapes.append(io.chunk_shape(ref))
            regions.append(inter.slices_in(ref.box) + (csel,))
            targets.append(inter.slices_in(box) + (slice(None),))
        # Plain raw chunks are read only from the first to the last byte the box needs.
        spans = [pipeline.region_span(s, r) for s, r in zip(shapes, regions)]
        values = store.iter_get_spans([r.key for r in batch], spans)
        # Values may share one reused buffer: each is decoded and pasted before the next.
        for ref, shape, region, target, (data, partial) in zip(batch, shapes, regions, targets, values):
            if not _present(data, io, ref, fill_missing):
                out[target] = 0
                continue
            decode = pipeline.decode_span_into if partial else pipeline.decode_into
            decode(data, shape, region, out[target], store.describe(ref.key), ref.key)

    # Several batches per thread: for local stores faster threads take more; for object
    # stores (which fetch a batch concurrently) pasting one batch overlaps fetching the
    # next. A few local chunks, or a small plain raw read, are read faster in the
    # caller's thread than handed to the pool (measured; copies are bound by memory
    # speed). Every decoder releases the GIL in its heavy work.
    serial = io.store.threaded_io and (
        len(refs) <= _INLINE_CHUNKS or (io.pipeline.plain_raw and out.nbytes <= _INLINE_RAW_BYTES))
    run_batches(work, refs, per_thread=4, inline_below=len(refs) + 1 if serial else 2)
    return out
