"""The core's settings from the environment: read once, in one place, validated.

========================  ===========================================================  ===========
variable                  meaning                                                      default
========================  ===========================================================  ===========
BIGARRAYS_NUM_THREADS     parallelism of chunk work: the calling thread plus n - 1     the CPUs
                          pool threads (0 or unset: one per CPU)
BIGARRAYS_RECYCLE_MB      MiB of idle output memory kept for reuse per process         256
                          (0: none; see :mod:`bigarrays_core.array.buffers`)
BIGARRAYS_POISON_BUFFERS  fill outputs a read must write completely with 0xA5 first,   off
                          so a voxel a read forgets shows up (the test suite's
                          setting): 1 / true / yes / on, or 0 / false / no / off
========================  ===========================================================  ===========

:func:`config` reads them the first time any part of bigarrays needs one and keeps the
result for the life of the process; changing a variable later has no effect (use
``bc.set_num_threads`` and ``bc.set_recycle_limit`` at run time). A bad value raises
:class:`ConfigError` naming the variable and the value, when the setting is first needed;
importing bigarrays never fails on one.

The cloud SDKs' variables (``AWS_*``, ``STORAGE_EMULATOR_HOST``, ...) are the SDKs' own and are
read when a store is opened, by :mod:`bigarrays_core.kvstore.cloud_env`. This module imports
nothing from bigarrays but the errors.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from bigarrays_core.errors import ConfigError

__all__ = ["Config", "ConfigError", "config", "read_config"]

#: The most threads BIGARRAYS_NUM_THREADS may ask for.
MAX_THREADS = 1024
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class Config:
    """The settings :func:`config` read from the environment."""

    #: Parallelism of chunk work (>= 1).
    num_threads: int
    #: Bytes of idle output memory kept for reuse (>= 0).
    recycle_bytes: int
    #: Whether outputs a read must write completely are poisoned first.
    poison_buffers: bool


def _num_threads(raw: str | None) -> int:
    cpus = os.cpu_count() or 2
    if raw is None or not raw.strip():
        return cpus
    try:
        n = int(raw.strip())
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_THREADS:
        raise ConfigError(
            f"BIGARRAYS_NUM_THREADS must be a whole number of threads from 1 to {MAX_THREADS} "
            f"(0 or unset: one per CPU), got {raw!r}"
        )
    return n or cpus


def _recycle_bytes(raw: str | None) -> int:
    if raw is None or not raw.strip():
        return 256 << 20
    try:
        mib = float(raw)
    except ValueError:
        mib = -1.0
    if not (math.isfinite(mib) and mib >= 0):
        raise ConfigError(f"BIGARRAYS_RECYCLE_MB must be a number of MiB >= 0 (0 turns recycling off), got {raw!r}")
    return int(mib * 2**20)


def _flag(name: str, raw: str | None) -> bool:
    value = (raw or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1 / true / yes / on or 0 / false / no / off, got {raw!r}")


def read_config(environ: Mapping[str, str] | None = None) -> Config:
    """Parse the settings from ``environ`` (default ``os.environ``) now, without keeping them.

    Raises :class:`ConfigError` naming the first variable with a bad value.
    """
    env = os.environ if environ is None else environ
    return Config(
        num_threads=_num_threads(env.get("BIGARRAYS_NUM_THREADS")),
        recycle_bytes=_recycle_bytes(env.get("BIGARRAYS_RECYCLE_MB")),
        poison_buffers=_flag("BIGARRAYS_POISON_BUFFERS", env.get("BIGARRAYS_POISON_BUFFERS")),
    )


_config: Config | None = None
_lock = threading.Lock()


def config() -> Config:
    """The process's settings: read from the environment on the first call, then kept.

    Raises :class:`ConfigError` (on every call, until the variable is fixed and the process
    restarted) when a variable has a bad value.
    """
    current = _config
    if current is not None:
        return current
    return _load()


def _load() -> Config:
    global _config
    with _lock:
        if _config is None:
            _config = read_config()
        return _config
