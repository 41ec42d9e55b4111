"""Copying a decoded chunk's region into a cutout: the strided copy every read makes.

``out[...] = src`` between two 4-D views (rows of a chunk into rows of a bigger output)
spends much of its time in numpy's per-row loop overhead when rows are short (64 voxels
of a 64³ chunk). A numba loop over the same elements measured 4–17 % faster for whole
raw, gzip and jpeg cutouts on this project's benchmarks, and releases the GIL.

Loading numba costs about 0.25 s and 110 MB of memory, three times what a one-shot
``bigarrays cutout`` takes otherwise, so the kernel is tiered in: copies go through numpy
until the process has copied :data:`WARM_BYTES` (or has numba loaded already, e.g. for
compressed_segmentation), then a background thread loads the kernel for each dtype seen
(compiled once, ~0.1 s, and cached on disk by :mod:`bigarrays_core.kernels.jit`) and later
copies of that dtype use it. A process that reads little never imports numba. The batch reader of
:mod:`bigarrays_core.kernels.spans` is loaded with each copy kernel. A long-lived process calls
:func:`preload` when it starts, so that the load does not land in the middle of its work (a
server worker crossing the threshold spent ~0.25 s of CPU on it between two cutouts).

Small copies, copies that convert (a bool output from uint8 bytes), non-native byte
orders and shape mismatches always stay with numpy, which also raises numpy's errors for
the latter.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import spans

__all__ = ["DTYPES", "MIN_ELEMENTS", "WARM_BYTES", "paste", "precompile", "preload", "wait_for_kernels"]

#: Copies of fewer elements stay with numpy.
MIN_ELEMENTS = 1 << 15
#: Bytes a process copies with numpy before it loads the numba kernel.
WARM_BYTES = 1 << 30
#: The dtypes volumes have (``bigarrays_core.format.DTYPES``; listed here, as kernels import nothing).
DTYPES = ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")

_kernels: dict[np.dtype, Any] = {}
_lock = threading.Lock()
_copied = 0
_wanted: set[np.dtype] = set()  # dtypes whose kernel is being loaded, or waits for that
_loader: threading.Thread | None = None


def paste(out: np.ndarray, src: np.ndarray) -> None:
    """``out[...] = src``; the numba kernel for large 4-D copies of one native dtype once loaded."""
    if src.size < MIN_ELEMENTS:
        out[...] = src
        return
    kernel = _kernels.get(out.dtype)  # kernels exist only where _has_kernel
    # The kernel does not check bounds; a pair it has no signature for (the kernel's
    # TypeError, slow to raise) can only be a read-only ``out``, which numpy refuses below.
    same = out.shape == src.shape and out.ndim == 4 and src.dtype == out.dtype
    if kernel is not None and same:
        try:
            kernel(out, src)
            return
        except TypeError:
            pass
    out[...] = src
    if kernel is None and same and _has_kernel(out.dtype):
        _count(out.dtype, src.nbytes)


def precompile(dtypes: tuple[str, ...] = DTYPES) -> None:
    """Load (compiling and caching on disk if needed) the kernels of ``dtypes`` now, in this
    thread: e.g. while building an image, or to skip the warm-up of a long-lived process."""
    for name in dtypes:
        _load(np.dtype(name))


def preload(dtypes: Iterable[np.dtype | str]) -> None:
    """Start loading the kernels of ``dtypes`` in the background now, whatever has been copied
    (returns at once; :func:`wait_for_kernels` waits for it). Dtypes without a kernel (non-native
    byte order, not a number) are skipped."""
    with _lock:
        _wanted.update(dtype for dtype in (np.dtype(name) for name in dtypes) if _has_kernel(dtype))
        _start_loader()


def wait_for_kernels(timeout: float | None = None) -> None:
    """Wait until the background loading of kernels, if any, has finished."""
    loader = _loader
    if loader is not None:
        loader.join(timeout)


def _has_kernel(dtype: np.dtype) -> bool:
    """Whether ``dtype`` gets a copy kernel: a volume dtype (:data:`DTYPES`) in native byte order."""
    return dtype.isnative and dtype.name in DTYPES


def _count(dtype: np.dtype, nbytes: int) -> None:
    """Count a numpy copy; start loading ``dtype``'s kernel once warm."""
    global _copied
    _copied += nbytes  # approximate under threads, which is all a threshold needs
    if dtype in _wanted or (_copied < WARM_BYTES and "numba" not in sys.modules):
        return
    with _lock:
        if dtype in _wanted:
            return
        _wanted.add(dtype)
        _start_loader()


def _start_loader() -> None:
    """Start the loader thread (``_lock`` held) unless one runs, or one gave up because numba
    cannot load here; it loads every wanted dtype."""
    global _loader
    if _loader is None:
        # Not a daemon: a process that exits meanwhile waits for the compile (< 1 s)
        # instead of tearing numba down under it.
        _loader = threading.Thread(target=_load_wanted, name="bigarrays-paste-kernel")
        _loader.start()


def _load_wanted() -> None:
    """Load the kernel of every wanted dtype (runs in the loader thread)."""
    global _loader
    while True:
        with _lock:
            todo = [dt for dt in _wanted if dt not in _kernels]
            if not todo:  # under the lock: a dtype wanted from now on starts a new loader
                _loader = None
                return
        for dtype in todo:
            try:
                _load(dtype)
            except Exception:  # numba unusable here: numpy keeps doing the copies (and
                return  # ``_loader`` stays set, so no other loader is started)


def _load(dtype: np.dtype) -> Any:
    """The kernel for ``dtype``: one signature (any layout; the source may be read-only),
    so every pair of views of that dtype runs the same compiled code."""
    compiled = _kernels.get(dtype)
    if compiled is None:
        import numba
        from numba import types

        from .jit import kernel

        item = numba.from_dtype(dtype)
        signature = types.void(types.Array(item, 4, "A"), types.Array(item, 4, "A", readonly=True))
        compiled = kernel([signature])(_copy)
        if dtype.kind != "b":  # bool volumes store bytes: their spans are converted by numpy
            try:
                spans.load(dtype)
            except Exception:  # a platform without pread: reads keep pasting chunk by chunk
                pass
        _kernels[dtype] = compiled
    return compiled


def _copy(out: Any, src: Any) -> None:
    nx, ny, nz, nc = src.shape
    for c in range(nc):
        for z in range(nz):
            for y in range(ny):
                for x in range(nx):
                    out[x, y, z, c] = src[x, y, z, c]
