"""Checking a stored scale: every chunk decodes, and no temporary files are left behind.

:func:`verify` reads every stored chunk of a region and decodes it (in parallel, as reads
do), collecting each chunk that fails with its key and the error instead of stopping at the
first. On local disk it also lists the temporary files killed writers left (in the scale's
directory and beside the info) and, with ``fix``, removes those older than
:attr:`LocalStore.STALE_TEMPORARY_AGE`. It never deletes or rewrites a chunk: a bad chunk
is for the user to restore or rewrite. Object stores (GCS, S3, HTTP) have no temporaries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bigarrays_core.array import BigArray, ChunkRef
from bigarrays_core.array.executor import run_batches
from bigarrays_core.errors import ChunkDecodeError, StorageError
from bigarrays_core.geometry import Box
from bigarrays_core.kvstore import LocalStore, Value

__all__ = ["BadChunk", "Leftover", "VerifyReport", "verify"]

#: Chunks fetched per store call.
_BATCH = 32


@dataclass(frozen=True)
class BadChunk:
    """A stored chunk that cannot be read or decoded."""

    key: str
    error: str


@dataclass(frozen=True)
class Leftover:
    """A temporary file an interrupted write left: ``path`` relative to the dataset, ``age`` in seconds."""

    path: str
    age: float
    stale: bool


@dataclass
class VerifyReport:
    """What :func:`verify` found in ``region`` of scale ``mip``."""

    region: Box
    mip: int
    chunks: int = 0
    stored: int = 0
    bad: list[BadChunk] = field(default_factory=list)
    leftovers: list[Leftover] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No bad chunk, and no stale temporary left (removed ones do not count)."""
        return not self.bad and not any(t.stale and t.path not in self.removed for t in self.leftovers)


def verify(ba: BigArray, region: Box | None = None, *, fix: bool = False, stale_after: float | None = None,
           progress: Callable[[int], object] = lambda n: None) -> VerifyReport:
    """Decode every stored chunk of ``region`` (default: the scale's bounds) of ``ba``'s scale.

    Temporaries not written for ``stale_after`` seconds (default
    :attr:`LocalStore.STALE_TEMPORARY_AGE`) count as stale; ``fix`` removes those (a
    read-only store raises :class:`ReadOnlyError`). ``progress(n)`` is called as chunks are
    checked. Store failures other than for one chunk (the dataset cannot be listed, say)
    are raised.
    """
    box = ba.bounds if region is None else region
    report = VerifyReport(box, ba.mip)
    refs = ba.chunks(box)
    report.chunks = len(refs)
    lock = threading.Lock()

    chunks = ba.scale_io.store  # chunk keys, sharded scales included

    def check(ref: ChunkRef, value: Value) -> BadChunk | None:
        try:
            ba.decode_chunk(ref, value.data, value.encoding)
        except (ChunkDecodeError, StorageError) as exc:
            return BadChunk(ref.key, str(exc))
        return None

    def fetch(part: Sequence[ChunkRef]) -> tuple[list[Value | None], list[BadChunk]]:
        """The stored values of ``part`` (with the encodings the store recorded); a chunk the
        store cannot read is a bad chunk (None here)."""
        def copied(v: Value | None) -> Value | None:  # values may be views of a reused buffer
            return None if v is None else Value(bytes(v.data), v.encoding)

        try:
            return [copied(v) for v in chunks.iter_values([r.key for r in part])], []
        except StorageError:  # one at a time, to name the chunk that fails
            values: list[Value | None] = []
            failed = []
            for r in part:
                try:
                    values.append(copied(next(chunks.iter_values([r.key]))))
                except StorageError as exc:
                    failed.append(BadChunk(r.key, str(exc)))
                    values.append(None)
            return values, failed

    def work(batch: Sequence[ChunkRef]) -> None:
        for i in range(0, len(batch), _BATCH):
            part = batch[i:i + _BATCH]
            values, bad = fetch(part)
            found = [(r, v) for r, v in zip(part, values) if v is not None and v.data]
            bad += [b for b in (check(r, v) for r, v in found) if b is not None]
            with lock:
                report.stored += len(found)
                report.bad.extend(bad)
            progress(len(part))

    run_batches(work, refs, per_thread=4)
    report.bad.sort(key=lambda b: b.key)
    store = ba.store
    if isinstance(store, LocalStore):
        limit = store.STALE_TEMPORARY_AGE if stale_after is None else stale_after
        found = [*store.temporaries("", recursive=False), *store.temporaries(ba.key)]
        report.leftovers = [Leftover(path, age, age >= limit) for path, age in found]
        if fix and any(t.stale for t in report.leftovers):
            report.removed = [*store.remove_stale_temporaries("", older_than=limit, recursive=False),
                              *store.remove_stale_temporaries(ba.key, older_than=limit)]
    return report
