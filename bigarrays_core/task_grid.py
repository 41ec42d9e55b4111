"""The tasks of a long job as a grid: groups of a scale's write units, and which of them hold data.

A job (a pyramid build, a transfer) cuts the box it writes into tasks of whole write units
(:mod:`bigarrays_core.array.write_units`): :class:`TaskGrid` is the regular grid of groups of
``group`` units over that box, a lazy sequence (task ``i`` is computed when asked for, so a
petabyte's grid costs nothing to hold), each task known by its index in the grid, x fastest.
The indices are what progress records keep, so they depend only on the geometry.

Sparse volumes: :func:`stored_boxes` lists the chunks a scale stores (one listing of the scale's
directory, however large the volume is declared) and :meth:`TaskGrid.touched` turns boxes into
the indices of the tasks they fall in, so a job over a mostly empty petabyte visits only the
tasks where something is stored. Pure but for :func:`stored_boxes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from bigarrays_core.array import BigArray
from bigarrays_core.errors import InvalidKeyError
from bigarrays_core.geometry import Box, ChunkGrid, Vec3, parse_chunk_name

__all__ = ["LIST_ABOVE_TASKS", "ROWS_MAX_ROW", "ROWS_MIN_UNITS", "TaskGrid", "group_for", "rows_of", "stored_boxes"]

#: Above this many tasks a job lists the chunks its scales store and keeps only the tasks where
#: something is (a petabyte declared, a few terabytes written); below, every task runs (and
#: finds missing chunks by reading them, which costs about what listing them would).
LIST_ABOVE_TASKS = 65536


@dataclass(frozen=True)
class TaskGrid(Sequence[Box]):
    """Groups of ``group`` write units of ``units`` over the units ``box`` touches.

    Task ``i`` is the union of its units, clipped to the scale's bounds (not to ``box``).
    """

    units: ChunkGrid
    box: Box
    group: Vec3

    @property
    def _ranges(self) -> tuple[range, range, range]:
        return self.units.grid_range(self.box)

    @property
    def shape(self) -> Vec3:
        """Tasks per axis."""
        rx, ry, rz = self._ranges
        gx, gy, gz = self.group
        return (-(-len(rx) // gx), -(-len(ry) // gy), -(-len(rz) // gz))

    def __len__(self) -> int:
        x, y, z = self.shape
        return x * y * z

    @overload
    def __getitem__(self, i: int) -> Box: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Box]: ...

    def __getitem__(self, i: int | slice) -> Box | Sequence[Box]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"task {i} of {n}")
        i %= n
        (sx, sy, _), (rx, ry, rz) = self.shape, self._ranges
        tx, ty, tz = i % sx, (i // sx) % sy, i // (sx * sy)
        gx, gy, gz = self.group
        lo = (rx[0] + tx * gx, ry[0] + ty * gy, rz[0] + tz * gz)
        hi = (min(lo[0] + gx, rx[-1] + 1) - 1, min(lo[1] + gy, ry[-1] + 1) - 1, min(lo[2] + gz, rz[-1] + 1) - 1)
        return Box(self.units.chunk_box(lo).start, self.units.chunk_box(hi).stop)

    def touched(self, boxes: Iterable[Box]) -> list[int]:
        """The sorted indices of the tasks that any of ``boxes`` (voxels of this scale) meets."""
        (sx, sy, _), (rx, ry, rz) = self.shape, self._ranges
        gx, gy, gz = self.group
        out: set[int] = set()
        for b in boxes:
            ux, uy, uz = self.units.grid_range(b.intersect(self.box))
            for z in {(u - rz[0]) // gz for u in uz}:
                for y in {(u - ry[0]) // gy for u in uy}:
                    for x in {(u - rx[0]) // gx for u in ux}:
                        out.add(x + sx * (y + sy * z))
        return sorted(out)


def group_for(units: ChunkGrid, box: Box, unit_bytes: int, target_bytes: int) -> Vec3:
    """How many units per axis make a task of about ``target_bytes`` (at least one unit):
    along x first (up to a row), then whole rows (y), then slabs (z)."""
    n = max(1, target_bytes // max(1, unit_bytes))
    rx, ry, rz = units.grid_range(box)
    gx = max(1, min(n, len(rx)))
    gy = max(1, min(n // gx, len(ry))) if gx == len(rx) else 1
    gz = max(1, min(n // (gx * gy), len(rz))) if gy == len(ry) else 1
    return (gx, gy, gz)


#: An ingest's task holds at least this many write units (:func:`rows_of`)...
ROWS_MIN_UNITS = 16
#: ... in rows of at most this many.
ROWS_MAX_ROW = 64


def rows_of(units: ChunkGrid, box: Box, *, min_units: int | None = None, max_row: int | None = None) -> Vec3:
    """Groups of whole rows of units (rows longer than ``max_row`` units, default
    :data:`ROWS_MAX_ROW`, are cut) holding at least ``min_units`` units (default
    :data:`ROWS_MIN_UNITS`), one unit deep in z: an ingest's tasks, so that a source read
    slab by slab (TIFF pages) is decoded about once per slab. Jobs that resume by task index
    name the group they were cut with (:func:`bigarrays_core.ingest.ingest_job`)."""
    min_units = ROWS_MIN_UNITS if min_units is None else min_units
    max_row = ROWS_MAX_ROW if max_row is None else max_row
    rx, ry, _ = units.grid_range(box)
    gx = max(1, min(len(rx), max_row))
    return (gx, max(1, min(len(ry), -(-min_units // gx))), 1)


def stored_boxes(ba: BigArray) -> Iterator[Box]:
    """The boxes of the chunks ``ba``'s scale stores, from one listing of its keys (of a
    sharded scale: of its shards, then their indexes).

    Keys that are not chunk names of the scale's grid (strays, other files) are skipped.
    Raises what the store's listing raises.
    """
    prefix = ba.key + "/"
    for key in ba.scale_io.store.list(prefix):
        name = key[len(prefix):]
        if "/" in name:
            continue
        try:
            box = parse_chunk_name(name)
            ba.grid.grid_of_name(name)
        except InvalidKeyError:
            continue
        yield box

