"""numpy-style selections -> boxes, in absolute voxel coordinates. Pure: no I/O.

Axes are (x, y, z, c). A slice's bounds are absolute coordinates (a negative number is a
coordinate, never "from the end"); an open bound means the scale's bound; an integer
selects one plane and drops that axis; ``...`` stands for the axes not given. Steps other
than 1, arrays, lists and booleans are refused with :class:`SelectionError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bigarrays_core.errors import SelectionError
from bigarrays_core.geometry import Box, Region

__all__ = ["Selection", "parse_selection"]

_AXES = "xyzc"


@dataclass(frozen=True)
class Selection(Region):
    """What an index selects: a region (box and channel range) and the axes integers dropped."""

    dropped: tuple[int, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape a read returns (dropped axes removed)."""
        return tuple(n for i, n in enumerate(self.shape4) if i not in self.dropped)

    def drop_axes(self, out: np.ndarray) -> np.ndarray:
        """``out`` (shaped :attr:`shape4`, before dropping axes) with the integer-indexed axes
        removed (a view)."""
        if not self.dropped:
            return out
        return out[tuple(0 if i in self.dropped else slice(None) for i in range(4))]


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def parse_selection(key: Any, bounds: Box, num_channels: int) -> Selection:
    """Turn ``key`` (as given to ``__getitem__``) into a :class:`Selection`."""
    items = key if isinstance(key, tuple) else (key,)
    n_ellipsis = sum(1 for it in items if it is Ellipsis)
    if n_ellipsis > 1:
        raise SelectionError("an index can only have a single ellipsis ('...')")
    if n_ellipsis:
        at = next(i for i, it in enumerate(items) if it is Ellipsis)
        fill = 4 - (len(items) - 1)
        if fill < 0:
            raise SelectionError(f"too many indices: {len(items) - 1} given for 4 axes (x, y, z, c)")
        items = items[:at] + (slice(None),) * fill + items[at + 1:]
    if len(items) > 4:
        raise SelectionError(f"too many indices: {len(items)} given for 4 axes (x, y, z, c)")
    items = items + (slice(None),) * (4 - len(items))
    lo = list(bounds.start) + [0]
    hi = list(bounds.stop) + [num_channels]
    starts: list[int] = []
    stops: list[int] = []
    dropped: list[int] = []
    for axis, it in enumerate(items):
        name = _AXES[axis]
        if isinstance(it, slice):
            if it.step is not None and it.step != 1:
                raise SelectionError(f"axis {name}: step {it.step!r} is not supported (only step 1)")
            for v in (it.start, it.stop):
                if v is not None and not _is_int(v):
                    raise SelectionError(f"axis {name}: slice bounds must be integers, got {v!r}")
            a = lo[axis] if it.start is None else int(it.start)
            b = hi[axis] if it.stop is None else int(it.stop)
            starts.append(a)
            stops.append(max(a, b))
        elif _is_int(it):
            starts.append(int(it))
            stops.append(int(it) + 1)
            dropped.append(axis)
        else:
            raise SelectionError(
                f"axis {name}: index {it!r} is not supported; use integers, slices with step 1, or '...'"
            )
    c0, c1 = starts[3], stops[3]
    if c1 > c0 and (c0 < 0 or c1 > num_channels):
        raise SelectionError(f"channels {c0}:{c1} are outside 0:{num_channels}")
    return Selection(Box(tuple(starts[:3]), tuple(stops[:3])), (c0, c1), tuple(dropped))  # type: ignore[arg-type]
