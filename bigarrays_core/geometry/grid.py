"""The precomputed chunk grid of one scale.

The grid is anchored at ``voxel_offset``: chunk ``g`` covers
``[voxel_offset + g*chunk, voxel_offset + min((g+1)*chunk, size))`` per axis, so only the
upper edge chunks are clipped. Chunk names are ``x0-x1_y0-y1_z0-z1`` in absolute voxels.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from bigarrays_core.errors import InvalidKeyError
from bigarrays_core.geometry.bbox import Box, Vec3

__all__ = ["AxisCell", "ChunkGrid", "axis_cells", "format_chunk_name", "parse_chunk_name"]

_NAME = re.compile(r"^(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)$")


def format_chunk_name(box: Box) -> str:
    """``x0-x1_y0-y1_z0-z1`` for a chunk box."""
    return box.to_chunk_name()


#: One grid cell of one axis: its index, first voxel, stop voxel (clipped at the volume's end)
#: and the ``"c0-c1"`` part of chunk names.
AxisCell = tuple[int, int, int, str]


def axis_cells(a: int, b: int, origin: int, size: int, chunk: int) -> list[AxisCell]:
    """The cells of one axis of a grid (``origin``, ``size``, ``chunk``) that ``[a, b)``
    touches. A box's chunks are the products of its three axes' cells: reads plan, and
    list a box's chunks, from these, with no box made per cell and axis."""
    lo, hi = max(a, origin), min(b, origin + size)
    if hi <= lo:
        return []
    out: list[AxisCell] = []
    stop = origin + size
    for g in range((lo - origin) // chunk, (hi - origin - 1) // chunk + 1):
        c0 = origin + g * chunk
        c1 = min(c0 + chunk, stop)
        out.append((g, c0, c1, f"{c0}-{c1}"))
    return out


def parse_chunk_name(name: str) -> Box:
    """Parse a chunk name (negative coordinates allowed); :class:`InvalidKeyError` otherwise."""
    m = _NAME.match(name)
    if not m:
        raise InvalidKeyError(f"bad chunk name {name!r}: expected 'x0-x1_y0-y1_z0-z1'")
    v = [int(g) for g in m.groups()]
    return Box((v[0], v[2], v[4]), (v[1], v[3], v[5]))


@dataclass(frozen=True)
class ChunkGrid:
    """The chunk grid of a scale: ``voxel_offset``, ``size`` and ``chunk_size`` per axis."""

    voxel_offset: Vec3
    size: Vec3
    chunk_size: Vec3

    @cached_property
    def bounds(self) -> Box:
        """The volume's voxels (made once: every read and plan asks for it)."""
        return Box.from_shape(self.voxel_offset, self.size)

    @property
    def grid_shape(self) -> Vec3:
        """Chunks per axis: ``ceil(size / chunk_size)``."""
        return tuple(-(-s // c) for s, c in zip(self.size, self.chunk_size))  # type: ignore[return-value]

    @property
    def num_chunks(self) -> int:
        gx, gy, gz = self.grid_shape
        return gx * gy * gz

    def chunk_box(self, g: Vec3) -> Box:
        """The (clipped) box of grid cell ``g``."""
        (o0, o1, o2), (c0, c1, c2), (s0, s1, s2) = self.voxel_offset, self.chunk_size, self.size
        a0, a1, a2 = o0 + g[0] * c0, o1 + g[1] * c1, o2 + g[2] * c2
        return Box._trusted((a0, a1, a2), (min(a0 + c0, o0 + s0), min(a1 + c1, o1 + s1), min(a2 + c2, o2 + s2)))

    def grid_range(self, box: Box) -> tuple[range, range, range]:
        """Grid cells per axis that intersect ``box`` (clipped to the volume)."""
        inner = box.intersect(self.bounds)
        if inner.is_empty:
            return (range(0), range(0), range(0))
        return tuple(  # type: ignore[return-value]
            range((a - o) // c, (b - o - 1) // c + 1)
            for a, b, o, c in zip(inner.start, inner.stop, self.voxel_offset, self.chunk_size)
        )

    def chunks_in(self, box: Box) -> Iterator[tuple[Vec3, Box]]:
        """Grid cells and their boxes that intersect ``box``, x fastest."""
        rx, ry, rz = self.grid_range(box)
        for gz, gy, gx in itertools.product(rz, ry, rx):
            g = (gx, gy, gz)
            yield g, self.chunk_box(g)

    def chunk_name(self, g: Vec3) -> str:
        return format_chunk_name(self.chunk_box(g))

    def grid_of_name(self, name: str) -> Vec3:
        """The grid cell a chunk name denotes; :class:`InvalidKeyError` if it is not one of this grid's."""
        box = parse_chunk_name(name)
        g = tuple((a - o) // c for a, o, c in zip(box.start, self.voxel_offset, self.chunk_size))
        if any(i < 0 or i >= n for i, n in zip(g, self.grid_shape)) or self.chunk_box(g) != box:  # type: ignore[arg-type]
            raise InvalidKeyError(
                f"chunk {name!r} is not on the chunk grid (voxel_offset {list(self.voxel_offset)}, "
                f"size {list(self.size)}, chunk_size {list(self.chunk_size)})"
            )
        return g  # type: ignore[return-value]

    def is_aligned(self, box: Box) -> bool:
        """True when ``box`` starts on grid lines and stops on grid lines or at the volume's end."""
        end = self.bounds.stop
        for a, b, o, c, e in zip(box.start, box.stop, self.voxel_offset, self.chunk_size, end):
            if (a - o) % c != 0:
                return False
            if b != e and (b - o) % c != 0:
                return False
        return True

    def expand_to_grid(self, box: Box) -> Box:
        """The smallest chunk-aligned box containing ``box``, clipped to the volume."""
        start = tuple(o + ((a - o) // c) * c for a, o, c in zip(box.start, self.voxel_offset, self.chunk_size))
        stop = tuple(o + (-(-(b - o) // c)) * c for b, o, c in zip(box.stop, self.voxel_offset, self.chunk_size))
        return Box(start, stop).intersect(self.bounds)  # type: ignore[arg-type]

    def shrink_to_grid(self, box: Box) -> Box:
        """The largest chunk-aligned box inside ``box`` (possibly empty)."""
        start = tuple(o + (-(-(a - o) // c)) * c for a, o, c in zip(box.start, self.voxel_offset, self.chunk_size))
        end = self.bounds.stop
        stop = tuple(
            b if b == e else o + ((b - o) // c) * c
            for b, o, c, e in zip(box.stop, self.voxel_offset, self.chunk_size, end)
        )
        return Box(start, stop)  # type: ignore[arg-type]
