"""``kempressed``: fpzip for values in [0, 1] such as affinity maps (CloudVolume's encoding).

What it stores (CloudVolume's rules): ``float32`` or ``float64`` (fpzip's types), any
number of channels. A chunk ``v`` of shape ``(x, y, z, c)`` is stored as the lossless fpzip
stream (:mod:`bigarrays_core.codecs.fpzip`) of ``2 + v`` with the z and channel axes
swapped, shape ``(x, y, c, z)``; decoding swaps them back and subtracts 2. Adding 2 puts
values of [0, 1] in [2, 3], where floats share one exponent and fpzip compresses best.

The stream itself is lossless, but the arithmetic is not: ``(2 + v) - 2`` rounds ``v`` to a
multiple of 2**-22 (float32) near [0, 1], and loses small values entirely. That is the
format, so bigarrays and CloudVolume agree to the bit on what every stored chunk holds
(they write the same bytes and decode them alike); a chunk read back is equal to the one
written only where ``v`` needs no more precision than that. Only CloudVolume reads it.
No settings; ``fpzip_precision`` is not applied (CloudVolume does not apply it either).
"""

from __future__ import annotations

import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Region4, Shape4
from bigarrays_core.codecs.fpzip import decode_fpzip, encode_fpzip

__all__ = ["KempressedCodec"]


class KempressedCodec(ChunkCodec):
    name = "kempressed"
    content_type = "image/x.kempressed"
    dtypes = ("float32", "float64")

    def encode(self, chunk: np.ndarray) -> bytes:
        native = self.dtype.newbyteorder("=")
        swapped = np.asarray(chunk).swapaxes(2, 3)
        shifted = np.empty(swapped.shape, dtype=native, order="F")  # the layout fpzip takes: no second copy
        np.add(swapped, native.type(2), out=shifted)
        return encode_fpzip(shifted)

    def _stored(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        """The stored ``2 + v`` array, axes back in ``(x, y, z, c)`` order (a view)."""
        x, y, z, c = shape
        stored: np.ndarray = decode_fpzip(data, (x, y, c, z), self.dtype).swapaxes(2, 3)
        return stored

    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        stored = self._stored(data, shape)
        np.subtract(stored, stored.dtype.type(2), out=stored)
        return stored

    def decode_into(self, data: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray) -> None:
        """Subtract straight into ``out`` (one pass instead of decode, subtract and copy)."""
        stored = self._stored(data, shape)[region]
        if out.dtype == stored.dtype:
            np.subtract(stored, stored.dtype.type(2), out=out)
        else:
            out[...] = stored - stored.dtype.type(2)
