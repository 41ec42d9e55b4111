"""Readers of a precomputed dataset over HTTP, for the remote and file-server cases.

* :func:`bigarrays_client`: the project's REST client, ``bc.Client(base)[name]``, against
  ``bigarrays serve`` (cutouts: the server assembles, the client receives one body per piece).
* :func:`tensorstore_http`: TensorStore's ``neuroglancer_precomputed`` driver over its ``http``
  kvstore (chunk files by GET, as from any static server), ``order="F"``.
* :func:`cloudvolume_http`: CloudVolume on ``precomputed://http...`` (``parallel=1``).

Each returns a :class:`~bigarrays_bench.libraries.Handle` whose ``read(box)`` returns the
``(x, y, z, c)`` voxels. Opening happens here, outside the timing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import bigarrays_core as bc
from bigarrays_bench.libraries import Box3, Handle

__all__ = ["bigarrays_client", "cloudvolume_http", "tensorstore_http"]


def _slices(box: Box3) -> tuple[slice, slice, slice]:
    (x0, y0, z0), (x1, y1, z1) = box
    return (slice(x0, x1), slice(y0, y1), slice(z0, z1))


class _Reader(Handle):
    def __init__(self, read: Any, keep: Any = None) -> None:
        self._read = read
        self._keep = keep  # what must stay open while the handle is used

    def read(self, box: Box3) -> np.ndarray:
        out: np.ndarray = self._read(box)
        return out

    def write(self, box: Box3, data: np.ndarray) -> None:
        raise NotImplementedError("the remote readers only read")


def bigarrays_client(base: str, name: str, *, transport_compression: str | None = None) -> tuple[Handle, Any]:
    """``bc.Client(base)[name]``; returns the handle and the client (close it after the case)."""
    client = bc.Client(base, timeout=120, transport_compression=transport_compression)
    remote = client[name]
    return _Reader(lambda box: remote[_slices(box)], client), client


def tensorstore_http(url: str) -> Handle:
    """TensorStore on the precomputed tree at ``url`` (ending in ``/``), default context."""
    import tensorstore as ts

    arr = ts.open({"driver": "neuroglancer_precomputed", "kvstore": url}, read=True).result()
    return _Reader(lambda box: arr[_slices(box)].read(order="F").result(), arr)


def cloudvolume_http(url: str) -> Handle:
    """CloudVolume on the precomputed tree at ``url``."""
    from cloudvolume import CloudVolume

    vol = CloudVolume(f"precomputed://{url.rstrip('/')}", mip=0, parallel=1, fill_missing=True, progress=False)
    return _Reader(lambda box: np.asarray(vol[_slices(box)]), vol)
