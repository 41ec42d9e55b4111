"""Running the tasks of a long operation: on this machine's threads, or on a Dask cluster.

A long operation (:func:`~bigarrays_core.pyramid.downsample`,
:func:`~bigarrays_core.transfer.transfer`, :func:`~bigarrays_core.ingest.ingest`) is a
list of :class:`Stage` s run one after another; a stage is a list of independent tasks and
the function that does one. The operation cuts its tasks so that no two of them write the
same stored object (a chunk, or a shard), so tasks run in any order, in parallel, and a
task run twice (a worker died, a job was resumed) writes the same bytes again.

Where tasks run (:func:`run_stages`):

- ``client=None``: on this machine, on :func:`bigarrays_core.num_threads` threads. Each
  task does its chunk work in its own thread (:func:`~bigarrays_core.array.executor.serial`),
  so the threads are not oversubscribed. A stage of one task runs in the calling thread
  with the usual parallel chunk work.
- ``client=`` a ``distributed.Client``, or the address of a Dask scheduler
  (``"tcp://10.0.0.5:8786"``; a client is opened and closed for the call, not made the
  default one): tasks are submitted to the cluster (a window of them at a time, so a huge
  job does not flood the scheduler) and waited for on that client's event loop; each
  stage's shared context travels inside each task when it is small (under
  :data:`INLINE_CONTEXT_BYTES` pickled), else is sent to every worker once. A task is recorded
  as soon as it finishes; the reports of finished tasks are fetched from the workers in
  batches (one call each, not a round trip per task: a fifth of the client's and
  scheduler's CPU in a pyramid build of 16 tasks). In a worker, chunk
  work runs in the task's thread: the worker's thread count is the parallelism. A worker
  that dies takes its running tasks with it; Dask runs them again elsewhere. bigarrays has
  no scheduler of its own.

Progress: ``progress(n)`` is called in the calling thread with the number of chunks of
each finished task (and first with what an earlier run finished). With a
:class:`~bigarrays_core.resume.ProgressRecord` the calling thread records finished tasks
(after each task in a local or memory store, at most about once a second in an object store,
and when the job stops, also by an exception or Ctrl-C): a later run of the same job skips
them. Only the calling process writes the record.
"""

from __future__ import annotations

import itertools
import pickle
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bigarrays_core.array.dask_io import open_client
from bigarrays_core.array.executor import num_threads, serial
from bigarrays_core.resume import ProgressRecord
from bigarrays_core.scale_writer import WriteReport

__all__ = ["Progress", "Stage", "run_stages"]

T = TypeVar("T")
C = TypeVar("C")

#: ``progress(n)``: ``n`` more chunks are done.
Progress = Callable[[int], object]

#: Least seconds between two saves of a progress record in an object store while tasks finish
#: (in a local or memory store, where a save costs a fraction of a millisecond to about one
#: when the disk is busy, every finished task is saved).
_SAVE_EVERY = 1.0

#: Reports of finished Dask tasks fetched in one call (they stay on the workers until then).
_FETCH_BATCH = 64

#: A stage's context that pickles to at most this many bytes travels inside each Dask task;
#: a bigger one (an ingest's in-memory source) is sent to every worker once, ahead.
INLINE_CONTEXT_BYTES = 64 << 10


class _TooBig(Exception):
    pass


