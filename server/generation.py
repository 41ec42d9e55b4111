"""Writes seen across worker processes: one shared counter, so no worker serves a stale chunk.

Owns: :class:`WriteGeneration`. With several uvicorn workers each has its own chunk cache.
The runner creates a small file (``BIGARRAYS_GENERATION_FILE``) holding one 64-bit counter;
a worker bumps it, under an exclusive ``flock``, after every write it serves (once the
chunks are stored), and every worker compares it with the value it last saw at the start
of each request: if another worker wrote since, it empties its cache before serving. A
client that reads after its ``PUT`` returned therefore never sees the old voxels, whichever
worker answers. Checking costs one 8-byte read from a shared mapping.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import tempfile
import threading

__all__ = ["WriteGeneration", "create_generation_file"]

_COUNTER = struct.Struct("<Q")


def create_generation_file() -> str:
    """A new zeroed counter file (in ``/dev/shm`` when it exists); the caller removes it."""
    directory = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    fd, path = tempfile.mkstemp(prefix="bigarrays-writes-", dir=directory)
    try:
        os.write(fd, bytes(_COUNTER.size))
    finally:
        os.close(fd)
    return path


class WriteGeneration:
    """This worker's view of the shared write counter at ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR)
        try:
            if os.fstat(self._fd).st_size < _COUNTER.size:
                raise ValueError(f"write generation file {path} is shorter than {_COUNTER.size} bytes")
            self._map = mmap.mmap(self._fd, _COUNTER.size)
        except BaseException:
            os.close(self._fd)
            raise
        self._lock = threading.Lock()
        self._seen = self._read()

    def _read(self) -> int:
        return int(_COUNTER.unpack_from(self._map, 0)[0])

    def others_wrote(self) -> bool:
        """True (once) when another worker has written since this one last looked."""
        now = self._read()
        if now == self._seen:
            return False
        with self._lock:
            changed = now != self._seen
            self._seen = now
        return changed

    def bump(self) -> None:
        """Record a write this worker has stored.

        If another worker wrote since this one last looked, that write stays unseen here
        (the next :meth:`others_wrote` returns True), so it is never skipped.
        """
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                value = self._read()
                _COUNTER.pack_into(self._map, 0, value + 1)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            if value == self._seen:
                self._seen = value + 1

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
