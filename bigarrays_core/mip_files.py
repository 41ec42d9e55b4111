"""The first mip of a pyramid task averaged straight from plain raw chunk files.

For the common pyramid of an image -- factor (2, 2, 1), ``average``, unsigned 1- or 2-byte
voxels stored as plain raw chunk files (local disk) -- a batch of source chunks is read and
averaged into the task's result in one call that releases the GIL once
(:func:`bigarrays_core.kernels.downsample.average_221_files`), instead of five hand-overs of the GIL per
chunk. The result is the same, byte for byte: the kernel is the one the chunk-by-chunk path
runs. Everything else (other methods, factors, dtypes, encodings, stores; a chunk that is
missing, compressed, of another size, cut at the region's edge, or that could not be read
whole) is left to that path, which also reports any error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from bigarrays_core.array import BigArray
from bigarrays_core.array.plan import ChunkProjection
from bigarrays_core.codecs.raw import RawCodec
from bigarrays_core.format.scales import coarsen_box
from bigarrays_core.geometry import Box
from bigarrays_core.kernels.scratch import ThreadScratch

__all__ = ["FileAverager"]

#: The type that holds an x pair of voxels of each type the kernel takes.
_PAIRS: dict[np.dtype[Any], np.dtype[Any]] = {np.dtype(np.uint8): np.dtype(np.uint16),
                                              np.dtype(np.uint16): np.dtype(np.uint32)}

#: Where each thread's chunks are read before they are averaged.
_scratch = ThreadScratch()


class FileAverager:
    """Averages the chunks of a batch of a first level that it can straight from their
    files (:meth:`average`); built with :meth:`of`, which says whether the level can use it."""

    def __init__(self, source: BigArray, wide: np.dtype[Any]) -> None:
        from bigarrays_core.kernels import downsample  # imports numba

        self._kernel = downsample.average_221_files
        self._got, self._size = downsample.GOT, downsample.NBYTES
        self._io = source.scale_io
        self._wide = wide
        bits = 8 * source.dtype.itemsize
        self._mask = wide.type((1 << bits) - 1)
        self._bits = wide.type(bits)
        codec = self._io.pipeline.codec
        assert isinstance(codec, RawCodec)  # a plain raw scale
        self._nbytes = codec.expected_nbytes

    @classmethod
    def of(cls, source: BigArray, out_dtype: np.dtype[Any], factor: Sequence[int], method: str) -> FileAverager | None:
        """An averager for the first level reducing ``source`` by ``factor`` with ``method``
        into an array of ``out_dtype``, or None when that level is not one it can do."""
        wide = _PAIRS.get(np.dtype(source.dtype))
        io = source.scale_io
        if (wide is None or method != "average" or tuple(factor) != (2, 2, 1) or out_dtype != source.dtype
                or sys.byteorder != "little" or not io.pipeline.plain_raw or io.sharding is not None):
            return None
        return cls(source, wide)

    def average(self, batch: Sequence[ChunkProjection], src: Box, want: Box, out: np.ndarray
                ) -> Sequence[ChunkProjection]:
        """Average into ``out`` (the voxels of ``want``) the chunks of ``batch`` that lie
        wholly inside ``src`` (the source box reduced), have an even size along x and y, and
        are stored as plain files of their raw size; the projections left (all of them when
        the store keeps no plain files)."""
        whole: list[int] = []
        shapes: list[tuple[int, int, int, int]] = []
        for k, p in enumerate(batch):
            box, shape = p.ref.box, p.shape
            if shape[0] % 2 or shape[1] % 2 or box.intersect(src) != box:
                continue
            blocks = coarsen_box(box, (2, 2, 1))
            if blocks.intersect(want) == blocks:
                whole.append(k)
                shapes.append(shape)
        if not whole:
            return batch
        sizes = [self._nbytes(shape) for shape in shapes]
        fds = self._io.store.plain_files([batch[k].ref.key for k in whole], sizes)
        if fds is None:
            return batch
        rows: list[tuple[int, ...]] = []
        opened: list[int] = []
        try:
            for k, shape, size, fd in zip(whole, shapes, sizes, fds):
                if fd is None:
                    continue
                (x0, y0, z0), (w0, w1, w2) = batch[k].ref.box.start, want.start
                rows.append((fd, size, shape[0] // 2, shape[1], shape[2], shape[3],
                             x0 // 2 - w0, y0 // 2 - w1, z0 - w2, 0))
                opened.append(k)
            if not rows:
                return batch
            jobs = np.array(rows, dtype=np.int64)
            largest = max(sizes)
            scratch = _scratch.get(largest)[:largest - largest % self._wide.itemsize].view(self._wide)
            self._kernel(jobs, scratch, out, self._mask, self._bits)
        finally:
            for fd in fds:
                if fd is not None:
                    os.close(fd)
        done = {k for k, ok in zip(opened, (jobs[:, self._got] == jobs[:, self._size]).tolist()) if ok}
        return [p for k, p in enumerate(batch) if k not in done] if done else batch
