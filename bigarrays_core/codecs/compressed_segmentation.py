"""``compressed_segmentation``: uint32/uint64 labels, any channel count, block size from the info.

Encoding uses this project's encoder (:mod:`bigarrays_core.kernels.cseg_encode`, numba,
GIL released, so chunks encode on several threads at once; it writes the same bytes as the
``compressed-segmentation`` package, which held the GIL) per channel; this module writes and
reads the multi-channel wrapper around the channel streams (docs/format.md, "Encodings":
``num_channels`` uint32 word offsets, then the streams).

Decoding uses this project's kernel (:mod:`bigarrays_core.kernels.cseg`, numba,
imported on the first decode): it validates every block header against its stream,
decodes only the blocks a region touches straight into the caller's array and releases
the GIL. Truncated or corrupt chunks raise ``ValueError`` instead of returning garbage or
reading past the buffer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Region4, Shape4
from bigarrays_core.errors import InfoError

__all__ = ["CompressedSegmentationCodec"]

_ONE_CHANNEL = (1).to_bytes(4, "little")


_kernel_module: ModuleType | None = None
_encoder_module: ModuleType | None = None


def _encoder() -> ModuleType:
    """The encoding kernel module (imports numba, so only when first needed)."""
    global _encoder_module
    if _encoder_module is None:
        from bigarrays_core.kernels import cseg_encode

        _encoder_module = cseg_encode
    return _encoder_module


def _kernel() -> ModuleType:
    """The decoding kernel module (imports numba, so only when first needed)."""
    global _kernel_module
    if _kernel_module is None:
        from bigarrays_core.kernels import cseg

        _kernel_module = cseg
    return _kernel_module


class CompressedSegmentationCodec(ChunkCodec):
    name = "compressed_segmentation"
    content_type = "image/x.compressed_segmentation"
    dtypes = ("uint32", "uint64")
    settings = ("compressed_segmentation_block_size",)

    def __init__(self, dtype: np.dtype, num_channels: int, block_size: Sequence[int] = (8, 8, 8)) -> None:
        super().__init__(dtype, num_channels)
        bx, by, bz = (int(b) for b in block_size)
        self.block_size = (bx, by, bz)

    @classmethod
    def from_scale(cls, dtype: np.dtype, num_channels: int,
                   scale: Mapping[str, Any]) -> CompressedSegmentationCodec:
        """``compressed_segmentation_block_size`` is required (Neuroglancer's rule)."""
        member = "compressed_segmentation_block_size"
        block = scale.get(member)
        if block is None:
            raise InfoError(f"{member}: missing (required for compressed_segmentation)", field=member)
        if (not isinstance(block, (list, tuple)) or len(block) != 3
                or not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b >= 1 for b in block)):
            raise InfoError(f"{member}: expected a list of 3 integers >= 1, got {block!r}", field=member)
        return cls(dtype, num_channels, block)

    # -- encode --------------------------------------------------------------------------
    def encode(self, chunk: np.ndarray) -> bytes:
        native = self.dtype.newbyteorder("=")
        streams: list[bytes] = []
        for c in range(chunk.shape[3]):
            # A contiguous copy first: the encoder walks 8^3 blocks, and in a chunk that is a view
            # of a larger array every row of a block is a cache miss once the array has left the
            # cache (a 64^3 uint64 chunk of a 256x256x64 pyramid level, cold: 1.5 ms encoded in
            # place, 0.22 ms copied and 0.72 encoded).
            channel = np.asfortranarray(chunk[:, :, :, c], dtype=native)
            streams.append(_encoder().encode_channel(channel, self.block_size).tobytes())
        if len(streams) == 1:
            return _ONE_CHANNEL + streams[0]
        offsets = []
        position = len(streams)
        for s in streams:
            offsets.append(position)
            position += len(s) // 4
        return np.asarray(offsets, dtype="<u4").tobytes() + b"".join(streams)

    # -- decode --------------------------------------------------------------------------
    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        out = np.empty(shape, dtype=self.dtype.newbyteorder("="), order="F")
        _kernel().decode_region(data, shape, self.block_size, (0, shape[0], 0, shape[1], 0, shape[2], 0), out)
        return out

    def decode_into(self, data: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray) -> None:
        """Decode only the blocks ``region`` touches, straight into ``out`` (GIL released)."""
        (x0, x1, _), (y0, y1, _), (z0, z1, _), (c0, c1, _) = (r.indices(n) for r, n in zip(region, shape, strict=True))
        extent = (x1 - x0, y1 - y0, z1 - z0, c1 - c0)
        if out.shape != extent:
            raise ValueError(f"output of shape {out.shape} for a region of shape {extent}")
        if out.dtype != self.dtype.newbyteorder("=") or not out.flags.writeable:
            out[...] = self.decode(data, shape)[region]
            return
        _kernel().decode_region(data, shape, self.block_size, (x0, x1, y0, y1, z0, z1, c0), out)
