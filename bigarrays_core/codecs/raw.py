"""``raw``: little-endian values, x fastest (Fortran order of (x, y, z, c)), no header."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Region4, Shape4
from bigarrays_core.kernels.paste import paste

__all__ = ["RawCodec"]


class RawCodec(ChunkCodec):
    name = "raw"

    def encode(self, chunk: np.ndarray) -> bytes:
        if self.dtype == np.dtype(bool):
            return np.asarray(chunk, dtype=np.uint8).tobytes(order="F")
        return np.asarray(chunk, dtype=self.dtype).tobytes(order="F")

    def encode_into(self, chunk: np.ndarray, out: np.ndarray) -> None:
        """Write the bytes :meth:`encode` gives for the 4-D ``chunk`` into ``out``, a uint8
        array of exactly :meth:`expected_nbytes` bytes (for writers that lay several chunks
        out in one buffer)."""
        paste(out.view(self._stored).reshape(chunk.shape, order="F"), chunk)  # bool: as uint8 0/1, as encode

    def expected_nbytes(self, shape: Shape4) -> int:
        return shape[0] * shape[1] * shape[2] * shape[3] * self.dtype.itemsize

    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        expected = self.expected_nbytes(shape)
        if len(data) != expected:
            raise ValueError(
                f"raw chunk is {len(data)} bytes, expected {expected} "
                f"({'x'.join(map(str, shape))} voxels of {self.dtype.name})"
            )
        if self.dtype == np.dtype(bool):
            return np.frombuffer(data, dtype=np.uint8).reshape(shape, order="F").astype(bool)
        return np.frombuffer(data, dtype=self.dtype).reshape(shape, order="F")

    def region_span(self, shape: Shape4, region: Region4) -> tuple[int, int]:
        """The smallest byte range ``[start, stop)`` of an encoded chunk holding ``region``
        (which must not be empty)."""
        rx, ry, rz, rc = region
        item, sy, sz, sc = self.strides(shape)
        start = rx.start * item + ry.start * sy + rz.start * sz + rc.start * sc
        last = (rx.stop - 1) * item + (ry.stop - 1) * sy + (rz.stop - 1) * sz + (rc.stop - 1) * sc
        return start, last + item

    def decode_span_into(self, span: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray) -> None:
        """Write ``region`` into ``out`` from ``span``, the bytes :meth:`region_span` names."""
        rx, ry, rz, rc = region
        item, sy, sz, sc = strides = self.strides(shape)
        nx, ny, nz, nc = rx.stop - rx.start, ry.stop - ry.start, rz.stop - rz.start, rc.stop - rc.start
        expected = (nx - 1) * item + (ny - 1) * sy + (nz - 1) * sz + (nc - 1) * sc + item  # as region_span
        if len(span) != expected:
            raise ValueError(f"raw chunk span is {len(span)} bytes, expected {expected}")
        view = np.ndarray((nx, ny, nz, nc), dtype=self._stored, buffer=span, strides=strides)
        paste(out, view)  # bool (from uint8): nonzero bytes are True, as in decode

    @cached_property
    def _stored(self) -> np.dtype:
        """The dtype of the stored values (bool volumes store one byte per voxel)."""
        return np.dtype(np.uint8) if self.dtype == np.dtype(bool) else self.dtype

    def strides(self, shape: Shape4) -> tuple[int, int, int, int]:
        """The byte strides of a stored chunk of ``shape`` (Fortran order)."""
        item = self.dtype.itemsize
        sy = item * shape[0]
        sz = sy * shape[1]
        return item, sy, sz, sz * shape[2]
