"""Copying a decoded chunk's region into a cutout: the strided copy every read makes.

``out[...] = src`` between two 4-D views (rows of a chunk into rows of a bigger output)
spends much of its time in numpy's per-row loop overhead when rows are short (64 voxels
of a 64³ chunk). A numba loop over the same elements measured 4–10 % faster for whole
raw, gzip and jpeg cutouts on this project's benchmarks, and releases the GIL.

The kernel is compiled for a dtype on the first large copy of that dtype (about 0.1 s)
and cached on disk (:mod:`bigarrays_core.codecs.jit`); numba is imported then, not before. Small copies,
copies that convert (a bool output from uint8 bytes), non-native byte orders and shape
mismatches stay with numpy, which also raises numpy's errors for the latter.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = ["DTYPES", "paste", "precompile"]

#: Copies of fewer elements stay with numpy (and never import numba).
MIN_ELEMENTS = 1 << 15

#: The dtypes volumes have (DESIGN.md): each gets a kernel on its first large copy.
DTYPES = ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")

_kernels: dict[np.dtype, Any] = {}
_lock = threading.Lock()


def paste(out: np.ndarray, src: np.ndarray) -> None:
    """``out[...] = src``; the numba kernel when both are large 4-D arrays of one native dtype."""
    if (src.size < MIN_ELEMENTS or out.shape != src.shape or out.ndim != 4 or out.dtype != src.dtype
            or not out.dtype.isnative or out.dtype.kind not in "biuf" or not out.flags.writeable):
        out[...] = src
        return
    _kernel(out.dtype)(out, src)


def precompile(dtypes: tuple[str, ...] = DTYPES) -> None:
    """Compile (and cache on disk) the kernels of ``dtypes`` now, e.g. while building an image."""
    for name in dtypes:
        _kernel(np.dtype(name))


def _kernel(dtype: np.dtype) -> Any:
    """The kernel for ``dtype``: one signature (any layout; the source may be read-only),
    so every pair of views of that dtype runs the same compiled code."""
    compiled = _kernels.get(dtype)
    if compiled is None:
        with _lock:
            compiled = _kernels.get(dtype)
            if compiled is None:
                import numba
                from numba import types

                from bigarrays_core.codecs.jit import kernel

                item = numba.from_dtype(dtype)
                signature = types.void(types.Array(item, 4, "A"), types.Array(item, 4, "A", readonly=True))
                compiled = _kernels[dtype] = kernel([signature])(_copy)
    return compiled


def _copy(out: Any, src: Any) -> None:
    nx, ny, nz, nc = src.shape
    for c in range(nc):
        for z in range(nz):
            for y in range(ny):
                for x in range(nx):
                    out[x, y, z, c] = src[x, y, z, c]
