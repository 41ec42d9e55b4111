"""One of the writers of ``test_concurrent_writes``: unaligned writes into chunks other
processes write at the same time.

Run as ``python concurrent_writer.py URL P N START``: waits until the wall clock reaches
START (so all writers start together), then writes the value ``P + 1`` into every voxel
column ``x`` with ``x % N == P``, one column at a time (each write covers part of a chunk:
a read-modify-write), and prints ``done``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import bigarrays_core as bc


def main(url: str, p: int, n: int, start: float) -> None:
    ba = bc.open(url, non_aligned_writes=True)
    (x0, y0, z0), (x1, y1, z1) = ba.bounds.start, ba.bounds.stop
    time.sleep(max(0.0, start - time.time()))
    for x in range(x0 + p, x1, n):
        ba[x:x + 1, y0:y1, z0:z1] = np.full((1, y1 - y0, z1 - z0), p + 1, dtype=ba.dtype)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
