"""Dropping a file's pages from the operating system's page cache, for tests of reads that
serve only what is in memory (``bigarrays_core.kvstore.at_hand``)."""

from __future__ import annotations

import os


def evict(path: str | os.PathLike[str]) -> None:
    """Drop ``path``'s pages from the page cache (flushed first, so they are clean and can go)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
