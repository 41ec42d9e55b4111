"""``raw``: little-endian values, x fastest (Fortran order of (x, y, z, c)), no header."""

from __future__ import annotations

import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Shape4

__all__ = ["RawCodec"]


class RawCodec(ChunkCodec):
    name = "raw"

    def encode(self, chunk: np.ndarray) -> bytes:
        if self.dtype == np.dtype(bool):
            return np.asarray(chunk, dtype=np.uint8).tobytes(order="F")
        return np.asarray(chunk, dtype=self.dtype).tobytes(order="F")

    def expected_nbytes(self, shape: Shape4) -> int:
        return shape[0] * shape[1] * shape[2] * shape[3] * self.dtype.itemsize

    def decode(self, data: bytes, shape: Shape4) -> np.ndarray:
        expected = self.expected_nbytes(shape)
        if len(data) != expected:
            raise ValueError(
                f"raw chunk is {len(data)} bytes, expected {expected} "
                f"({'x'.join(map(str, shape))} voxels of {self.dtype.name})"
            )
        if self.dtype == np.dtype(bool):
            return np.frombuffer(data, dtype=np.uint8).reshape(shape, order="F").astype(bool)
        return np.frombuffer(data, dtype=self.dtype).reshape(shape, order="F")
