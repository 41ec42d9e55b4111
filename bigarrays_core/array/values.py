"""What a write may be given: the one coercion of values to the array a write stores.

Owns: :func:`write_array`, used by :class:`~bigarrays_core.BigArray` and by the REST
client's :class:`~bigarrays_core.client.RemoteArray`, so the same value is taken (or
refused, with the same message) locally and through a server. Pure: no I/O.

The rules, for a volume of dtype ``D`` and a selection of shape ``S``:

* A Python ``bool``/``int``/``float`` scalar is taken when ``D`` holds it exactly (NaN and
  the infinities only in float volumes); it fills the whole selection.
* A numpy scalar, a 0-d array and any array (or array-like with a dtype of its own) are
  taken when their dtype casts to ``D`` without loss (``np.can_cast(..., "safe")``).
* A (nested) list or tuple becomes an array first; since numpy makes its numbers int64 or
  float64, it is taken when every value survives the cast to ``D`` and back (NaN into a
  float volume included), whatever the safe-cast rule says.
* The array's shape must be ``S`` exactly, or ``S`` without its last axis when the
  selection keeps a single channel (``ba[x0:x1, y0:y1, z0:z1] = data3d`` in a
  one-channel volume).

Anything else is a :class:`~bigarrays_core.errors.WriteDataError` naming the value or
dtype, the volume's dtype and the box being written.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bigarrays_core.array.indexing import Selection
from bigarrays_core.errors import WriteDataError

__all__ = ["write_array"]


def _where(sel: Selection) -> str:
    return f"{sel.box} channels {sel.channels[0]}:{sel.channels[1]}"


def _scalar(value: Any, dtype: np.dtype[Any], sel: Selection) -> np.ndarray:
    where = _where(sel)
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # judged below, not warned about
                cast = np.asarray(value, dtype=dtype)
        except (OverflowError, ValueError):
            cast = None
        nan = isinstance(value, float) and value != value and dtype.kind == "f"
        # Python compares int and float exactly, so 2**60 + 1 does not "fit" a float32.
        if cast is None or not (nan or cast.item() == value):
            raise WriteDataError(f"value {value!r} does not fit dtype {dtype.name} (writing {where})")
        return np.broadcast_to(cast, sel.shape4)
    arr = np.asarray(value)
    if not np.can_cast(arr.dtype, dtype, "safe"):
        raise WriteDataError(f"cannot write {arr.dtype.name} into a {dtype.name} volume without loss "
                             f"(writing {where})")
    return np.broadcast_to(arr.astype(dtype), sel.shape4)


def _from_sequence(value: list[Any] | tuple[Any, ...], dtype: np.dtype[Any], sel: Selection) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nesting
        raise WriteDataError(f"cannot make an array of the list written to {_where(sel)}: {exc}") from None
    if arr.dtype != dtype and arr.dtype.kind in "biuf":
        # numpy makes nested numbers int64/float64: take them when every value survives
        # the cast and the cast back (a round trip, not a comparison that promotes both).
        with np.errstate(over="ignore", invalid="ignore"):
            cast = arr.astype(dtype)
            back = cast.astype(arr.dtype)
        if np.array_equal(back, arr, equal_nan=arr.dtype.kind == "f" and dtype.kind == "f"):
            return cast
    return arr


def write_array(value: Any, dtype: np.dtype[Any], sel: Selection) -> np.ndarray:
    """``value`` as an array of ``dtype`` shaped ``sel.shape4`` (x, y, z, c), ready to store.

    The result may be a read-only view of ``value`` (or a broadcast of a scalar): callers
    must not write into it.

    Raises
    ------
    WriteDataError
        When ``value`` cannot be stored in ``dtype`` without loss, or its shape does not
        fit ``sel`` (see the module docstring for the rules); the message names the box.
    """
    dtype = np.dtype(dtype)
    if isinstance(value, (list, tuple)):
        arr = _from_sequence(value, dtype, sel)
    elif np.ndim(value) == 0:
        return _scalar(value, dtype, sel)
    else:
        arr = np.asarray(value)
    where = _where(sel)
    if arr.dtype != dtype and not np.can_cast(arr.dtype, dtype, "safe"):
        raise WriteDataError(
            f"cannot write {arr.dtype.name} data into a {dtype.name} volume without loss (writing {where}); "
            f"cast it first, e.g. data.astype({dtype.name!r})"
        )
    target = sel.shape4
    expected = sel.shape
    # Only unit axes are inserted (dropped ones, or a single implicit channel), which never
    # moves data, so the reshape is a view in either memory order.
    if arr.shape == expected or (3 not in sel.dropped and target[3] == 1 and arr.shape == expected[:-1]):
        arr = arr.reshape(target, order="A")
    else:
        raise WriteDataError(f"data of shape {arr.shape} does not fit {where}, which has shape {expected}")
    return arr.astype(dtype, copy=False)
