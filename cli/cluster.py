"""What the long commands (``ingest``, ``downsample``, ``transfer``) share: where their tasks
run (``--scheduler`` / ``--workers``) and their progress bar.

Without either option the tasks run on this machine's threads. ``--scheduler ADDRESS``
sends them to a running Dask scheduler (its workers must reach the data, and for ingest the
source). ``--workers N`` starts a Dask cluster of N worker processes (one thread each) on
127.0.0.1 for the run and stops it at the end. Progress is a tqdm bar on stderr, counting
chunks as tasks finish (on the cluster too), and starting from what an earlier run of the
same job finished; ``--quiet`` hides it. Ctrl-C stops the job: what finished is recorded,
and running the same command again resumes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import bigarrays_core as bc

__all__ = ["add_job_options", "base_name", "job_client", "progress_bar"]


def add_job_options(p: argparse.ArgumentParser) -> None:
    """``--scheduler``, ``--workers`` and ``--quiet``."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run the tasks on this Dask scheduler (e.g. tcp://10.0.0.5:8786); its workers must "
                            "reach the data")
    where.add_argument("--workers", type=int, metavar="N", default=None,
                       help="run the tasks on a local Dask cluster of N worker processes, started for this run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@contextmanager
def job_client(args: argparse.Namespace) -> Iterator[Any]:
    """The ``client=`` of the options: None, a Client of ``--scheduler``, or of a local cluster."""
    if args.scheduler is None and args.workers is None:
        yield None
        return
    try:
        import distributed
    except ImportError:
        raise bc.BigArraysError("--scheduler and --workers need dask.distributed: "
                                "pip install 'bigarrays[dask]'") from None
    if args.scheduler is not None:
        from bigarrays_core.array.dask_io import open_client

        client, _ = open_client(args.scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    if args.workers < 1:
        raise bc.BigArraysError(f"--workers {args.workers}: expected 1 or more worker processes")
    # distributed leaves LocalCluster and Client unannotated.
    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,  # type: ignore[no-untyped-call]
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                                       env={"BIGARRAYS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    try:
        with distributed.Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client
    finally:
        cluster.close()


@contextmanager
def progress_bar(args: argparse.Namespace, total: int, what: str) -> Iterator[Callable[[int], object]]:
    """A tqdm bar of ``total`` chunks on stderr (none with ``--quiet``); yields its ``update``."""
    from tqdm import tqdm

    where = (f" on {args.workers} local Dask workers" if args.workers
             else f" on {args.scheduler}" if args.scheduler else "")
    with tqdm(total=total, unit="chunk", desc=what + where, disable=args.quiet, file=sys.stderr,
              dynamic_ncols=True) as bar:
        yield bar.update


def base_name(path: str) -> str:
    """The last part of a path or URL, for progress labels."""
    return os.path.basename(path.rstrip("/")) or path
