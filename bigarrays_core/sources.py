"""Volumes to ingest: a numpy array or ``.npy`` file, a TIFF stack, another precomputed dataset.

A :class:`Source` is read box by box in its own coordinates (``[0, shape)``, axes x, y, z,
c). It also says which parts hold nothing at all (:meth:`Source.stored`: the chunks of a
precomputed source that do not exist), so a copy of a sparse volume stays sparse, and it
has an :attr:`~Source.identity` that changes when its content changes, so an interrupted
ingest can be resumed safely (:mod:`bigarrays_core.resume`).

:func:`open_source` picks the reader for a path or URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from bigarrays_core.api import open as open_dataset
from bigarrays_core.array import BigArray
from bigarrays_core.errors import BigArraysError
from bigarrays_core.geometry import Box

__all__ = ["ArraySource", "PrecomputedSource", "Source", "TiffSource", "file_identity", "natural_key",
           "open_source"]


class Source(Protocol):
    """A readable 4-D volume.

    ``shape`` is (X, Y, Z, C); ``read(box)`` returns the ``(x, y, z, c)`` voxels of ``box``
    (a box inside ``[0, shape[:3])``); ``stored(boxes)`` is False for a box where the
    source knows it holds nothing (every precomputed chunk there is missing) and True
    otherwise. ``identity`` is a JSON-able description that changes when the content does,
    or None when the source cannot tell (then an ingest cannot be resumed, only redone).
    ``defaults`` are :func:`bigarrays_core.create` arguments the source suggests.
    """

    name: str
    shape: tuple[int, int, int, int]
    dtype: np.dtype[Any]
    defaults: dict[str, Any]
    identity: dict[str, Any] | None

    def read(self, box: Box) -> np.ndarray: ...

    def stored(self, boxes: Sequence[Box]) -> list[bool]: ...


def file_identity(path: str) -> dict[str, Any]:
    """Path, size and modification time of a file: what changes when it is rewritten."""
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def natural_key(name: str) -> tuple[object, ...]:
    """A sort key that orders the numbers inside names by value: ``img_2`` before ``img_10``.

    Text compares case-insensitively, numbers as integers; names that tie (``img_02`` and
    ``img_2``) keep their plain string order.
    """
    parts = re.split(r"(\d+)", name)
    return (tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name)


def _check_box(box: Box, shape: Sequence[int], name: str) -> None:
    if not Box((0, 0, 0), tuple(shape[:3])).contains(box):  # type: ignore[arg-type]
        raise BigArraysError(f"{name}: box {box} is outside the source's voxels "
                             f"[0:{shape[0]},0:{shape[1]},0:{shape[2]}]")


class ArraySource:
    """An in-memory or memory-mapped array in (x, y, z) or (x, y, z, c) order.

    ``identity`` is None unless given (an array in memory has no name that survives the
    process); :func:`open_source` gives a ``.npy`` file's path, size and mtime. A source
    made from a ``.npy`` file (``path``) pickles as its path, and maps the file again where
    it is unpickled (a Dask worker); others pickle their array.
    """

    def __init__(self, array: np.ndarray, name: str = "array", identity: dict[str, Any] | None = None,
                 path: str | None = None) -> None:
        if array.ndim == 3:
            array = array[..., np.newaxis]
        if array.ndim != 4:
            raise BigArraysError(f"{name}: expected a 3-D (x, y, z) or 4-D (x, y, z, c) array, "
                                 f"got shape {array.shape}")
        self.array = array
        self.name = name
        self.shape: tuple[int, int, int, int] = tuple(int(n) for n in array.shape)  # type: ignore[assignment]
        self.dtype: np.dtype[Any] = array.dtype
        self.defaults: dict[str, Any] = {}
        self.identity = identity
        self.path = path

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.path is not None:
            del state["array"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "array" not in state:
            array = np.load(state["path"], mmap_mode="r")
            self.array = array[..., np.newaxis] if array.ndim == 3 else array
            if tuple(self.array.shape) != self.shape or self.array.dtype != self.dtype:
                raise BigArraysError(f"{self.path} changed: it is {self.array.shape} {self.array.dtype} now, "
                                     f"not {self.shape} {self.dtype}")

    def read(self, box: Box) -> np.ndarray:
        _check_box(box, self.shape, self.name)
        return np.asarray(self.array[tuple(slice(a, b) for a, b in zip(box.start, box.stop))])

    def stored(self, boxes: Sequence[Box]) -> list[bool]:
        return [True] * len(boxes)


class TiffSource:
    """A multi-page TIFF file, or a directory of single-page TIFFs in natural name order.

    Pages are (y, x) or (y, x, c); page ``z`` is z. Each thread keeps the pages of the last
    z-range it read, so reading a z-slab box by box decodes each page once per thread. It
    pickles without those pages (a Dask worker reads the files again by path).
    """

    def __init__(self, path: str) -> None:
        import tifffile

        self.name = path
        if os.path.isdir(path):
            files = sorted((f for f in os.listdir(path) if f.lower().endswith((".tif", ".tiff"))), key=natural_key)
            if not files:
                raise BigArraysError(f"{path}: the directory has no .tif/.tiff files")
            self._files = [os.path.join(path, f) for f in files]
            first = self._page(0)
            depth = len(files)
            listing = hashlib.sha256()
            for f in self._files:
                st = os.stat(f)
                listing.update(f"{os.path.basename(f)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            self.identity: dict[str, Any] | None = {
                "kind": "tiff-directory", "path": os.path.abspath(path), "pages": listing.hexdigest()}
        else:
            self._files = []
            try:
                with tifffile.TiffFile(path) as tif:
                    first = tif.pages[0].asarray()
                    depth = len(tif.pages)
            except Exception as exc:  # tifffile raises many types for a damaged file
                raise BigArraysError(f"cannot read TIFF {path}: {exc}") from exc
            self.identity = {"kind": "tiff", **file_identity(path)}
        if first.ndim not in (2, 3):
            raise BigArraysError(f"{path}: pages must be 2-D (y, x) or (y, x, c), got shape {first.shape}")
        c = first.shape[2] if first.ndim == 3 else 1
        self.shape = (int(first.shape[1]), int(first.shape[0]), depth, int(c))
        self.dtype: np.dtype[Any] = first.dtype
        self.defaults: dict[str, Any] = {}
        self._cache = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_cache"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache = threading.local()

    def _page(self, z: int) -> np.ndarray:
        import tifffile

        try:
            page = tifffile.imread(self._files[z])
        except Exception as exc:  # tifffile raises many types for a damaged file
            raise BigArraysError(f"cannot read TIFF {self._files[z]} (z={z}): {exc}") from exc
        return np.asarray(page)

    def _read_z(self, z0: int, z1: int) -> np.ndarray:
        """Pages ``z0`` to ``z1 - 1`` as an (x, y, z, c) array."""
        import tifffile

        if self._files:
            pages = [self._page(z) for z in range(z0, z1)]
        else:
            with tifffile.TiffFile(self.name) as tif:
                pages = [tif.pages[z].asarray() for z in range(z0, z1)]
        want = (self.shape[1], self.shape[0]) + ((self.shape[3],) if self.shape[3] > 1 else ())
        for z, p in zip(range(z0, z1), pages):
            if p.shape != want or p.dtype != self.dtype:
                where = self._files[z] if self._files else f"{self.name} page {z}"
                raise BigArraysError(f"{where}: page has shape {p.shape} {p.dtype}, expected {want} {self.dtype}")
        stack = np.stack(pages)  # (z, y, x[, c])
        if stack.ndim == 3:
            stack = stack[..., np.newaxis]
        out: np.ndarray = stack.transpose(2, 1, 0, 3)
        return out

    def read(self, box: Box) -> np.ndarray:
        _check_box(box, self.shape, self.name)
        z0, z1 = box.start[2], box.stop[2]
        cached: tuple[int, int, np.ndarray] | None = getattr(self._cache, "slab", None)
        if cached is None or not (cached[0] <= z0 and z1 <= cached[1]):
            cached = self._cache.slab = (z0, z1, self._read_z(z0, z1))
        zs, _, slab = cached
        return slab[box.start[0]:box.stop[0], box.start[1]:box.stop[1], z0 - zs:z1 - zs, :]

    def stored(self, boxes: Sequence[Box]) -> list[bool]:
        return [True] * len(boxes)


class PrecomputedSource:
    """Scale ``mip`` of another precomputed dataset (a URL, or a :class:`BigArray` and its
    scale), or the part ``box`` of it (absolute voxels of that scale, inside its bounds);
    source voxel 0 is ``box.start`` (by default the scale's ``voxel_offset``).

    ``stored`` asks the store which chunks exist, so missing chunks stay missing in a copy.
    The identity is the URL, the mip, the box and the info: a precomputed source whose
    chunks change without its info changing is not noticed (re-ingest it with ``overwrite``).
    """

    def __init__(self, url: str | BigArray, mip: int = 0, box: Box | None = None) -> None:
        if isinstance(url, BigArray):
            self.ba = BigArray(url.store, url.parsed_info, url.mip)  # missing chunks read as zeros
        else:
            self.ba = open_dataset(url, mip=mip, read_only=True)
        self.box = self.ba.bounds if box is None else box
        if self.box.is_empty or not self.ba.bounds.contains(self.box):
            raise BigArraysError(f"source box {self.box} is not inside {self.ba.url} mip {self.ba.mip} "
                                 f"(bounds {self.ba.bounds})")
        self.name = self.ba.url
        self.shape = self.box.shape + (self.ba.num_channels,)
        self.dtype: np.dtype[Any] = self.ba.dtype
        self.defaults: dict[str, Any] = {
            "resolution": list(self.ba.resolution), "voxel_offset": list(self.box.start),
            "chunk_size": list(self.ba.chunk_size), "encoding": self.ba.encoding,
            "compression": self.ba.compression, "layer_type": self.ba.parsed_info.layer_type}
        info = json.dumps(self.ba.info, sort_keys=True).encode()
        self.identity: dict[str, Any] | None = {
            "kind": "precomputed", "url": self.ba.url, "mip": self.ba.mip, "info": hashlib.sha256(info).hexdigest(),
            "box": [list(self.box.start), list(self.box.stop)]}

    def read(self, box: Box) -> np.ndarray:
        _check_box(box, self.shape, self.name)
        return self.ba.read(box.translate(self.box.start))

    def stored(self, boxes: Sequence[Box]) -> list[bool]:
        refs = [self.ba.chunks(b.translate(self.box.start)) for b in boxes]
        keys = sorted({r.key for rs in refs for r in rs})
        exists = dict(zip(keys, self.ba.scale_io.store.exists_many(keys))) if keys else {}
        return [any(exists[r.key] for r in rs) for rs in refs]


def open_source(spec: str) -> Source:
    """The reader for ``spec``.

    A URL (anything with ``://``, ``precomputed://`` included, passed on untouched) or a
    directory holding an ``info`` is a precomputed dataset; another directory a TIFF stack;
    ``*.tif``/``*.tiff`` a multi-page TIFF; ``*.npy`` a numpy file of shape (x, y, z[, c]),
    memory-mapped. Raises :class:`BigArraysError` naming ``spec`` when it is none of these
    or does not exist.
    """
    if "://" in spec or os.path.isfile(os.path.join(spec, "info")):
        return PrecomputedSource(spec)
    if os.path.isdir(spec) or spec.lower().endswith((".tif", ".tiff")):
        if not os.path.exists(spec):
            raise BigArraysError(f"source {spec!r} does not exist")
        return TiffSource(spec)
    if spec.lower().endswith(".npy"):
        if not os.path.exists(spec):
            raise BigArraysError(f"source {spec!r} does not exist")
        try:
            array = np.load(spec, mmap_mode="r")
        except ValueError as exc:
            raise BigArraysError(f"cannot read {spec} as a .npy array: {exc}") from exc
        return ArraySource(array, name=spec, identity={"kind": "npy", **file_identity(spec)},
                           path=os.path.abspath(spec))
    raise BigArraysError(f"source {spec!r}: expected a .tif/.tiff file, a directory of TIFFs, a .npy file "
                         f"or a precomputed dataset (a URL or a directory with an info)")
