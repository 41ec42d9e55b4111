"""The ``{bbox}`` of a request URL: the core's :class:`~bigarrays_core.Region`, checked
against a dataset, with the request's errors as HTTP answers.

Owns: :class:`RequestBox` (a region with the voxel dtype of the dataset it was parsed for),
:func:`parse_bbox` and :func:`check_numbers`. Parsing is :meth:`bigarrays_core.Region.parse`
(both spellings, ``x0:x1,y0:y1,z0:z1[,c0:c1]`` and ``x0-x1_y0-y1_z0-z1``; coordinates are
absolute voxels of the mip and may be negative); this module turns its errors into 400s whose
detail names the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from bigarrays_server.errors import ApiError

import bigarrays_core as bc
from bigarrays_core.geometry.bbox import check_digits

__all__ = ["RequestBox", "check_numbers", "parse_bbox"]


def check_numbers(text: str, param: str, error: type[bc.BigArraysError] = bc.SelectionError) -> None:
    """400 (as ``error``) naming ``param`` when ``text`` holds a number outside the 64-bit range."""
    try:
        check_digits(text, param)
    except bc.SelectionError as exc:
        raise ApiError.of(error, str(exc), {param: text[:80]}) from None


@dataclass(frozen=True)
class RequestBox(bc.Region):
    """A region of a request and the voxel dtype of its dataset (what its body's size needs)."""

    dtype: np.dtype[Any] = np.dtype("uint8")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(x, y, z, c)`` voxels of the body."""
        return self.shape4

    @property
    def nbytes(self) -> int:
        """Bytes of the body's voxels."""
        return self.nbytes_at(self.dtype.itemsize)


def parse_bbox(text: str, ba: bc.BigArray) -> RequestBox:
    """Parse ``text`` for ``ba``; 400 when malformed, empty on an axis, or the channels are outside."""
    check_numbers(text, "bbox")
    try:
        region = bc.Region.parse(text, ba.num_channels)
    except bc.SelectionError as exc:
        raise ApiError.of(bc.SelectionError, str(exc), {"bbox": text}) from None
    return RequestBox(region.box, region.channels, ba.dtype)
