"""``fpzip``: float volumes, lossless or with fewer bits kept, with the ``fpzip`` package (seung-lab).

What it stores (CloudVolume's rules, which are fpzip's): ``float32`` or ``float64``, any
number of channels. The whole ``(x, y, z, c)`` chunk is one fpzip stream of a 4-D array,
x fastest. The scale's ``fpzip_precision`` is the number of bits kept per value: 0 (the
default) keeps all of them (lossless, NaN and infinities included); otherwise 2..32 for
float32, and an even number 4..64 for float64 (fpzip's own limits); 32 / 64 are lossless
too. Only CloudVolume reads it (Neuroglancer and TensorStore do not). Encoding calls
``fpzip.compress`` as CloudVolume does, so both write the same bytes.

The library reads its input without knowing where it ends, so a stream cut short would
make it read past the buffer (garbage, or a crash). bigarrays hands it the stream followed
by zero padding longer than any chunk of the expected shape could read, in one buffer
whose untouched pages cost nothing, and checks that the stream decodes to exactly the
expected shape and dtype. The format has no length or checksum, so a damaged or truncated
stream may still decode to wrong values; gzip on top (whose CRC-32 catches damage first)
is the remedy. The library holds the GIL while it works.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any

import fpzip
import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Shape4
from bigarrays_core.errors import InfoError

__all__ = ["FpzipCodec", "decode_fpzip", "encode_fpzip"]

#: Far more bytes per value than fpzip's range decoder can consume (at most two per symbol
#: and the value's own bits, about 7 for float32 and 11 for float64).
_PAD_PER_BYTE = 3
_PAD_EXTRA = 64


def encode_fpzip(array: np.ndarray, precision: int = 0) -> bytes:
    """The fpzip stream of a float32/float64 array of up to 4 dimensions, x fastest."""
    return bytes(fpzip.compress(np.asfortranarray(array), precision=precision, order="F"))


def decode_fpzip(data: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """The Fortran-ordered array of exactly ``shape`` and ``dtype`` in an fpzip stream.

    Raises ``ValueError`` when the stream decodes to another shape or type, and the
    library's errors when it is not an fpzip stream.
    """
    n = len(data)
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    # bytes(k) is allocated zeroed by calloc, so the padding pages the decoder never reads are
    # never touched. The fresh object is filled before anything else can see it.
    buffer = bytes(n + _PAD_PER_BYTE * expected + _PAD_EXTRA)
    if n:
        ctypes.memmove(np.frombuffer(buffer, dtype=np.uint8).ctypes.data,
                       np.frombuffer(data, dtype=np.uint8).ctypes.data, n)
    out: np.ndarray = fpzip.decompress(buffer, order="F")
    want = tuple(shape) + (1,) * (4 - len(shape))
    if out.shape != want or out.dtype != np.dtype(dtype).newbyteorder("="):
        raise ValueError(f"fpzip stream holds {'x'.join(map(str, out.shape))} {out.dtype.name}, "
                         f"expected {'x'.join(map(str, want))} {np.dtype(dtype).name}")
    return out.reshape(shape, order="F")


class FpzipCodec(ChunkCodec):
    name = "fpzip"
    content_type = "image/x.fpzip"
    dtypes = ("float32", "float64")
    settings = ("fpzip_precision",)

    def __init__(self, dtype: np.dtype, num_channels: int, precision: int = 0) -> None:
        super().__init__(dtype, num_channels)
        problem = _precision_problem(self.dtype, precision)
        if problem:
            raise ValueError(problem)
        self.precision = precision

    @classmethod
    def from_scale(cls, dtype: np.dtype, num_channels: int, scale: Mapping[str, Any]) -> FpzipCodec:
        value = scale.get("fpzip_precision")
        if value is None:
            return cls(dtype, num_channels)
        problem = _precision_problem(np.dtype(dtype), value)
        if problem:
            raise InfoError(f"fpzip_precision: {problem}", field="fpzip_precision")
        return cls(dtype, num_channels, int(value))

    def encode(self, chunk: np.ndarray) -> bytes:
        return encode_fpzip(np.asarray(chunk, dtype=self.dtype.newbyteorder("=")), self.precision)

    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        return decode_fpzip(data, shape, self.dtype)


def _precision_problem(dtype: np.dtype[Any], precision: Any) -> str | None:
    """Why ``precision`` is not a precision fpzip takes for ``dtype`` (None if it is)."""
    if isinstance(precision, bool) or not isinstance(precision, (int, np.integer)):
        return f"expected an integer, got {precision!r}"
    if dtype.itemsize == 4:
        if precision == 0 or 2 <= precision <= 32:
            return None
        return f"{precision} is not 0 (lossless) or 2..32 (bits kept) for float32"
    if precision == 0 or (4 <= precision <= 64 and precision % 2 == 0):
        return None
    return f"{precision} is not 0 (lossless) or an even number 4..64 (bits kept) for float64"
