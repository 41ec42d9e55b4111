"""The ``{bbox}`` of a request URL: parsing and checking it against a dataset.

Owns: :class:`RequestBox`, :func:`parse_bbox` and :func:`check_numbers`. The two spellings
are ``x0:x1,y0:y1,z0:z1[,c0:c1]`` and the precomputed chunk-name form ``x0-x1_y0-y1_z0-z1``;
coordinates are absolute voxels of the mip and may be negative. Anything else is a 400
whose message quotes the bbox, including a number of more digits than any 64-bit integer
has (which Python would refuse to convert past 4,300 digits, and which could only name a
place outside every volume).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from bigarrays_server.errors import ApiError

import bigarrays_core as bc

__all__ = ["RequestBox", "parse_bbox"]

_CHANNELS = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
#: More digits than any 64-bit integer has (2**63 has 19).
_TOO_LONG = re.compile(r"\d{20,}")
#: How much of a parameter a message quotes.
_QUOTE = 80


def _quote(text: str) -> str:
    return repr(text) if len(text) <= _QUOTE else f"{text[:_QUOTE]!r}... ({len(text)} characters)"


def check_numbers(text: str, param: str, error: type[bc.BigArraysError] = bc.SelectionError) -> None:
    """400 (as ``error``) naming ``param`` when ``text`` holds a number outside the 64-bit range."""
    m = _TOO_LONG.search(text)
    if m is not None:
        raise ApiError.of(error, f"bad {param} {_quote(text)}: a number of {len(m.group())} digits is outside "
                                 f"the 64-bit range of voxel coordinates", {param: text[:_QUOTE]})


@dataclass(frozen=True)
class RequestBox:
    """A spatial box plus a channel range ``[c0, c1)`` and the voxel dtype."""

    box: bc.Box
    channels: tuple[int, int]
    dtype: np.dtype[Any]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        x, y, z = self.box.shape
        return (x, y, z, self.channels[1] - self.channels[0])

    @property
    def nbytes(self) -> int:
        x, y, z, c = self.shape
        return x * y * z * c * self.dtype.itemsize

    def to_text(self) -> str:
        """``x0:x1,y0:y1,z0:z1,c0:c1``: what ``X-Bbox`` reports."""
        return f"{self.box.to_colon()},{self.channels[0]}:{self.channels[1]}"


def parse_bbox(text: str, ba: bc.BigArray) -> RequestBox:
    """Parse ``text`` for ``ba``; 400 when malformed, empty on an axis, or the channels are outside."""
    check_numbers(text, "bbox")
    spatial, channels = text, (0, ba.num_channels)
    parts = text.split(",")
    if len(parts) == 4:
        spatial = ",".join(parts[:3])
        m = _CHANNELS.match(parts[3])
        if not m:
            raise ApiError.of(bc.SelectionError, f"bad bbox {text!r}: the channel range {parts[3]!r} is not c0:c1",
                              {"bbox": text})
        channels = (int(m.group(1)), int(m.group(2)))
    try:
        box = bc.Box.parse(spatial)
    except bc.SelectionError as exc:
        raise ApiError.of(bc.SelectionError, f"{exc} (optionally ',c0:c1' for channels)", {"bbox": text}) from None
    for axis, a, b in zip("xyz", box.start, box.stop, strict=False):
        if b <= a:
            raise ApiError.of(bc.SelectionError,
                              f"bad bbox {text!r}: axis {axis} range {a}:{b} is empty (need start < stop)",
                              {"bbox": text, "axis": axis})
    c0, c1 = channels
    if not 0 <= c0 < c1 <= ba.num_channels:
        raise ApiError.of(bc.SelectionError,
                          f"bad bbox {text!r}: channels {c0}:{c1} are not a non-empty part of 0:{ba.num_channels}",
                          {"bbox": text, "num_channels": ba.num_channels})
    return RequestBox(box, channels, ba.dtype)
