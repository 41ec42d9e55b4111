"""The three libraries under test, behind one small reader/writer interface.

Each adapter opens a dataset once (outside the timed part) and then reads or writes
boxes of absolute voxel coordinates, returning/accepting Fortran-ordered ``(x, y, z, c)``
arrays. The peers are configured as benchmarks/README.md says: TensorStore reads with
``order="F"``; CloudVolume with ``parallel=1, fill_missing=True, progress=False``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

import bigarrays_core as bc

__all__ = ["LIBRARIES", "Library", "Unsupported"]

Box3 = tuple[tuple[int, int, int], tuple[int, int, int]]


class Unsupported(Exception):
    """The library cannot do this case (reported as "can't", not as a failure)."""


class Handle(ABC):
    @abstractmethod
    def read(self, box: Box3) -> np.ndarray:
        """The voxels of ``box`` as an ``(x, y, z, c)`` array."""

    @abstractmethod
    def write(self, box: Box3, data: np.ndarray) -> None:
        """Store an ``(x, y, z, c)`` array at chunk-aligned ``box``."""


class Library(ABC):
    name: str

    @abstractmethod
    def open(self, path: Path, *, compression: str | None = None, for_write: bool = False) -> Handle:
        """A handle on the precomputed dataset in ``path``.

        ``compression`` (``"gzip"``) says the chunks are/should be gzip'd files (``.gz``);
        raises :class:`Unsupported` if the library cannot handle that.
        """

    def version(self) -> str:
        return "?"


def _slices(box: Box3) -> tuple[slice, slice, slice]:
    (x0, y0, z0), (x1, y1, z1) = box
    return (slice(x0, x1), slice(y0, y1), slice(z0, z1))


# -- bigarrays ---------------------------------------------------------------------------------
class _BigArraysHandle(Handle):
    def __init__(self, ba: bc.BigArray) -> None:
        self.ba = ba

    def read(self, box: Box3) -> np.ndarray:
        return self.ba[_slices(box)]

    def write(self, box: Box3, data: np.ndarray) -> None:
        self.ba[_slices(box)] = data


class BigArraysLib(Library):
    name = "bigarrays"

    def open(self, path: Path, *, compression: str | None = None, for_write: bool = False) -> Handle:
        return _BigArraysHandle(bc.open(str(path)))

    def version(self) -> str:
        return str(getattr(bc, "__version__", "?"))


# -- TensorStore -------------------------------------------------------------------------------
class _TensorStoreHandle(Handle):
    def __init__(self, arr: Any) -> None:
        self.arr = arr

    def read(self, box: Box3) -> np.ndarray:
        return self.arr[_slices(box)].read(order="F").result()  # type: ignore[no-any-return]

    def write(self, box: Box3, data: np.ndarray) -> None:
        self.arr[_slices(box)].write(data).result()


class TensorStoreLib(Library):
    name = "tensorstore"

    def __init__(self) -> None:
        import tensorstore as ts

        self._ts = ts
        self._context = ts.Context()

    def open(self, path: Path, *, compression: str | None = None, for_write: bool = False) -> Handle:
        if compression is not None:
            raise Unsupported("TensorStore cannot read or write gzip'd unsharded chunks")
        spec = {"driver": "neuroglancer_precomputed", "kvstore": f"file://{path.resolve()}/"}
        arr = self._ts.open(spec, read=True, write=for_write, context=self._context).result()
        return _TensorStoreHandle(arr)

    def version(self) -> str:
        from importlib.metadata import version

        return version("tensorstore")


# -- CloudVolume -------------------------------------------------------------------------------
class _CloudVolumeHandle(Handle):
    def __init__(self, vol: Any) -> None:
        self.vol = vol

    def read(self, box: Box3) -> np.ndarray:
        return np.asarray(self.vol[_slices(box)])

    def write(self, box: Box3, data: np.ndarray) -> None:
        self.vol[_slices(box)] = data


class CloudVolumeLib(Library):
    name = "cloudvolume"

    def open(self, path: Path, *, compression: str | None = None, for_write: bool = False) -> Handle:
        from cloudvolume import CloudVolume

        # For writes, compress=None is CloudVolume's default: gzip'd ``.gz`` files; False writes raw.
        compress = None if compression == "gzip" else False
        vol = CloudVolume(f"file://{path.resolve()}", mip=0, parallel=1, fill_missing=True, progress=False,
                          compress=compress)
        return _CloudVolumeHandle(vol)

    def version(self) -> str:
        import cloudvolume

        return str(cloudvolume.__version__)


def LIBRARIES() -> list[Library]:  # noqa: N802 - a factory that reads like the constant it replaces
    """Fresh adapters, bigarrays first."""
    return [BigArraysLib(), TensorStoreLib(), CloudVolumeLib()]
