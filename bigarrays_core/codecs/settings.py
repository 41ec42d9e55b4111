"""Reading an encoding's settings from its scale's JSON object (``jpeg_quality``, ``jxl_effort``, ...).

Each reader returns the member's value, or ``default`` when the scale does not have it (or
has it as ``null``), and raises :class:`~bigarrays_core.errors.InfoError` whose ``field`` is
the member's name when the value is not what the encoding takes. Whoever parses the info
prefixes the scale's path (``info.scales[2].jxl_effort``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from bigarrays_core.errors import InfoError

__all__ = ["integer_setting", "number_setting", "flags_setting"]


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def integer_setting(scale: Mapping[str, Any], member: str, default: int, low: int, high: int) -> int:
    """An integer member in ``[low, high]``."""
    value = scale.get(member)
    if value is None:
        return default
    if not _is_int(value) or not low <= value <= high:
        raise InfoError(f"{member}: expected an integer {low}..{high}, got {value!r}", field=member)
    return int(value)


def number_setting(scale: Mapping[str, Any], member: str, default: float) -> float:
    """A finite number (integer or float) member."""
    value = scale.get(member)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise InfoError(f"{member}: expected a finite number, got {value!r}", field=member)
    return float(value)


def flags_setting(scale: Mapping[str, Any], member: str, default: tuple[bool, ...]) -> tuple[bool, ...]:
    """A list of ``len(default)`` booleans."""
    value = scale.get(member)
    if value is None:
        return default
    if not isinstance(value, (list, tuple)) or len(value) != len(default) \
            or not all(isinstance(v, bool) for v in value):
        raise InfoError(f"{member}: expected a list of {len(default)} booleans, got {value!r}", field=member)
    return tuple(value)
