"""The victim process of ``test_sigkill``: rewrites two datasets until it is killed.

Run as ``python writer.py [--named] RAW_DIR GZIP_DIR``. Both datasets must already exist, made by
:func:`create` (their chunks hold :func:`pattern` ``"A"``). The writer prints ``ready``
once imports are done, then loops: write pattern B over the whole of both datasets, then
pattern A, then B, ... Every write covers whole chunks, so after any crash each chunk
must still hold exactly one of the two patterns. ``--named`` writes every value to a named
temporary file first, as on a file system without unnamed ones (``O_TMPFILE``): a kill
during a write then leaves that file behind.

Importing this module has no side effects: the test imports the geometry and patterns
from here so the two processes cannot disagree.
"""

from __future__ import annotations

import sys

import numpy as np

import bigarrays_core as bc

__all__ = ["CHANNELS", "CHUNK", "DTYPE", "SIZE", "create", "pattern"]

#: 3x3x3 chunks of 64x64x32 (512 KiB each), clipped to 32, 16 and 8 voxels at the upper edges.
SIZE = (160, 144, 72)
CHUNK = (64, 64, 32)
CHANNELS = 2
DTYPE = "uint16"
_SEEDS = {"A": 1, "B": 2}


def pattern(which: str) -> np.ndarray:
    """The whole volume of pattern ``"A"`` or ``"B"``: random, so no chunk of one equals the other's."""
    rng = np.random.default_rng(_SEEDS[which])
    return np.asfortranarray(rng.integers(0, 2**16, size=SIZE + (CHANNELS,), dtype=np.uint16))


def create(path: str, compression: str | None) -> bc.BigArray:
    """Make the dataset at ``path`` and fill it with pattern A."""
    ba = bc.create(path, dtype=DTYPE, size=SIZE, chunk_size=CHUNK, num_channels=CHANNELS,
                   voxel_offset=(-64, 0, 16), compression=compression)
    ba[:, :, :] = pattern("A")
    return ba


def main(argv: list[str]) -> None:
    if argv[0] == "--named":
        from bigarrays_core.kvstore import local

        local._UNNAMED_FILES = False
        argv = argv[1:]
    targets = [bc.open(path) for path in argv]
    patterns = [pattern("B"), pattern("A")]
    print("ready", flush=True)
    turn = 0
    while True:
        for ba in targets:
            ba[:, :, :] = patterns[turn % 2]
        turn += 1


if __name__ == "__main__":
    main(sys.argv[1:])
