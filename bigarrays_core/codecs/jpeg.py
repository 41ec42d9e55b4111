"""``jpeg``: uint8, 1 (grayscale) or 3 (RGB) channels, lossy; libjpeg-turbo via imagecodecs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import imagecodecs
import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Shape4
from bigarrays_core.codecs.image_layout import chunk_to_image, image_to_chunk
from bigarrays_core.codecs.settings import integer_setting

__all__ = ["JpegCodec"]

#: TensorStore's default quality (CloudVolume uses 85).
DEFAULT_QUALITY = 75
_EOI = b"\xff\xd9"
_EOI_SLACK = 64


class JpegCodec(ChunkCodec):
    name = "jpeg"
    content_type = "image/jpeg"
    dtypes = ("uint8",)
    channels = (1, 3)
    settings = ("jpeg_quality",)

    def __init__(self, dtype: np.dtype, num_channels: int, quality: int | None = None) -> None:
        super().__init__(dtype, num_channels)
        self.quality = DEFAULT_QUALITY if quality is None else int(quality)
        if not 0 <= self.quality <= 100:
            raise ValueError(f"jpeg quality must be 0..100, got {quality}")

    @classmethod
    def from_scale(cls, dtype: np.dtype, num_channels: int, scale: Mapping[str, Any]) -> JpegCodec:
        return cls(dtype, num_channels, integer_setting(scale, "jpeg_quality", DEFAULT_QUALITY, 0, 100))

    def encode(self, chunk: np.ndarray) -> bytes:
        x, y, z, _ = chunk.shape
        if x > 65500 or y * z > 65500:
            raise ValueError(f"a {x}x{y}x{z} chunk is too large for a JPEG image (max 65500 pixels per side)")
        img = chunk_to_image(np.asarray(chunk, dtype=np.uint8))
        return bytes(imagecodecs.jpeg8_encode(img, level=self.quality))

    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        # libjpeg-turbo decodes a truncated stream with only a warning, filling the rest
        # with grey: insist on the end-of-image marker (allowing a little trailing padding).
        if _EOI not in bytes(data[-_EOI_SLACK:]):
            raise ValueError(f"truncated JPEG: no end-of-image marker in the last {_EOI_SLACK} of {len(data)} bytes")
        # imagecodecs reads any buffer; its stub names only bytes, bytearray and mmap.
        img = imagecodecs.jpeg8_decode(data)  # type: ignore[arg-type]
        return image_to_chunk(np.asarray(img, dtype=np.uint8), shape)
