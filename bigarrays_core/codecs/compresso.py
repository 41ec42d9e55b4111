"""``compresso``: segmentation labels, lossless, with the ``compresso`` package (seung-lab).

What it stores (CloudVolume's rules): ``uint8``, ``uint16``, ``uint32`` or ``uint64`` labels,
**one channel** (CloudVolume encodes channel 0 of whatever it is given; bigarrays refuses
more channels instead of dropping them), chunk axes below 65536 (the stream records them
as 16-bit numbers). Neuroglancer and CloudVolume read it; TensorStore does not. CloudVolume
gzips compresso chunks unless told otherwise.

The stream is self-describing (docs/format.md: a 36-byte header with
magic ``cpso``, the label width and the chunk's shape, then ids, values, locations,
windows and, in format version 1, a per-slice index). Encoding calls
``compresso.compress`` exactly as CloudVolume does, so both write the same bytes.

Decoding checks the header against the chunk expected at that key (shape, label width)
and the section sizes against the stream's length before handing the bytes to the
library; a format-version-1 stream lets :meth:`CompressoCodec.decode_into` decode only
the z slices a region touches. The format has no checksum: damage inside the sections can
decode to other labels (or, the library being unchecked C++, worse), which is why
CloudVolume and bigarrays' docs recommend gzip on top, whose CRC-32 catches it first.
The library holds the GIL while it works.
"""

from __future__ import annotations

from typing import Any

import compresso
import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Region4, Shape4
from bigarrays_core.kernels.paste import paste

__all__ = ["CompressoCodec"]

_HEADER = 36
_MAX_AXIS = 2**16 - 1


class CompressoCodec(ChunkCodec):
    name = "compresso"
    content_type = "image/x.compresso"
    dtypes = ("uint8", "uint16", "uint32", "uint64")
    channels = (1,)

    def encode(self, chunk: np.ndarray) -> bytes:
        if max(chunk.shape[:3]) > _MAX_AXIS:
            raise ValueError(f"a {'x'.join(map(str, chunk.shape[:3]))} chunk is too large for compresso "
                             f"(at most {_MAX_AXIS} voxels per axis)")
        labels = chunk[:, :, :, 0]  # as CloudVolume passes it: the library copies what it needs once
        if labels.dtype != self.dtype.newbyteorder("="):
            labels = labels.astype(self.dtype.newbyteorder("="))
        return bytes(compresso.compress(labels))

    def _checked(self, data: bytes | memoryview, shape: Shape4) -> tuple[bytes, dict[str, Any]]:
        """``data`` as bytes, its header checked against the chunk expected at the key and its
        section sizes against its length (``compresso.valid``)."""
        data = bytes(data)  # the library takes bytes only
        if len(data) < _HEADER or data[:4] != b"cpso":
            raise ValueError(f"not a compresso stream ({len(data)} bytes, no 'cpso' header)")
        header = compresso.header(data)  # refuses format versions it cannot read
        got = (header["sx"], header["sy"], header["sz"])
        if got != shape[:3]:
            raise ValueError(f"compresso stream holds {'x'.join(map(str, got))} voxels, "
                             f"expected {'x'.join(map(str, shape[:3]))}")
        if header["data_width"] != self.dtype.itemsize:
            raise ValueError(f"compresso stream holds {header['data_width'] * 8}-bit labels, "
                             f"expected {self.dtype.name}")
        if not compresso.valid(data):
            raise ValueError(f"truncated or damaged compresso stream: its {len(data)} bytes cannot hold the "
                             f"sections its header describes")
        return data, header

    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        data, _ = self._checked(data, shape)
        return self._as_chunk(compresso.decompress(data), shape[:3])

    def decode_into(self, data: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray) -> None:
        """Decode only the z slices ``region`` touches when the stream indexes its slices
        (format version 1, what CloudVolume and bigarrays write)."""
        data, header = self._checked(data, shape)
        z0, z1, _ = region[2].indices(shape[2])
        if header["format_version"] == 1 and (z0, z1) != (0, shape[2]):
            labels = self._as_chunk(compresso.decompress(data, z=(z0, z1)), (shape[0], shape[1], z1 - z0))
            paste(out, labels[region[0], region[1], :, region[3]])
            return
        paste(out, self._as_chunk(compresso.decompress(data), shape[:3])[region])

    def _as_chunk(self, labels: np.ndarray, shape3: tuple[int, int, int]) -> np.ndarray:
        if labels.shape != shape3 or labels.dtype.itemsize != self.dtype.itemsize:
            raise ValueError(f"compresso decoded {labels.shape} {labels.dtype}, expected {shape3} {self.dtype.name}")
        out: np.ndarray = labels.view(self.dtype.newbyteorder("="))[:, :, :, np.newaxis]
        return out

