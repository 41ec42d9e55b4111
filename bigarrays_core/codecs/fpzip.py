"""``fpzip``: float volumes, lossless or with fewer bits kept, with the ``fpzip`` package (seung-lab).

What it stores (CloudVolume's rules, which are fpzip's): ``float32`` or ``float64``, any
number of channels. The whole ``(x, y, z, c)`` chunk is one fpzip stream of a 4-D array,
x fastest. The scale's ``fpzip_precision`` is the number of bits kept per value: 0 (the
default) keeps all of them (lossless, NaN and infinities included); otherwise 2..32 for
float32, and an even number 4..64 for float64 (fpzip's own limits); 32 / 64 are lossless
too. Only CloudVolume reads it (Neuroglancer and TensorStore do not). Encoding gives the
bytes ``fpzip.compress`` gives (CloudVolume's) through fpzip's C writer, without the GIL
and with room for incompressible data (random bit patterns take a few percent more than
the array; the package's own function overflows its buffer on them).

The library reads its input without knowing where it ends, so a stream cut short would
make it read past the buffer (garbage, or a crash). bigarrays hands it the stream followed
by zero padding longer than any chunk of the expected shape could read, in one buffer
whose untouched pages cost nothing, and checks that the stream decodes to exactly the
expected shape and dtype. Decoding calls fpzip's C reader (in the package's own library)
through ctypes, which releases the GIL, so chunks decode on every core (the package's
Python function holds the GIL), and checks that decoding consumed exactly the stream's
bytes: a truncated stream, or junk after one, is an error instead of values decoded from
the padding. The format has no checksum, so damage inside a stream may still decode to
wrong values or crash fpzip's decoder (it indexes its tables with what the damage gives
it); gzip on top, bigarrays' default for fpzip, refuses damage before fpzip sees it.
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
    """The fpzip stream of a float32/float64 array of up to 4 dimensions, x fastest: the
    bytes ``fpzip.compress(array, precision, order="F")`` gives, made by fpzip's C writer
    without the GIL when the package ships it."""
    array = np.asfortranarray(array)
    if _WRITER is None or array.ndim > 4 or array.dtype not in (np.float32, np.float64) or not array.size:
        return bytes(fpzip.compress(array, precision=precision, order="F"))
    start, write_header, write, close = _WRITER
    shape = array.shape + (1,) * (4 - array.ndim)
    # Room for incompressible data: fpzip's worst case is a few bytes per value over its size.
    out = bytearray(2 * array.nbytes + 1024)
    out_view = np.frombuffer(out, dtype=np.uint8)
    stream = start(out_view.ctypes.data, len(out))
    if not stream:
        raise MemoryError("fpzip could not allocate a writer")
    try:
        h = stream.contents
        h.type = 0 if array.dtype == np.float32 else 1
        h.prec = precision
        h.nx, h.ny, h.nz, h.nf = shape
        if not write_header(stream):
            raise ValueError(f"fpzip could not write the header of a {array.dtype.name} array of {shape}")
        size = write(stream, array.ctypes.data)  # the GIL is released while fpzip encodes
    finally:
        close(stream)
    if size == 0:
        raise ValueError(f"fpzip could not encode a {array.dtype.name} array of {shape} (precision {precision})")
    return bytes(out_view[:size])


class _Header(ctypes.Structure):
    """fpzip's ``FPZ``: the stream's header as ``fpzip_read_header`` fills it."""

    _fields_ = [("type", ctypes.c_int), ("prec", ctypes.c_int), ("nx", ctypes.c_int), ("ny", ctypes.c_int),
                ("nz", ctypes.c_int), ("nf", ctypes.c_int)]


CFunction = Any  # a function of fpzip's C library, typed through ctypes


def _c_stream_api(direction: str, *buffer: Any) -> tuple[CFunction, CFunction, CFunction, CFunction] | None:
    """``fpzip_{direction}_{from,to}_buffer``, ``fpzip_{direction}_header``,
    ``fpzip_{direction}`` and ``fpzip_{direction}_close`` (``direction`` is ``read`` or
    ``write``) from the library the ``fpzip`` package ships, or None. ``buffer`` is the
    argument types of the first after the buffer's address."""
    opener = "fpzip_read_from_buffer" if direction == "read" else "fpzip_write_to_buffer"
    try:
        lib = ctypes.CDLL(fpzip.__file__)
        functions = (getattr(lib, opener), getattr(lib, f"fpzip_{direction}_header"),
                     getattr(lib, f"fpzip_{direction}"), getattr(lib, f"fpzip_{direction}_close"))
    except (OSError, AttributeError):
        return None
    start, header, run, close = functions
    stream = ctypes.POINTER(_Header)
    start.restype, start.argtypes = stream, [ctypes.c_void_p, *buffer]
    header.restype, header.argtypes = ctypes.c_int, [stream]
    run.restype, run.argtypes = ctypes.c_size_t, [stream, ctypes.c_void_p]  # bytes read or written, 0: failed
    close.restype, close.argtypes = None, [stream]
    return functions


