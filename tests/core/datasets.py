"""Small helpers the core tests share: make a test dataset, and snapshot what a store holds."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from bigarrays_core.kvstore import KVStore
from bigarrays_core.kvstore.base import LOCK_KEY

__all__ = ["files_under", "local_root", "make", "random_data", "snapshot"]


def make(url: str | KVStore, **kwargs: Any) -> bc.BigArray:
    """``bc.create`` with small defaults (uint8, 64^3 volume, 16^3 chunks); ``kwargs`` override them."""
    args: dict[str, Any] = {"dtype": "uint8", "size": (64, 64, 64), "chunk_size": (16, 16, 16)}
    args.update(kwargs)
    return bc.create(url, **args)


def snapshot(store: KVStore) -> dict[str, bytes | None]:
    """Every key of ``store`` with its stored bytes (to prove that nothing changed)."""
    keys = sorted(store.list())
    return dict(zip(keys, store.get_many(keys), strict=True))


def files_under(root: str) -> dict[str, bytes]:
    """Every file below ``root`` (relative path -> bytes), temporary files included; not the
    writers' lock file (``.bigarrays/locks``, empty bookkeeping, see ``LocalStore``)."""
    out: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.relpath(path, root).replace(os.sep, "/") == LOCK_KEY:
                continue
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def local_root(url: str) -> str:
    """The directory of a ``file://`` dataset URL."""
    assert url.startswith("file://"), url
    return url[len("file://"):]


def random_data(rng: np.random.Generator, box: Box, dtype: Any = np.uint8, channels: int = 1) -> np.ndarray:
    """Seeded data for ``box`` x ``channels``: the full integer range, bools, or floats around 0."""
    return random_values(rng, box.shape + (channels,), dtype)


def random_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Seeded values of ``shape``: the full integer range, bools, or floats around 0."""
    dt = np.dtype(dtype)
    if dt == np.dtype(bool):
        return rng.random(shape) < 0.5
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
