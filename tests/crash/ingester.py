"""The victim of ``test_ingest_sigkill``: an ingest that reports each finished task.

Run as ``python ingester.py SOURCE.npy DEST``. DEST must exist. The ingest is the library's,
with its default progress record; after each task (a group of chunks, recorded in DEST
before this hears of it: a local store's record is saved after every task) it prints
``done N`` (chunks finished so far), flushes, and waits 10 ms before going on (so the whole
run lasts long enough for a test to kill it part way on any machine).
"""

from __future__ import annotations

import sys
import time

import bigarrays_core as bc
from bigarrays_core.ingest import ingest
from bigarrays_core.sources import open_source


def main(argv: list[str]) -> None:
    source, dest = argv
    total = 0

    def report(n: int) -> None:
        nonlocal total
        total += n
        print(f"done {total}", flush=True)
        time.sleep(0.01)

    ingest(open_source(source), bc.open(dest), progress=report)
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
