"""How a block of voxels becomes one coarser voxel: the blocks, the methods, the rounding. Pure: no I/O.

**Blocks.** With factor ``f`` along an axis, coarse voxel ``i`` covers fine voxels ``f*i``
to ``f*i + f - 1`` in absolute coordinates, whatever the voxel offsets (TensorStore's
``ts.downsample`` and Neuroglancer's coordinate mapping). A block at the edge of the data
(at the volume's upper edge, or its lower edge when the voxel offset is not a multiple of
``f``) may hold fewer voxels: every method uses the voxels the block has.

**Methods** (:data:`METHODS`):

- ``"average"`` (images; ``"mean"`` is another name for it): the mean of the block. Integer
  means are exact (64-bit types included) and **rounded to the nearest integer, halves to
  even**: the rounding TensorStore's ``"mean"`` uses, so bigarrays' mips of an integer
  volume equal TensorStore's to the byte. igneous (through tinybrain) truncates instead: a
  mean of 1.5 or 1.75 becomes 1, so its mips come out about half a grey level darker per
  level than the exact means; bigarrays' averages are never lower than tinybrain's and at
  most 1 higher. Floats are summed in float64 and divided (float32 means are right to
  their precision; float64 means carry the rounding errors of a float64 sum).
- ``"mode"`` (segmentations): the most frequent value of the block; **ties go to the
  smallest value** (as TensorStore's ``"mode"``; tinybrain's countless algorithm breaks
  ties by position instead). With ``ignore_zero`` a zero (background) only wins a block
  that holds nothing else.
- ``"min"``, ``"max"``: the smallest / largest value (a NaN makes the result NaN).
- ``"stride"``: the block's first voxel that the data has (the voxel at ``f*i``, or the
  first voxel of the data in a partial low-edge block).
- ``"auto"`` (:func:`resolve_method`): ``"mode"`` for a ``segmentation`` layer,
  ``"average"`` otherwise.

Average, mode, min and max run in numba kernels that release the GIL
(:mod:`bigarrays_core.kernels.downsample`, loaded on first use).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bigarrays_core.format.scales import coarsen_box
from bigarrays_core.geometry import Box

__all__ = ["METHODS", "downsample_block", "resolve_method"]

#: The downsampling methods (``"auto"`` picks one by layer type; ``"mean"`` means ``"average"``).
METHODS = ("auto", "average", "mode", "min", "max", "stride")


def resolve_method(method: str, layer_type: str) -> str:
    """The method ``method`` names for a layer of ``layer_type``: ``"auto"`` is ``"mode"`` for
    segmentations and ``"average"`` otherwise, ``"mean"`` is ``"average"``.

    Raises :class:`ValueError` naming the known methods for anything else.
    """
    if method == "mean":
        return "average"
    if method == "auto":
        return "mode" if layer_type == "segmentation" else "average"
    if method not in METHODS:
        raise ValueError(f"downsampling method {method!r} is not one of {list(METHODS)} (or 'mean')")
    return method


_KERNELS: Any = None


def _kernels() -> Any:
    """:mod:`bigarrays_core.kernels.downsample` (it imports numba: loaded on first use)."""
    global _KERNELS
    if _KERNELS is None:
        from bigarrays_core.kernels import downsample

        _KERNELS = downsample
    return _KERNELS


def _stride(data: np.ndarray, lo: Sequence[int], factor: Sequence[int]) -> np.ndarray:
    out = data
    for axis, (a, f) in enumerate(zip(lo, factor)):
        if f == 1:
            continue
        first = (f - a) % f  # the index of the first voxel of the second block
        lead = (slice(None),) * axis
        if a == 0:
            out = out[lead + (slice(0, None, f),)]
        else:
            idx = np.concatenate([[0], np.arange(first, out.shape[axis], f)]).astype(np.intp)
            out = out.take(idx, axis)
    return np.asfortranarray(out)


def _row_type(dtype: np.dtype[Any], rows: int) -> type:
    """The narrowest type that holds the sum of ``rows`` values of ``dtype`` exactly (narrow
    sums vectorise wider)."""
    info = np.iinfo(dtype)
    bound = max(-int(info.min), int(info.max)) * rows
    if info.min == 0 and bound < 2**16:
        return np.uint16
    return np.int32 if bound < 2**31 else np.int64


_PAIRS = {1: np.uint16, 2: np.uint32}


def _pairs(src: np.ndarray) -> np.ndarray | None:
    """``src`` (unsigned, 1 or 2 bytes, x contiguous, an even number of voxels along x) with
    each x pair of voxels viewed as one unsigned integer of twice the width (x halved), for
    :func:`~bigarrays_core.kernels.downsample.average_221_pairs`; None for other arrays."""
    wide = _PAIRS.get(src.dtype.itemsize)
    if wide is None or src.dtype.kind != "u" or src.strides[0] != src.dtype.itemsize or src.shape[0] % 2:
        return None
    return src.T.view(wide).T


def downsample_block(data: np.ndarray, box: Box, factor: Sequence[int], method: str, *,
                     ignore_zero: bool = False, out: np.ndarray | None = None) -> tuple[np.ndarray, Box]:
    """Downsample the ``(x, y, z, c)`` voxels of ``box`` (absolute fine coordinates) by ``factor``.

    Returns the coarse voxels and their box: ``box`` rounded outwards to the blocks. The
    voxels are a new Fortran-ordered array of ``data``'s dtype, or ``out`` (any layout, of
    the coarse shape and ``data``'s dtype) filled in place. ``method`` is one of
    :data:`METHODS` but ``"auto"`` (see the module docstring); ``ignore_zero`` goes with
    ``"mode"`` only.

    Raises :class:`ValueError` for an unknown method, ``ignore_zero`` with another method,
    a factor below 1, ``data`` not shaped like ``box`` or ``out`` not shaped like the result.
    """
    if method == "mean":
        method = "average"
    if method not in METHODS or method == "auto":
        raise ValueError(f"method {method!r} is not one of {[m for m in METHODS if m != 'auto']}")
    if ignore_zero and method != "mode":
        raise ValueError(f"ignore_zero goes with method 'mode', not {method!r}")
    if len(factor) != 3:
        raise ValueError(f"factor {tuple(factor)} must be 3 integers >= 1")
    f = (int(factor[0]), int(factor[1]), int(factor[2]))
    if min(f) < 1:
        raise ValueError(f"factor {tuple(factor)} must be 3 integers >= 1")
    if data.ndim != 4 or data.shape[:3] != box.shape or box.is_empty:
        raise ValueError(f"data of shape {data.shape} does not hold the voxels of box {box}")
    cbox = coarsen_box(box, f)
    shape = cbox.shape + (data.shape[3],)
    if out is not None and (out.shape != shape or out.dtype != data.dtype):
        raise ValueError(f"out is {out.shape} {out.dtype}; the result of {box} by {f} is {shape} {data.dtype}")
    (a0, a1, a2), (f0, f1, f2) = box.start, f
    lo = (a0 % f0, a1 % f1, a2 % f2)
    if method == "stride" or f == (1, 1, 1):
        strided = _stride(data, lo, f)
        if out is None:
            return strided, cbox
        out[...] = strided
        return out, cbox
    k = _kernels()
    given = out
    src = data.view(np.uint8) if data.dtype == np.bool_ else data
    if out is None:
        out = np.empty(shape, src.dtype, order="F")
    elif data.dtype == np.bool_:
        out = out.view(np.uint8)
    kind = src.dtype.kind
    whole22 = (f[0] == f[1] == 2 and lo == (0, 0, 0) and src.shape[0] % 2 == 0 and src.shape[1] % 2 == 0
               and src.shape[2] % f[2] == 0)
    if method == "average" and whole22 and src.dtype.itemsize < 8:
        n = 4 * f[2]
        shift = n.bit_length() - 1 if n & (n - 1) == 0 else -1
        wide = _pairs(src) if f[2] == 1 else None
        if wide is not None:
            bits = 8 * src.dtype.itemsize
            k.average_221_pairs(wide, wide.dtype.type((1 << bits) - 1), wide.dtype.type(bits), out)
        elif kind == "f":
            k.average_22_float(src, f[2], out)
        elif _row_type(src.dtype, n) in (np.uint16, np.int32):
            k.average_22_narrow(src, f[2], shift, out)
        else:
            k.average_22_wide(src, f[2], shift, out)
    elif method == "mode" and whole22 and f[2] == 1 and not ignore_zero:
        k.mode_221(src, out)
    elif method == "average":
        if kind == "f":
            k.average_float(src, lo, f, np.empty(src.shape[0], np.float64), out)
        elif src.dtype.itemsize == 8:
            k.average_int64(src, kind == "i", lo, f, out)
        else:
            k.average_int(src, lo, f, np.empty(src.shape[0], _row_type(src.dtype, f[1] * f[2])), out)
    elif method == "mode":
        k.mode(src, lo, f, bool(ignore_zero), out)
    else:
        k.extreme(src, lo, f, method == "max", np.empty(src.shape[0], src.dtype), out)
    if given is not None:
        return given, cbox
    result: Any = out.view(np.bool_) if data.dtype == np.bool_ else out
    return result, cbox
