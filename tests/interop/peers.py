"""Write and read whole precomputed datasets with each tool: bigarrays, TensorStore, CloudVolume.

Every writer fills every mip of a new dataset at ``path`` (a local directory) with
:func:`cases.sample` data and returns a :class:`Written` (the data per mip, in absolute
coordinates); every reader returns the ``(x, y, z, c)`` voxels of a box at a mip. The
tests combine them as writer x reader matrices.

TensorStore is always opened on ``file://<dir>/`` and CloudVolume with ``parallel=1,
progress=False`` (its process pool only costs time on volumes this small).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorstore as ts
from cloudvolume import CloudVolume  # type: ignore[import-untyped]

import bigarrays_core as bc
from bigarrays_core.format import Scale

from .cases import Codec, Geometry, sample

__all__ = [
    "Written",
    "box_of",
    "cv_create",
    "cv_open",
    "cv_read",
    "scale_box",
    "scales_for",
    "ts_create",
    "ts_open",
    "ts_read",
    "write_bigarrays",
    "write_cloudvolume",
    "write_tensorstore",
]


@dataclass(frozen=True)
class Written:
    """What a writer stored: per mip, the bounds and the exact array given to the writer."""

    bounds: tuple[bc.Box, ...]
    data: tuple[np.ndarray, ...]

    def expected(self, mip: int, box: bc.Box) -> np.ndarray:
        """The written voxels of ``box`` (which must lie inside mip ``mip``'s bounds)."""
        return self.data[mip][box.slices_in(self.bounds[mip]) + (slice(None),)]


def box_of(start: Iterable[Any], stop: Iterable[Any]) -> bc.Box:
    """A :class:`bc.Box` from any two 3-vectors of integers (numpy ints included)."""
    x0, y0, z0 = (int(v) for v in start)
    x1, y1, z1 = (int(v) for v in stop)
    return bc.Box((x0, y0, z0), (x1, y1, z1))


# -- bigarrays -------------------------------------------------------------------------
def write_bigarrays(path: Path, codec: Codec, geometry: Geometry, rng: np.random.Generator,
                    compression: str | Mapping[str, Any] | None = None) -> Written:
    """Create the dataset with :func:`bigarrays_core.create` and fill every mip."""
    ba = bc.create(
        str(path), dtype=codec.dtype, size=geometry.size, chunk_size=geometry.chunk,
        resolution=geometry.resolution, voxel_offset=geometry.offset, num_channels=codec.channels,
        encoding=codec.encoding, compression=compression, num_mips=geometry.num_mips,
        downsample_factor=geometry.factor, compressed_segmentation_block_size=(8, 8, 4),
    )
    bounds, data = [], []
    for mip in range(geometry.num_mips):
        level = ba.at_mip(mip)
        values = sample(rng, codec, level.bounds.shape)
        level[:, :, :] = values
        bounds.append(level.bounds)
        data.append(values)
    return Written(tuple(bounds), tuple(data))


# -- TensorStore -----------------------------------------------------------------------
def ts_open(path: Path, scale_index: int = 0, **options: Any) -> ts.TensorStore:
    """Open scale ``scale_index`` of the dataset in directory ``path`` with TensorStore."""
    spec = {"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/", "scale_index": scale_index,
            **options}
    return ts.open(spec).result()


def ts_read(path: Path, mip: int, box: bc.Box | None = None) -> np.ndarray:
    """TensorStore's ``(x, y, z, c)`` read of ``box`` (default: the whole scale), Fortran order."""
    store = ts_open(path, mip)
    if box is not None:
        store = store[ts.d["x", "y", "z"][box.start[0]:box.stop[0], box.start[1]:box.stop[1],
                                            box.start[2]:box.stop[2]]]
    return np.asarray(store.read(order="F").result())


def ts_create(path: Path, codec: Codec, scale: Scale) -> ts.TensorStore:
    """Create (or add) the scale described by bigarrays' ``scale`` with TensorStore.

    Only the geometry is taken from ``scale``; the info written is TensorStore's own.
    """
    scale_metadata: dict[str, Any] = {
        "size": list(scale.size), "voxel_offset": list(scale.voxel_offset),
        "chunk_size": list(scale.chunk_size), "resolution": list(scale.resolution),
        "encoding": codec.encoding,
    }
    if codec.encoding == "compressed_segmentation":
        scale_metadata["compressed_segmentation_block_size"] = list(scale.compressed_segmentation_block_size
                                                                    or (8, 8, 4))
    return ts.open({
        "driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/", "create": True,
        "multiscale_metadata": {"type": codec.layer_type, "data_type": codec.dtype, "num_channels": codec.channels},
        "scale_metadata": scale_metadata,
    }).result()


def scales_for(codec: Codec, geometry: Geometry) -> tuple[Scale, ...]:
    """The scales bigarrays would create for ``geometry`` (pure: ``bc.create_info``)."""
    info = bc.create_info(dtype=codec.dtype, size=geometry.size, chunk_size=geometry.chunk,
                          resolution=geometry.resolution, voxel_offset=geometry.offset,
                          num_channels=codec.channels, encoding=codec.encoding,
                          num_mips=geometry.num_mips, downsample_factor=geometry.factor,
                          compressed_segmentation_block_size=(8, 8, 4))
    return info.scales


def scale_box(scale: Scale) -> bc.Box:
    return box_of(scale.voxel_offset, (o + s for o, s in zip(scale.voxel_offset, scale.size, strict=True)))


def write_tensorstore(path: Path, codec: Codec, geometry: Geometry, rng: np.random.Generator) -> Written:
    """Create every scale with TensorStore (``create: True``) and fill it with ``store.write``.

    The scales have the geometry :func:`write_bigarrays` would give them.
    """
    bounds, data = [], []
    for scale in scales_for(codec, geometry):
        box = scale_box(scale)
        values = sample(rng, codec, box.shape)
        ts_create(path, codec, scale).write(values).result()
        bounds.append(box)
        data.append(values)
    return Written(tuple(bounds), tuple(data))


# -- CloudVolume -----------------------------------------------------------------------
def cv_open(path: Path, mip: int = 0, **options: Any) -> CloudVolume:
    """CloudVolume on ``file://<path>`` at ``mip``: missing chunks read as zeros, no pool, no bar."""
    kw: dict[str, Any] = {"fill_missing": True, "progress": False, "parallel": 1, **options}
    return CloudVolume(f"file://{path}", mip=mip, **kw)


def cv_read(path: Path, mip: int, box: bc.Box | None = None) -> np.ndarray:
    """CloudVolume's ``(x, y, z, c)`` read of ``box`` (default: the whole scale)."""
    cv = cv_open(path, mip)
    if box is None:
        box = box_of(cv.bounds.minpt, cv.bounds.maxpt)
    (x0, y0, z0), (x1, y1, z1) = box.start, box.stop
    return np.asarray(cv[x0:x1, y0:y1, z0:z1])


def cv_create(path: Path, codec: Codec, geometry: Geometry, **options: Any) -> CloudVolume:
    """Commit a CloudVolume info (``create_new_info`` + ``add_scale`` per extra mip).

    CloudVolume computes coarser scales its own way (``size = ceil(size / factor)``), so
    their bounds can differ from bigarrays' choice: readers must take them from the info.
    """
    info = CloudVolume.create_new_info(
        num_channels=codec.channels, layer_type=codec.layer_type, data_type=codec.dtype, encoding=codec.encoding,
        resolution=list(geometry.resolution), voxel_offset=list(geometry.offset),
        volume_size=list(geometry.size), chunk_size=list(geometry.chunk),
        compressed_segmentation_block_size=(8, 8, 4),
    )
    cv = cv_open(path, 0, info=info, **options)
    factor = np.array(geometry.factor)
    for mip in range(1, geometry.num_mips):
        cv.add_scale(factor**mip, chunk_size=geometry.chunk, encoding=codec.encoding)
    cv.commit_info()
    return cv


def write_cloudvolume(path: Path, codec: Codec, geometry: Geometry, rng: np.random.Generator,
                      **options: Any) -> Written:
    """Create the dataset with CloudVolume and fill every mip with ``cv[...] = data``.

    ``options`` go to ``CloudVolume`` (e.g. ``compress="zstd"`` or ``compress=False``;
    the default gzips raw and compressed_segmentation chunks into ``.gz`` files).
    """
    cv_create(path, codec, geometry, **options)
    bounds, data = [], []
    for mip in range(geometry.num_mips):
        cv = cv_open(path, mip, **options)
        box = box_of(cv.bounds.minpt, cv.bounds.maxpt)
        (x0, y0, z0), (x1, y1, z1) = box.start, box.stop
        values = sample(rng, codec, box.shape)
        cv[x0:x1, y0:y1, z0:z1] = values
        bounds.append(box)
        data.append(values)
    return Written(tuple(bounds), tuple(data))
