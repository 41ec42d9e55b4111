"""2-D images of a box one voxel thick: which plane, its pixels, PNG or JPEG bytes.

Owns: :func:`image_plane` (which axis is the thin one and how the others map to columns and
rows), :func:`to_pixels` (voxels -> pixels: grey, RGB, or a colour per segment id) and
:func:`encode_image`. Pure: no I/O.

Orientation follows the images of BossDB and DVID: a box thin in z is an x-y image (columns
x, rows y), thin in y an x-z image (columns x, rows z), thin in x a y-z image (columns y,
rows z); row 0 is the smallest coordinate. One channel is grey, three are RGB. uint8
images are 8-bit (PNG or JPEG), uint16 images 16-bit PNG (JPEG holds 8-bit samples only).
A segmentation (layer type ``segmentation``) gets a colour per id, the same on every server
and every request (:func:`segment_colors`), id 0 black.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from bigarrays_server.errors import ApiError

import bigarrays_core as bc

__all__ = ["IMAGE_MEDIA_TYPES", "ImagePlane", "encode_image", "image_plane", "segment_colors", "to_pixels"]

IMAGE_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
_AXES = "xyz"


@dataclass(frozen=True)
class ImagePlane:
    """The thin axis of a box, and the axes of the image's columns and rows."""

    thin: int
    columns: int
    rows: int

    @property
    def names(self) -> str:
        """``"x,y"``: the axes of the columns and the rows."""
        return f"{_AXES[self.columns]},{_AXES[self.rows]}"


def image_plane(box: bc.Box) -> ImagePlane:
    """The plane of a box one voxel thick on one axis (z, then y, then x when several are);
    400 otherwise."""
    shape = box.shape
    for thin, (columns, rows) in ((2, (0, 1)), (1, (0, 2)), (0, (1, 2))):
        if shape[thin] == 1:
            return ImagePlane(thin, columns, rows)
    raise ApiError.of(bc.SelectionError,
                      f"an image needs a box one voxel thick on one axis, e.g. z0:z0+1; bbox {box.to_colon()} has "
                      f"shape {list(shape)}", {"bbox": box.to_colon(), "shape": list(shape)})


def segment_colors(ids: np.ndarray) -> np.ndarray:
    """An RGB uint8 colour per id (shape ``ids.shape + (3,)``): the bytes of a 64-bit mix
    (splitmix64) of the id, lifted to 64..255 so no segment is near black; id 0 is black."""
    z = ids.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    out = np.empty(ids.shape + (3,), dtype=np.uint8)
    for i, shift in enumerate((0, 8, 16)):
        byte = ((z >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.uint16)
        out[..., i] = (64 + byte * 191 // 255).astype(np.uint8)
    out[ids == 0] = 0
    return out


def to_pixels(voxels: np.ndarray, plane: ImagePlane, layer_type: str, fmt: str) -> np.ndarray:
    """The image (rows, columns[, 3]) of a ``(x, y, z, c)`` read one voxel thick on
    ``plane.thin``; 406 for a dtype or channel count the format cannot show."""
    two = np.squeeze(voxels, axis=plane.thin)  # (a, b, c) with a, b the other axes in x, y, z order
    pixels = np.ascontiguousarray(np.moveaxis(two, (0, 1), (1, 0)))  # rows first
    channels = pixels.shape[2]
    dtype = voxels.dtype
    if layer_type == "segmentation":
        if channels != 1:
            raise ApiError(406, "unsupported_format", f"a segmentation image shows one channel, not {channels}; "
                           "ask for one with ',c0:c0+1' in the bbox", {"channels": channels})
        if dtype.kind not in "ui":
            raise ApiError(406, "unsupported_format", f"no segment colours for {dtype.name} ids",
                           {"dtype": dtype.name})
        return segment_colors(pixels[..., 0])
    if channels not in (1, 3):
        raise ApiError(406, "unsupported_format", f"an image shows 1 (grey) or 3 (RGB) channels, not {channels}; "
                       "choose them with ',c0:c1' in the bbox", {"channels": channels})
    if dtype not in (np.dtype("uint8"), np.dtype("uint16")):
        raise ApiError(406, "unsupported_format", f"images are of uint8 or uint16 voxels, not {dtype.name}; "
                       "read the voxels with /cutout instead", {"dtype": dtype.name})
    if fmt == "jpeg" and dtype != np.dtype("uint8"):
        raise ApiError(406, "unsupported_format", f"JPEG holds 8-bit samples; {dtype.name} voxels are sent as "
                       "16-bit PNG (format=png)", {"dtype": dtype.name, "formats": ["png"]})
    return pixels[..., 0] if channels == 1 else pixels


def encode_image(pixels: np.ndarray, fmt: str, quality: int) -> bytes:
    """PNG (fast compression; 8- or 16-bit) or JPEG (``quality`` 1..100) bytes of ``pixels``."""
    import imagecodecs

    pixels = pixels.astype(pixels.dtype.newbyteorder("="), copy=False)
    out: Any
    if fmt == "png":
        out = imagecodecs.png_encode(pixels, level=1)
    else:
        out = imagecodecs.jpeg8_encode(pixels, level=quality)
    return bytes(out)
