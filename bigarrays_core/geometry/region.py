"""A region: a box of voxels and a range of channels. Pure: no I/O.

:class:`Region` is what a cutout, a chunk listing or a piece of a streamed body names: a
half-open :class:`~bigarrays_core.geometry.Box` in absolute voxel coordinates and a
half-open channel range ``[c0, c1)``. It parses and formats the two text forms a URL or a
command line uses: ``x0:x1,y0:y1,z0:z1[,c0:c1]`` and the precomputed chunk-name form
``x0-x1_y0-y1_z0-z1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bigarrays_core.errors import SelectionError
from bigarrays_core.geometry.bbox import Box, check_digits

__all__ = ["Region"]

_CHANNELS = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
#: How much of a text a message quotes.
_QUOTE = 80


def _quote(text: str) -> str:
    return repr(text) if len(text) <= _QUOTE else f"{text[:_QUOTE]!r}... ({len(text)} characters)"


@dataclass(frozen=True)
class Region:
    """A box of voxels and the channel range ``[c0, c1)`` with it."""

    box: Box
    channels: tuple[int, int]

    @property
    def shape4(self) -> tuple[int, int, int, int]:
        """``(x, y, z, c)`` voxels (0 on an empty axis)."""
        x, y, z = self.box.shape
        return (x, y, z, max(0, self.channels[1] - self.channels[0]))

    def nbytes_at(self, itemsize: int) -> int:
        """Bytes of the region's voxels at ``itemsize`` bytes per value."""
        x, y, z, c = self.shape4
        return x * y * z * c * itemsize

    @property
    def is_empty(self) -> bool:
        return self.box.is_empty or self.channels[1] <= self.channels[0]

    def to_text(self) -> str:
        """``x0:x1,y0:y1,z0:z1,c0:c1``."""
        return f"{self.box.to_colon()},{self.channels[0]}:{self.channels[1]}"

    @classmethod
    def parse(cls, text: str, num_channels: int, *, what: str = "bbox") -> Region:
        """Parse ``x0:x1,y0:y1,z0:z1[,c0:c1]`` or ``x0-x1_y0-y1_z0-z1`` (all channels).

        Raises :class:`SelectionError` quoting the text (as ``what``) when it is malformed,
        holds a number outside the 64-bit range, is empty on an axis, or names channels
        that are not a non-empty part of ``0:num_channels``.
        """
        check_digits(text, what)
        spatial, channels = text, (0, num_channels)
        parts = text.split(",")
        if len(parts) == 4:
            spatial = ",".join(parts[:3])
            m = _CHANNELS.match(parts[3])
            if not m:
                raise SelectionError(f"bad {what} {_quote(text)}: the channel range {parts[3]!r} is not c0:c1")
            channels = (int(m.group(1)), int(m.group(2)))
        try:
            box = Box.parse(spatial)
        except SelectionError as exc:
            raise SelectionError(f"bad {what} {_quote(text)}: {exc}; optionally ',c0:c1' for channels") from None
        for axis, a, b in zip("xyz", box.start, box.stop):
            if b <= a:
                raise SelectionError(f"bad {what} {_quote(text)}: axis {axis} range {a}:{b} is empty "
                                     "(need start < stop)")
        c0, c1 = channels
        if not 0 <= c0 < c1 <= num_channels:
            raise SelectionError(f"bad {what} {_quote(text)}: channels {c0}:{c1} are not a non-empty part "
                                 f"of 0:{num_channels}")
        return cls(box, channels)

    def __str__(self) -> str:
        return f"[{self.to_text()}]"
