"""``zfpc``: zfp-compressed numeric volumes in CloudVolume's zfpc container (``zfpc`` package).

What it stores (the zfpc container's types): ``float32``, ``float64``, ``int32`` or
``int64``, any number of channels. A chunk is the 4-D array ``(x, y, z, c)``; the container
splits it into one zfp stream per combination of the axes that are *not* correlated (all
four are by default, so one stream), behind a 23-byte header (magic ``zfpc``, type, mode,
shape, correlated axes) and an index of the streams' sizes.

Settings, as CloudVolume names them in the scale (at most one of the first three; -1 or
absent means unset, and none set means zfp's reversible mode, which is **lossless**):

* ``zfpc_rate``: bits per value (fixed rate);
* ``zfpc_precision``: bit planes kept (fixed precision);
* ``zfpc_tolerance``: largest absolute error allowed (fixed accuracy);
* ``zfpc_correlated_dims``: four booleans, which of x, y, z, c vary smoothly (default all).

Encoding calls ``zfpc.compress`` as CloudVolume does, so both write the same bytes.
Decoding reads the container with the ``zfpc`` package and each stream with libzfp
through imagecodecs, which gives the same values as zfpc's own reader (zfpy) but releases
the GIL; it returns the scale's dtype. (zfpc's own ``decompress``, which CloudVolume uses,
always returns float32: CloudVolume reads only float32 zfpc chunks exactly.) The header is
checked against the chunk expected at the key and the index against the stream's length;
:meth:`ZfpcCodec.decode_into` decodes only the streams a region touches. Only CloudVolume
reads zfpc; Neuroglancer and TensorStore do not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import imagecodecs
import numpy as np
import zfpc

from bigarrays_core.codecs.base import ChunkCodec, Region4, Shape4
from bigarrays_core.codecs.settings import flags_setting, number_setting
from bigarrays_core.errors import InfoError
from bigarrays_core.kernels.paste import paste

__all__ = ["ZfpcCodec"]

_MODES = ("zfpc_rate", "zfpc_precision", "zfpc_tolerance")
_ALL_CORRELATED = (True, True, True, True)


class ZfpcCodec(ChunkCodec):
    name = "zfpc"
    content_type = "image/x.zfpc"
    dtypes = ("float32", "float64", "int32", "int64")
    settings = ("zfpc_rate", "zfpc_precision", "zfpc_tolerance", "zfpc_correlated_dims")

    def __init__(self, dtype: np.dtype, num_channels: int, *, rate: float = -1, precision: float = -1,
                 tolerance: float = -1, correlated_dims: tuple[bool, ...] = _ALL_CORRELATED) -> None:
        super().__init__(dtype, num_channels)
        if sum(v >= 0 for v in (rate, precision, tolerance)) > 1:
            raise ValueError("zfpc takes at most one of rate, precision and tolerance")
        if len(correlated_dims) != 4 or not any(correlated_dims):
            raise ValueError(f"zfpc correlated_dims must be 4 booleans, at least one True, got {correlated_dims}")
        self.rate, self.precision, self.tolerance = float(rate), float(precision), float(tolerance)
        self.correlated_dims = tuple(bool(c) for c in correlated_dims)

    @classmethod
    def from_scale(cls, dtype: np.dtype, num_channels: int, scale: Mapping[str, Any]) -> ZfpcCodec:
        values = {m: number_setting(scale, m, -1.0) for m in _MODES}
        for member, value in values.items():
            if value < 0 and value != -1:
                raise InfoError(f"{member}: expected a number >= 0, or -1 for unset, got {scale[member]!r}",
                                field=member)
        chosen = [m for m, v in values.items() if v >= 0]
        if len(chosen) > 1:
            raise InfoError(f"{chosen[1]}: zfpc takes at most one of {', '.join(_MODES)}, got {', '.join(chosen)}",
                            field=chosen[1])
        dims = flags_setting(scale, "zfpc_correlated_dims", _ALL_CORRELATED)
        if not any(dims):
            raise InfoError("zfpc_correlated_dims: at least one axis must be correlated", field="zfpc_correlated_dims")
        return cls(dtype, num_channels, rate=values["zfpc_rate"], precision=values["zfpc_precision"],
                   tolerance=values["zfpc_tolerance"], correlated_dims=dims)

    def encode(self, chunk: np.ndarray) -> bytes:
        array = np.asfortranarray(chunk, dtype=self.dtype.newbyteorder("="))
        return bytes(zfpc.compress(array, rate=self.rate, precision=self.precision, tolerance=self.tolerance,
                                   correlated_dims=list(self.correlated_dims)))

    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        streams = list(self._streams(data, shape))
        if len(streams) == 1:  # the whole chunk in one stream: libzfp's array as it is
            return self._decoded(streams[0][1], shape)
        out = np.empty(shape, dtype=self.dtype.newbyteorder("="), order="F")
        for where, stream in streams:
            paste(out[where], self._decoded(stream, _plane_shape(where, shape)))
        return out

    def decode_into(self, data: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray) -> None:
        """Decode only the streams whose part of the chunk meets ``region``."""
        bounds = [r.indices(n)[:2] for r, n in zip(region, shape)]
        for where, stream in self._streams(data, shape):
            # A stream holds one index on each uncorrelated axis and all of the others.
            if any(isinstance(w, int) and not lo <= w < hi for w, (lo, hi) in zip(where, bounds)):
                continue
            plane = self._decoded(stream, _plane_shape(where, shape))
            inside = tuple(slice(lo, hi) for w, (lo, hi) in zip(where, bounds) if isinstance(w, slice))
            dest = tuple(slice(None) if isinstance(w, slice) else w - lo for w, (lo, _) in zip(where, bounds))
            paste(out[dest], plane[inside])

    def _streams(self, data: bytes | memoryview, shape: Shape4) -> Iterator[tuple[tuple[Any, ...], bytes]]:
        """``(where, stream)`` for every zfp stream: ``where`` indexes the chunk (an int on each
        uncorrelated axis, a full slice on the others)."""
        data = bytes(data)
        header = zfpc.ZfpcHeader.frombytes(data)  # checks the magic and format version
        dims = [header.nx, header.ny, header.nz, header.nw]
        if dims != list(shape):
            raise ValueError(f"zfpc stream holds {'x'.join(map(str, dims))} values, "
                             f"expected {'x'.join(map(str, shape))}")
        if np.dtype(header.data_type) != self.dtype.newbyteorder("="):
            raise ValueError(f"zfpc stream holds {np.dtype(header.data_type).name}, expected {self.dtype.name}")
        count = header.num_streams()
        index_end = zfpc.ZfpcHeader.header_size + 8 * (1 + count)
        if len(data) < index_end:
            raise ValueError(f"truncated zfpc stream: {len(data)} bytes, its index ends at {index_end}")
        index = np.frombuffer(data, dtype="<u8", count=1 + count, offset=zfpc.ZfpcHeader.header_size)
        if int(index[0]) != index_end or index_end + int(index[1:].sum()) != len(data):
            raise ValueError(f"zfpc stream is {len(data)} bytes, its index describes "
                             f"{int(index[0]) + int(index[1:].sum())}")
        streams = zfpc.disassemble_container(header, data)
        for where, stream in zip(zfpc.compute_slices(header), streams, strict=True):
            yield tuple(where) + (slice(None),) * (4 - len(where)), stream

    def _decoded(self, stream: bytes, shape: tuple[int, ...]) -> np.ndarray:
        values = imagecodecs.zfp_decode(stream, numthreads=1)  # bigarrays decodes chunks in parallel
        if values.dtype != self.dtype.newbyteorder("=") or values.shape != tuple(shape):
            raise ValueError(f"zfp stream holds {values.shape} {values.dtype.name}, expected {tuple(shape)} "
                             f"{self.dtype.name}")
        return values


def _plane_shape(where: tuple[Any, ...], shape: Shape4) -> tuple[int, ...]:
    """The shape of the part of a chunk of ``shape`` that ``where`` selects."""
    return tuple(n for w, n in zip(where, shape) if isinstance(w, slice))
