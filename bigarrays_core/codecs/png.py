"""``png``: uint8 or uint16, 1-4 channels, lossless; libpng via imagecodecs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import imagecodecs
import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Shape4
from bigarrays_core.codecs.image_layout import chunk_to_image, image_to_chunk
from bigarrays_core.codecs.settings import integer_setting

__all__ = ["PngCodec"]

#: zlib's default level.
DEFAULT_LEVEL = 6


class PngCodec(ChunkCodec):
    name = "png"
    content_type = "image/png"
    dtypes = ("uint8", "uint16")
    channels = (1, 2, 3, 4)
    settings = ("png_level",)

    def __init__(self, dtype: np.dtype, num_channels: int, level: int | None = None) -> None:
        super().__init__(dtype, num_channels)
        self.level = DEFAULT_LEVEL if level is None else int(level)
        if not 0 <= self.level <= 9:
            raise ValueError(f"png level must be 0..9, got {level}")

    @classmethod
    def from_scale(cls, dtype: np.dtype, num_channels: int, scale: Mapping[str, Any]) -> PngCodec:
        return cls(dtype, num_channels, integer_setting(scale, "png_level", DEFAULT_LEVEL, 0, 9))

    def encode(self, chunk: np.ndarray) -> bytes:
        img = chunk_to_image(np.asarray(chunk, dtype=self.dtype.newbyteorder("=")))
        return bytes(imagecodecs.png_encode(img, level=self.level))

    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        # imagecodecs reads any buffer; its stub names only bytes, bytearray and mmap.
        img = imagecodecs.png_decode(data)  # type: ignore[arg-type]
        if img.dtype.itemsize != self.dtype.itemsize:
            raise ValueError(f"png holds {img.dtype.itemsize * 8}-bit samples, expected {self.dtype.name}")
        return image_to_chunk(img, shape)
