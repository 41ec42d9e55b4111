"""``png``: uint8 or uint16, 1-4 channels, lossless; libpng via imagecodecs."""

from __future__ import annotations

import imagecodecs
import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Shape4
from bigarrays_core.codecs.image_layout import chunk_to_image, image_to_chunk

__all__ = ["PngCodec"]


class PngCodec(ChunkCodec):
    name = "png"
    content_type = "image/png"

    def __init__(self, dtype: np.dtype, num_channels: int, level: int | None = None) -> None:
        super().__init__(dtype, num_channels)
        if self.dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)) or not 1 <= num_channels <= 4:
            raise ValueError(f"png stores uint8/uint16 with 1-4 channels, not {self.dtype.name} x {num_channels}")
        self.level = 6 if level is None else int(level)
        if not 0 <= self.level <= 9:
            raise ValueError(f"png level must be 0..9, got {level}")

    def encode(self, chunk: np.ndarray) -> bytes:
        img = chunk_to_image(np.asarray(chunk, dtype=self.dtype.newbyteorder("=")))
        return bytes(imagecodecs.png_encode(img, level=self.level))

    def decode(self, data: bytes, shape: Shape4) -> np.ndarray:
        img = imagecodecs.png_decode(data)
        if img.dtype.itemsize != self.dtype.itemsize:
            raise ValueError(f"png holds {img.dtype.itemsize * 8}-bit samples, expected {self.dtype.name}")
        return image_to_chunk(img, shape)
