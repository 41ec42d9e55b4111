"""Byte sizes on the command line: ``--max-bytes`` values, readable sizes, and the memory available."""

from __future__ import annotations

import argparse
import os
import re

__all__ = ["ByteSize", "available_memory", "format_bytes", "parse_bytes"]

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]?)(?:i?B)?\s*$", re.IGNORECASE)


class ByteSize(int):
    """A number of bytes that remembers how it was written (``text``), for messages."""

    text: str

    def __new__(cls, value: int, text: str) -> ByteSize:
        size = super().__new__(cls, value)
        size.text = text
        return size


def parse_bytes(text: str) -> ByteSize:
    """``"8KiB"``, ``"4G"``, ``"1.5TB"`` or ``"1000000"`` as a number of bytes (units are powers of 1024).

    Raises :class:`argparse.ArgumentTypeError` (argparse's usage error) for anything else.
    """
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 500M, 8GiB, 1000000)")
    return ByteSize(int(float(m.group(1)) * _UNITS[m.group(2).upper()]), text)


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units with two decimals: ``"2.33 TiB"`` (plain bytes below 1 KiB)."""
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            return f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} EiB"


#: (limit, usage) files of the process's memory control group: cgroup v2, then v1.
_CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping, or None if the system does not say.

    The smallest of: the kernel's ``MemAvailable`` (Linux), and what the process's memory
    control group (a container's limit, cgroup v2 or v1) has left. Elsewhere, free physical
    memory if ``sysconf`` reports it.
    """
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in _CGROUP_FILES:
        cap, used = _read_int(limit), _read_int(usage)
        if cap is not None and used is not None and cap < 1 << 60:  # "max" or a huge v1 value: no limit
            found.append(max(0, cap - used))
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(found)
