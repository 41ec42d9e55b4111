"""``jxl``: JPEG XL images, ``uint8``, lossy or lossless; libjxl through imagecodecs.

What it stores: ``uint8`` with 1, 3 or 4 channels (Neuroglancer's rule; CloudVolume writes
1 or 3). A chunk ``(X, Y, Z, C)`` is one image X pixels wide and Y*Z rows high, row
``y + Y*z``, as for jpeg and png (:mod:`bigarrays_core.codecs.image_layout`): grayscale
for one channel, RGB or RGBA with the channels interleaved per pixel (Neuroglancer's
layout for 2-D image encodings) otherwise. Neuroglancer and CloudVolume read it;
TensorStore does not.

Settings, as CloudVolume names them in the scale: ``jxl_quality`` 0..100 (default 85;
100 is lossless), ``jxl_effort`` 1..10 (default 5), ``jxl_decodingspeed`` 0..4 (default
0). A one-channel chunk is encoded with the same libjxl call as CloudVolume's, so both
write the same bytes and decode them alike.

CloudVolume writes a three-channel chunk as three grayscale frames (planar) and reads
them back with the channels scrambled; bigarrays reads such a stream as the three
channels CloudVolume was given, and writes the interleaved layout Neuroglancer documents.
libjxl releases the GIL; bigarrays runs it single-threaded per chunk and decodes chunks
in parallel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import imagecodecs
import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Shape4
from bigarrays_core.codecs.image_layout import chunk_to_image, image_to_chunk
from bigarrays_core.codecs.settings import integer_setting

__all__ = ["JxlCodec"]

DEFAULT_QUALITY = 85
DEFAULT_EFFORT = 5
DEFAULT_DECODING_SPEED = 0
#: JPEG XL's largest image side.
_MAX_SIDE = 2**30


class JxlCodec(ChunkCodec):
    name = "jxl"
    content_type = "image/jxl"
    dtypes = ("uint8",)
    channels = (1, 3, 4)
    settings = ("jxl_quality", "jxl_effort", "jxl_decodingspeed")

    def __init__(self, dtype: np.dtype, num_channels: int, quality: int = DEFAULT_QUALITY,
                 effort: int = DEFAULT_EFFORT, decoding_speed: int = DEFAULT_DECODING_SPEED) -> None:
        super().__init__(dtype, num_channels)
        if not 0 <= quality <= 100 or not 1 <= effort <= 10 or not 0 <= decoding_speed <= 4:
            raise ValueError(f"jxl quality must be 0..100, effort 1..10 and decoding speed 0..4, got "
                             f"{quality}, {effort}, {decoding_speed}")
        self.quality, self.effort, self.decoding_speed = quality, effort, decoding_speed

    @classmethod
    def from_scale(cls, dtype: np.dtype, num_channels: int, scale: Mapping[str, Any]) -> JxlCodec:
        return cls(dtype, num_channels,
                   quality=integer_setting(scale, "jxl_quality", DEFAULT_QUALITY, 0, 100),
                   effort=integer_setting(scale, "jxl_effort", DEFAULT_EFFORT, 1, 10),
                   decoding_speed=integer_setting(scale, "jxl_decodingspeed", DEFAULT_DECODING_SPEED, 0, 4))

    def encode(self, chunk: np.ndarray) -> bytes:
        x, y, z, _ = chunk.shape
        if max(x, y * z) > _MAX_SIDE:
            raise ValueError(f"a {x}x{y}x{z} chunk is too large for a JPEG XL image (at most {_MAX_SIDE} per side)")
        img = chunk_to_image(np.asarray(chunk, dtype=np.uint8))
        return bytes(imagecodecs.jpegxl_encode(
            img, photometric="GRAY" if img.ndim == 2 else "RGB", level=self.quality, lossless=self.quality >= 100,
            effort=self.effort, decodingspeed=self.decoding_speed, numthreads=1,
        ))

    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        # imagecodecs reads any buffer; its stub names only bytes, bytearray and mmap.
        img = np.asarray(imagecodecs.jpegxl_decode(data, numthreads=1))  # type: ignore[arg-type]
        if img.dtype != np.uint8:
            raise ValueError(f"JPEG XL image holds {img.dtype.name} samples, expected uint8")
        x, y, z, c = shape
        planar = img.ndim == 3 and c > 1 and img.shape[0] == c and img.shape[2] != c
        if planar and img.shape[1] * img.shape[2] == x * y * z:
            img = np.moveaxis(img, 0, -1)  # CloudVolume's planar layout: one frame per channel
        return image_to_chunk(img, shape)
