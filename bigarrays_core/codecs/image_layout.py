"""The 2-D image layout jpeg and png chunks share (docs/format.md, "Encodings").

A chunk ``(X, Y, Z, C)`` is an image ``X`` pixels wide and ``Y*Z`` rows high, row
``y + Y*z``, with the ``C`` channels interleaved per pixel (as TensorStore and
Neuroglancer write it). Decoders accept any width and height whose product is
``X*Y*Z`` (Neuroglancer does), since pixels are read in row-major order either way.
"""

from __future__ import annotations

import numpy as np

from bigarrays_core.codecs.base import Shape4

__all__ = ["chunk_to_image", "image_to_chunk"]


def chunk_to_image(chunk: np.ndarray) -> np.ndarray:
    """``(X, Y, Z, C)`` -> C-contiguous ``(Y*Z, X)`` (C == 1) or ``(Y*Z, X, C)``."""
    x, y, z, c = chunk.shape
    img = np.ascontiguousarray(chunk.transpose(2, 1, 0, 3)).reshape(z * y, x, c)
    return img[:, :, 0] if c == 1 else img


def image_to_chunk(img: np.ndarray, shape: Shape4) -> np.ndarray:
    """A decoded image (any 2-D layout of the right area) -> ``(X, Y, Z, C)``.

    Raises ``ValueError`` when the area or channel count does not match ``shape``.
    """
    x, y, z, c = shape
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels != c:
        raise ValueError(f"image has {channels} channels, expected {c}")
    if img.shape[0] * img.shape[1] != x * y * z:
        raise ValueError(
            f"image is {img.shape[1]}x{img.shape[0]} pixels, expected an area of {x}x{y * z} "
            f"for a {x}x{y}x{z} chunk"
        )
    return img.reshape(z, y, x, c).transpose(2, 1, 0, 3)