_READER = _c_stream_api("read")
_WRITER = _c_stream_api("write", ctypes.c_size_t)


def _padded(data: bytes | memoryview, values: int, itemsize: int) -> bytes:
    """``data`` followed by zero padding longer than fpzip can read for ``values`` values."""
    n = len(data)
    # bytes(k) is allocated zeroed by calloc, so the padding pages the decoder never reads are
    # never touched. The fresh object is filled before anything else can see it.
    buffer = bytes(n + _PAD_PER_BYTE * values * itemsize + _PAD_EXTRA)
    if n:
        ctypes.memmove(np.frombuffer(buffer, dtype=np.uint8).ctypes.data,
                       np.frombuffer(data, dtype=np.uint8).ctypes.data, n)
    return buffer


def decode_fpzip(data: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """The Fortran-ordered array of exactly ``shape`` and ``dtype`` in an fpzip stream.

    Raises ``ValueError`` when the stream decodes to another shape or type, is not an fpzip
    stream, or (with fpzip's C reader) ends before or after what decoding consumed.
    """
    dtype = np.dtype(dtype)
    want = tuple(shape) + (1,) * (4 - len(shape))
    values = int(np.prod(want))
    buffer = _padded(data, values, dtype.itemsize)
    if _READER is None:
        out: np.ndarray = fpzip.decompress(buffer, order="F")
        if out.shape != want or out.dtype != dtype.newbyteorder("="):
            raise ValueError(f"fpzip stream holds {'x'.join(map(str, out.shape))} {out.dtype.name}, "
                             f"expected {'x'.join(map(str, want))} {dtype.name}")
        return out.reshape(shape, order="F")
    start, read_header, read, close = _READER
    stream = start(np.frombuffer(buffer, dtype=np.uint8).ctypes.data)
    if not stream:
        raise MemoryError("fpzip could not allocate a reader")
    try:
        if not read_header(stream):
            raise ValueError(f"not an fpzip stream ({len(data)} bytes, no fpzip header)")
        h = stream.contents
        got = (h.nx, h.ny, h.nz, h.nf)
        got_dtype = {0: "float32", 1: "float64"}.get(h.type, f"type {h.type}")
        if got != want or got_dtype != dtype.name:
            raise ValueError(f"fpzip stream holds {'x'.join(map(str, got))} {got_dtype}, "
                             f"expected {'x'.join(map(str, want))} {dtype.name}")
        out = np.empty(want, dtype=dtype.newbyteorder("="), order="F")
        used = read(stream, out.ctypes.data)  # the GIL is released while fpzip decodes
    finally:
        close(stream)
    if used == 0:
        raise ValueError(f"fpzip could not decode the stream ({len(data)} bytes)")
    if used != len(data):
        raise ValueError(f"fpzip stream of {len(data)} bytes: decoding it consumed {used} "
                         f"({'truncated' if used > len(data) else 'junk after the stream'})")
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
