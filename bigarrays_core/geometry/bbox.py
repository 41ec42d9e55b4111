"""Half-open integer boxes in voxel coordinates (x, y, z).

Coordinates are absolute and may be negative; ``start`` is inclusive, ``stop`` exclusive.
A box whose ``stop`` is not greater than its ``start`` on some axis is empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bigarrays_core.errors import SelectionError

__all__ = ["Box", "Vec3", "check_digits"]

Vec3 = tuple[int, int, int]

#: More digits than any 64-bit integer has (2**63 has 19): such a number names no voxel, and
#: Python refuses to convert one of more than 4,300 digits.
_TOO_LONG = re.compile(r"\d{20,}")


def check_digits(text: str, what: str) -> None:
    """Raise :class:`SelectionError` naming ``what`` when ``text`` holds a number outside the
    64-bit range of voxel coordinates (before anything converts it)."""
    m = _TOO_LONG.search(text)
    if m is not None:
        shown = repr(text) if len(text) <= 80 else f"{text[:80]!r}... ({len(text)} characters)"
        raise SelectionError(f"bad {what} {shown}: a number of {len(m.group())} digits is outside the 64-bit "
                             "range of voxel coordinates")


_COLON = re.compile(r"^\s*(-?\d+)\s*:\s*(-?\d+)\s*$")
_DASH = re.compile(r"^(-?\d+)-(-?\d+)$")


def _vec3(values: Iterable[int], what: str) -> Vec3:
    items = tuple(values)
    if len(items) != 3:
        raise SelectionError(f"{what} must have 3 entries (x, y, z), got {list(items)!r}")
    out = []
    for v in items:
        if isinstance(v, bool) or int(v) != v:
            raise SelectionError(f"{what} must be integers, got {list(items)!r}")
        out.append(int(v))
    return (out[0], out[1], out[2])


@dataclass(frozen=True)
class Box:
    """A half-open box ``[start, stop)`` of voxels, in (x, y, z) order."""

    start: Vec3
    stop: Vec3

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _vec3(self.start, "box start"))
        object.__setattr__(self, "stop", _vec3(self.stop, "box stop"))

    @classmethod
    def _trusted(cls, start: Vec3, stop: Vec3) -> Box:
        """A box from tuples of Python ints, without validation (hot paths only)."""
        box = object.__new__(cls)
        object.__setattr__(box, "start", start)
        object.__setattr__(box, "stop", stop)
        return box

    @classmethod
    def from_shape(cls, start: Sequence[int], shape: Sequence[int]) -> Box:
        """The box of ``shape`` voxels whose first voxel is ``start``."""
        return cls(tuple(start), tuple(int(a) + int(s) for a, s in zip(start, shape)))  # type: ignore[arg-type]

    @classmethod
    def parse(cls, text: str) -> Box:
        """Parse ``x0:x1,y0:y1,z0:z1`` or the chunk-name form ``x0-x1_y0-y1_z0-z1``.

        Raises :class:`SelectionError` naming the text when it is neither.
        """
        text = text.strip()
        check_digits(text, "bbox")
        parts = text.split(",")
        if len(parts) == 3:
            matches = [_COLON.match(p) for p in parts]
        else:
            parts = text.split("_")
            matches = [_DASH.match(p) for p in parts] if len(parts) == 3 else []
        if len(matches) != 3 or not all(matches):
            raise SelectionError(
                f"bad bbox {text!r}: expected 'x0:x1,y0:y1,z0:z1' or 'x0-x1_y0-y1_z0-z1'"
            )
        start = tuple(int(m.group(1)) for m in matches if m)
        stop = tuple(int(m.group(2)) for m in matches if m)
        return cls(start, stop)  # type: ignore[arg-type]

    @property
    def shape(self) -> Vec3:
        """Voxels per axis (0 for an empty axis, never negative)."""
        return (
            max(0, self.stop[0] - self.start[0]),
            max(0, self.stop[1] - self.start[1]),
            max(0, self.stop[2] - self.start[2]),
        )

    @property
    def size(self) -> int:
        """Number of voxels."""
        x, y, z = self.shape
        return x * y * z

    @property
    def is_empty(self) -> bool:
        return any(b <= a for a, b in zip(self.start, self.stop))

    def intersect(self, other: Box) -> Box:
        """The overlap of two boxes (possibly empty)."""
        (a0, a1, a2), (b0, b1, b2) = self.start, self.stop
        (c0, c1, c2), (d0, d1, d2) = other.start, other.stop
        return Box._trusted((max(a0, c0), max(a1, c1), max(a2, c2)), (min(b0, d0), min(b1, d1), min(b2, d2)))

    def contains(self, other: Box) -> bool:
        """True when ``other`` lies wholly inside this box (an empty box is inside anything)."""
        if other.is_empty:
            return True
        return all(a <= c and d <= b for a, b, c, d in zip(self.start, self.stop, other.start, other.stop))

    def translate(self, delta: Sequence[int]) -> Box:
        return Box(
            tuple(a + d for a, d in zip(self.start, delta)),  # type: ignore[arg-type]
            tuple(b + d for b, d in zip(self.stop, delta)),  # type: ignore[arg-type]
        )

    def slices_in(self, outer: Box) -> tuple[slice, slice, slice]:
        """Slices selecting this box inside an array that holds ``outer``."""
        return tuple(  # type: ignore[return-value]
            slice(a - o, b - o) for a, b, o in zip(self.start, self.stop, outer.start)
        )

    def to_colon(self) -> str:
        """``x0:x1,y0:y1,z0:z1``: the form used in REST URLs."""
        return ",".join(f"{a}:{b}" for a, b in zip(self.start, self.stop))

    def to_chunk_name(self) -> str:
        """``x0-x1_y0-y1_z0-z1``: the precomputed chunk-name form."""
        return "_".join(f"{a}-{b}" for a, b in zip(self.start, self.stop))

    def __str__(self) -> str:
        return f"[{self.to_colon()}]"