class _CappedSink:
    """A file for ``pickle`` that counts what it is given and gives up past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.left -= n
        if self.left < 0:
            raise _TooBig
        return n


def pickles_small(obj: object, limit: int = INLINE_CONTEXT_BYTES) -> bool:
    """Whether ``obj`` pickles to at most ``limit`` bytes; stops pickling as soon as it is
    past them (a context holding a big array is not copied to find out)."""
    try:
        pickle.Pickler(_CappedSink(limit), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except _TooBig:
        return False
    return True


def _ignore(n: int) -> None:
    pass


@dataclass(frozen=True)
class Stage(Generic[C, T]):
    """One stage of a job: ``run(context, task)`` for every task, in any order.

    ``step`` names the stage in the progress record (stable across runs of the same job);
    ``weights[i]`` is the number of chunks task ``i`` covers (the unit of progress);
    ``ids[i]`` is how the record knows task ``i`` (default ``i``: give ids when the tasks
    are a selection that may differ between runs, e.g. the tasks where data is stored).
    ``run`` must be a module-level function (Dask sends it by reference); ``context`` and
    the tasks must pickle.
    """

    step: str
    run: Callable[[C, T], WriteReport]
    context: C
    tasks: Sequence[T]
    weights: Sequence[int] | None = None
    ids: Sequence[int] | None = None

    def weight(self, i: int) -> int:
        return 1 if self.weights is None else self.weights[i]

    def total_weight(self) -> int:
        """The progress units of every task (what a progress bar counts to)."""
        return len(self.tasks) if self.weights is None else sum(self.weights)

    def id(self, i: int) -> int:
        return i if self.ids is None else self.ids[i]


class _Tracker:
    """Progress and the record of finished tasks, kept by the calling thread."""

    def __init__(self, stage: Stage[Any, Any], record: ProgressRecord | None, progress: Progress,
                 report: WriteReport) -> None:
        self.stage, self.record, self.progress, self.report = stage, record, progress, report
        self.done = record.done_tasks(stage.step) if record is not None else set()
        self.saved = time.monotonic()
        self.every = 0.0 if record is None or record.store.threaded_io else _SAVE_EVERY

    def todo(self) -> list[int]:
        stage, done = self.stage, self.done
        todo, n = [], 0
        for i in range(len(stage.tasks)):
            if stage.id(i) in done:
                n += stage.weight(i)
            else:
                todo.append(i)
        self.report.done_before += n
        self.progress(n)
        return todo

    def finished(self, i: int, part: WriteReport | None = None) -> None:
        """Task ``i`` is done (recorded, its progress reported); ``part`` is its report, unless
        the caller adds it to :attr:`report` itself."""
        if part is not None:
            self.report.add(part)
        if self.record is not None:
            self.record.add_tasks(self.stage.step, [self.stage.id(i)], save=False)
            if time.monotonic() - self.saved >= self.every:
                self.save()
        self.progress(self.stage.weight(i))

    def save(self) -> None:
        if self.record is not None:
            self.record.save()
            self.saved = time.monotonic()


def _call_serial(run: Callable[[C, T], WriteReport], context: C, task: T) -> WriteReport:
    with serial():
        return run(context, task)


def _run_local(stage: Stage[Any, Any], todo: list[int], tracker: _Tracker) -> None:
    threads = num_threads()
    if len(todo) == 1 or threads == 1:
        for i in todo:  # one task: chunk work in parallel as usual; one thread: in order
            tracker.finished(i, stage.run(stage.context, stage.tasks[i]))
        return
    pending: dict[Future[WriteReport], int] = {}
    queue = iter(todo)
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bigarrays-job") as pool:

        def submit(i: int) -> None:
            pending[pool.submit(_call_serial, stage.run, stage.context, stage.tasks[i])] = i

        try:
            for i in itertools.islice(queue, threads):
                submit(i)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    if fut.cancelled():
                        continue
                    exc = fut.exception()
                    if exc is not None:
                        errors.append(exc)
                        continue
                    tracker.finished(i, fut.result())
                    nxt = None if errors else next(queue, None)
                    if nxt is not None:
                        submit(nxt)
                if errors:  # no new task starts; the running ones finish and are recorded
                    for fut in pending:
                        fut.cancel()
        finally:
            for fut in pending:
                fut.cancel()
    if errors:
        raise errors[0]


def _run_dask(client: Any, stage: Stage[Any, Any], todo: list[int], tracker: _Tracker) -> None:
    from distributed import as_completed

    total_threads = sum(client.nthreads().values()) or 1
    window = max(8, 4 * total_threads)
    # A small context goes inside each task (no round trip before the first one starts; 6 ms
    # of a 16-task pyramid build's 330 on two local workers); a big one to every worker, once.
    shared = None if pickles_small(stage.context) else client.scatter(stage.context, broadcast=True, hash=False)
    context = stage.context if shared is None else shared
    prefix = f"bigarrays-{''.join(c if c.isalnum() else '-' for c in stage.step)}-{uuid.uuid4().hex[:8]}"
    queue: Iterator[int] = iter(todo)
    index: dict[str, int] = {}

    def submit(i: int) -> Any:
        fut = client.submit(_call_serial, stage.run, context, stage.tasks[i], key=f"{prefix}-{i}", pure=False)
        index[fut.key] = i
        return fut

    # Finished tasks are recorded as they finish; their reports (small) are fetched from the
    # workers in batches, one call per batch instead of one round trip per task.
    fetch: list[Any] = []

    def fetch_reports() -> None:
        for fut, part in zip(fetch, client.gather(fetch), strict=True):
            tracker.report.add(part)
            fut.release()
        fetch.clear()

    # On this client's event loop: as_completed otherwise waits on the *default* client's (the last one
    # opened), which may be another cluster's, busy (a job then stalls) or taking CPU from this one's.
    # distributed leaves as_completed unannotated.
    futures = as_completed([submit(i) for i in itertools.islice(queue, window)], loop=client.loop)  # type: ignore[no-untyped-call]
    try:
        for fut in futures:
            if fut.status != "finished":
                fut.result()  # a task's exception is raised here, as it was raised
            tracker.finished(index.pop(fut.key))
            fetch.append(fut)
            if len(fetch) >= _FETCH_BATCH:
                fetch_reports()
            nxt = next(queue, None)
            if nxt is not None:
                futures.add(submit(nxt))  # type: ignore[no-untyped-call]
        fetch_reports()
    finally:
        for fut in list(futures.futures):
            fut.cancel()
        if shared is not None:
            shared.release()


def run_stages(stages: Sequence[Stage[Any, Any]], *, client: Any = None, record: ProgressRecord | None = None,
               progress: Progress = _ignore, report: WriteReport | None = None) -> WriteReport:
    """Run every task of each stage, a stage after the one before it has finished.

    ``client``: None (this machine's threads), a ``distributed.Client`` or a scheduler
    address (see the module docstring). ``record``: finished tasks are skipped and
    recorded. Returns the sum of the tasks' reports, added to ``report`` if given. The
    first exception of a task is raised once the tasks running beside it have stopped
    (locally) or been cancelled (on a cluster); what finished is recorded first.
    """
    report = report if report is not None else WriteReport()
    owned = False
    dask_client = None
    if client is not None:
        dask_client, owned = open_client(client)
    try:
        for stage in stages:
            tracker = _Tracker(stage, record, progress, report)
            todo = tracker.todo()
            try:
                if dask_client is None:
                    _run_local(stage, todo, tracker)
                else:
                    _run_dask(dask_client, stage, todo, tracker)
            finally:
                tracker.save()
    finally:
        if owned:
            assert dask_client is not None  # owned: open_client made it
            dask_client.close()
    return report
