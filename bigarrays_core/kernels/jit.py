"""Compiling the numba kernels: GIL released, cached on disk when a cache directory is writable.

numba caches next to the kernel's module, or in the user's cache directory when the package
is read-only; when neither is writable it compiles in memory, for this process only.
Modules that use this import numba, so they are themselves imported lazily, never by
``import bigarrays_core``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeAlias

import numba
import numpy as np

__all__ = ["PREAD", "Int", "kernel"]

#: libc's ``ssize_t pread(int fd, void *buf, size_t count, off_t offset)`` for kernels that
#: read files without the GIL; the buffer is passed as an address (an integer, in the same
#: register as a pointer on 64-bit ABIs). Resolved by name when a kernel using it is linked.
PREAD = numba.types.ExternalFunction("pread", numba.types.intp(numba.types.intc, numba.types.intp,
                                                             numba.types.uintp, numba.types.int64))

Int: TypeAlias = int | np.integer[Any]
"""An integer scalar inside a kernel: a Python int or a NumPy integer (``np.int64(words[i])``);
compiled, numba gives both the same machine integer type."""


def kernel(signatures: list[Any] | None = None) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(nogil=True)``: compiled now for ``signatures``, or per argument types on
    first call when None; cached on disk if possible."""

    def compiled(func: Callable[..., Any], cache: bool) -> Any:
        if signatures is None:
            return numba.njit(nogil=True, cache=cache)(func)
        return numba.njit(signatures, nogil=True, cache=cache)(func)

    def wrap(func: Callable[..., Any]) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", numba.NumbaWarning)
                return compiled(func, True)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return compiled(func, False)

    return wrap
