"""``raw``: little-endian values, x fastest (Fortran order of (x, y, z, c)), no header."""

from __future__ import annotations

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
        """The smallest byte range ``[start, stop)`` of an encoded chunk holding ``region``."""
        strides = self._strides(shape)
        start = sum(s.start * st for s, st in zip(region, strides))
        return start, start + sum((s.stop - 1 - s.start) * st for s, st in zip(region, strides)) + strides[0]

    def decode_span_into(self, span: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray) -> None:
        """Write ``region`` into ``out`` from ``span``, the bytes :meth:`region_span` names."""
        start, stop = self.region_span(shape, region)
        if len(span) != stop - start:
            raise ValueError(f"raw chunk span is {len(span)} bytes, expected {stop - start}")
        dtype = np.dtype(np.uint8) if self.dtype == np.dtype(bool) else self.dtype
        view = np.ndarray(tuple(s.stop - s.start for s in region), dtype=dtype, buffer=span,
                          strides=self._strides(shape))
        paste(out, view)  # bool (from uint8): nonzero bytes are True, as in decode

    def _strides(self, shape: Shape4) -> tuple[int, int, int, int]:
        x, y, z, _ = shape
        item = self.dtype.itemsize
        return (item, item * x, item * x * y, item * x * y * z)
