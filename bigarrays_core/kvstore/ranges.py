"""Planning byte-range reads: the ranges of one value merged into runs, one request per run.

Readers of sharded volumes ask for many small ranges of few large values (shard indexes,
minishard indexes, chunks). :func:`plan_runs` merges the ranges of each key whose gaps are at
most ``gap`` bytes (4 KiB by default: a request costs far more than reading a few KiB more)
into :class:`Run` s; a store requests each run once, all runs concurrently, and
:func:`cut` hands every range its part of its run's bytes. Pure: no I/O.

This module imports nothing from bigarrays but the store interface's types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from bigarrays_core.kvstore.base import ByteRange

__all__ = ["COALESCE_GAP", "Run", "cut", "plan_runs"]

#: Ranges of one value closer than this many bytes are read in one request.
COALESCE_GAP = 4096


class Run(NamedTuple):
    """Bytes ``[start, stop)`` of ``key`` (``stop=None``: to the end), read in one request,
    covering the caller's ranges at indexes ``members``."""

    key: str
    start: int
    stop: int | None
    members: tuple[int, ...]

    @property
    def request_stop(self) -> int | None:
        """The stop to request: never an empty range (a run of empty ranges asks for one byte,
        which still tells a missing value from a short one)."""
        return None if self.stop is None else max(self.stop, self.start + 1)


def plan_runs(ranges: Sequence[ByteRange], gap: int = COALESCE_GAP) -> list[Run]:
    """The runs that cover ``ranges``: per key, ranges sorted by start and merged while the next
    starts at most ``gap`` bytes after the run's end. Ranges are assumed valid
    (:func:`~bigarrays_core.kvstore.base.check_range`)."""
    by_key: dict[str, list[int]] = {}
    for i, r in enumerate(ranges):
        by_key.setdefault(r.key, []).append(i)
    runs: list[Run] = []
    for key, indexes in by_key.items():
        indexes.sort(key=lambda i: ranges[i].start)
        start, stop, members = ranges[indexes[0]].start, ranges[indexes[0]].stop, [indexes[0]]
        for i in indexes[1:]:
            r = ranges[i]
            if stop is None or r.start <= stop + gap:
                stop = None if stop is None or r.stop is None else max(stop, r.stop)
                members.append(i)
            else:
                runs.append(Run(key, start, stop, tuple(members)))
                start, stop, members = r.start, r.stop, [i]
        runs.append(Run(key, start, stop, tuple(members)))
    return runs


def cut(run: Run, data: bytes | memoryview, ranges: Sequence[ByteRange]) -> list[memoryview]:
    """Each member range's part of ``data`` (the bytes read for ``run``, possibly fewer than
    asked where the value ends), in the order of ``run.members``."""
    view = memoryview(data)
    out = []
    for i in run.members:
        r = ranges[i]
        a = r.start - run.start
        out.append(view[a:] if r.stop is None else view[a:r.stop - run.start])
    return out
