"""An array object as a whole: ``np.asarray(ba)`` and ``iter(ba)``.

Owns: :func:`to_numpy` (the ``__array__`` of :class:`~bigarrays_core.BigArray` and of the
REST client's ``RemoteArray``), :func:`not_iterable` (their ``__iter__``),
:data:`MAX_ARRAY_BYTES` and :func:`describe_size`.

``np.asarray(ba)`` is ``ba.read(ba.bounds)``: the scale's whole volume, every channel, as a
4-D ``(x, y, z, c)`` array whose element ``[0, 0, 0, 0]`` is the voxel at ``voxel_offset``
(absolute coordinates, as everywhere). Above the object's ``max_array_bytes`` (1 GiB by
default) it is refused with :class:`~bigarrays_core.errors.TooLargeError` before anything
is read: a volume of terabytes is cut out by indexing a region.

Iteration is refused with a ``TypeError``. Without it Python would iterate through
``__getitem__`` with 0, 1, 2, ... and never stop, since an index outside the volume reads
zeros instead of raising ``IndexError``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from bigarrays_core.errors import TooLargeError
from bigarrays_core.geometry import Box

__all__ = ["MAX_ARRAY_BYTES", "describe_size", "not_iterable", "to_numpy"]

#: Default of ``max_array_bytes``: the largest ``np.asarray(ba)`` that is read without asking.
MAX_ARRAY_BYTES = 2**30

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


class Volume(Protocol):
    """What :func:`to_numpy` needs of an array object."""

    max_array_bytes: int

    @property
    def bounds(self) -> Box: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...

    @property
    def num_channels(self) -> int: ...

    def read(self, box: Box | str, channels: tuple[int, int] | None = None) -> np.ndarray: ...


def describe_size(nbytes: int) -> str:
    """``nbytes`` for people: ``"512 bytes"``, ``"1.5 GiB"``, ``"2.33 TiB"``."""
    value = float(nbytes)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{nbytes} bytes" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def to_numpy(vol: Volume, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
    """The whole volume of ``vol`` as a new ``(x, y, z, c)`` array (numpy's ``__array__``).

    Raises
    ------
    TooLargeError
        When the array would hold more than ``vol.max_array_bytes`` bytes; nothing is read.
    ValueError
        For ``copy=False``: the voxels live in storage, so there is no array to share.
    """
    if copy is False:
        raise ValueError(f"np.asarray({type(vol).__name__}, copy=False) is impossible: the voxels are read from "
                         "storage into a new array every time")
    bounds = vol.bounds
    nbytes = bounds.size * vol.num_channels * vol.dtype.itemsize
    limit = vol.max_array_bytes
    if nbytes > limit:
        raise TooLargeError(
            f"np.asarray would read the whole volume {bounds} ({vol.num_channels} channel(s) of {vol.dtype.name}) "
            f"of {vol!r}: {describe_size(nbytes)}"
            + ("" if nbytes < 1024 else f" ({nbytes} bytes)")
            + f", over the limit of {describe_size(limit)}. "
            f"Index a region instead, e.g. ba[x0:x1, y0:y1, z0:z1], or raise max_array_bytes on this object"
        )
    out = vol.read(bounds)
    return out if dtype is None else out.astype(dtype, copy=False)


def not_iterable(vol: object) -> TypeError:
    """The error ``iter(vol)`` raises."""
    name = type(vol).__name__
    return TypeError(
        f"a {name} is not iterable (an index outside the volume reads zeros, so iteration would never end): "
        f"index a region, e.g. ba[x0:x1, y0:y1, z0:z1], or use np.asarray(ba) for the whole of a small volume"
    )
