"""The datasets a server worker serves: opened at start-up, again when their info changes.

Owns: :class:`Dataset` (a store, its info as stored, and one :class:`ScaleSlot` per scale:
the scale's BigArray, or the error that keeps it from being read) and
:class:`DatasetRegistry`, which turns a dataset name, a mip or a scale key from a URL into
what the routes need, or an :class:`ApiError` naming what was not found.

A scale the server cannot read (an encoding or compression bigarrays lacks, a malformed or
unsupported sharding spec, any field that does not validate) never stops the server: that
scale answers its error (the status of the core error, e.g. 502 ``bad_dataset``), its
files (and its entry in the served info) still pass through ``/precomputed`` as stored (so
Neuroglancer reads what it can), and the other scales and datasets serve. Only a dataset whose info is missing or broken
as a whole fails start-up, naming it.

The info is checked again (one stat) by :meth:`DatasetRegistry.refresh`, which the app runs
in the background at the cache's revalidation interval: a changed info reopens the dataset.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bigarrays_server.errors import ApiError, status_of
from bigarrays_server.transcoding import ServedScale, served_info, served_scale

import bigarrays_core as bc
from bigarrays_core.format import Info, read_raw_info
from bigarrays_core.kvstore import KVStore, Stamp, open_store

__all__ = ["Dataset", "DatasetRegistry", "ScaleSlot"]

log = logging.getLogger("bigarrays_server")

INFO_KEY = "info"


@dataclass(frozen=True)
class ScaleSlot:
    """Scale ``mip`` of a dataset: its BigArray, or the error that keeps it from being read."""

    mip: int
    #: The scale's key in the info (None when the info does not give a usable one).
    key: str | None
    array: bc.BigArray | None = None
    error: bc.BigArraysError | None = None


def _stand_in(k: int) -> dict[str, Any]:
    """A minimal valid scale, in place of scale ``k`` while the others are validated."""
    return {"key": f".unreadable-scale-{k}", "size": [1, 1, 1], "voxel_offset": [0, 0, 0],
            "resolution": [1, 1, 1], "chunk_sizes": [[1, 1, 1]], "encoding": "raw"}


def _validate(raw: dict[str, Any], where: str) -> tuple[Info, dict[int, bc.InfoError]]:
    """The info with each scale that does not validate replaced by a stand-in, and the
    error of each such scale. Raises the info's own :class:`InfoError` when the problem is
    not confined to scales (a bad ``data_type``, no scales, duplicate keys, ...)."""
    try:
        return Info(raw), {}
    except bc.InfoError as exc:
        whole = bc.InfoError(f"{where}: {exc}", field=exc.field)
    scales = raw.get("scales")
    if not isinstance(scales, list) or not scales:
        raise whole
    errors: dict[int, bc.InfoError] = {}
    for k, scale in enumerate(scales):
        trial = {**raw, "scales": [scale if j == k else _stand_in(j) for j in range(len(scales))]}
        try:
            Info(trial)
        except bc.InfoError as exc:
            if not (exc.field or "").startswith(f"info.scales[{k}]"):
                raise whole from None
            errors[k] = bc.InfoError(f"{where}: {exc}", field=exc.field)
    if not errors:
        raise whole
    try:
        patched = Info({**raw, "scales": [_stand_in(k) if k in errors else s for k, s in enumerate(scales)]})
    except bc.InfoError:
        raise whole from None
    return patched, errors


def _scale_key(raw: dict[str, Any], k: int) -> str | None:
    try:
        key = raw["scales"][k]["key"]
    except (KeyError, IndexError, TypeError):
        return None
    return key.strip("/") if isinstance(key, str) and key.strip("/") else None


@dataclass
class Dataset:
    """One configured dataset: its store, its info as stored, and every scale."""

    name: str
    url: str
    store: KVStore
    #: The info JSON exactly as stored (``/precomputed/{ds}/info`` serves :attr:`served_info`).
    raw_info: dict[str, Any]
    #: The validated info (scales that do not validate replaced by stand-ins).
    info: Info
    scales: list[ScaleSlot] = field(default_factory=list)
    #: The stamp of the info object when it was read (None when the store has none).
    info_stamp: Stamp | None = None

    @classmethod
    def open(cls, name: str, url: str, *, writable: bool) -> Dataset:
        """Open the dataset at ``url``: read its info once, open every scale it can.

        Reads are zero-filled outside the volume and for missing chunks (docs/format.md, "Coordinates and bytes");
        writes must be chunk-aligned. Raises :class:`DatasetNotFoundError` or
        :class:`InfoError` when the info is missing or broken as a whole.
        """
        store = open_store(url, read_only=not writable)
        return cls.load(name, url, store)

    @classmethod
    def load(cls, name: str, url: str, store: KVStore) -> Dataset:
        """(Re)read the info of ``store`` and open its scales."""
        stamp = store.stat(INFO_KEY)  # before the read: the stamp is never newer than the info
        raw = read_raw_info(store)
        info, errors = _validate(raw, store.describe(INFO_KEY))
        slots: list[ScaleSlot] = []
        for k in range(len(info.scales)):
            key = _scale_key(raw, k)
            if k in errors:
                slots.append(ScaleSlot(k, key, error=errors[k]))
                continue
            try:
                slots.append(ScaleSlot(k, key, array=bc.BigArray(store, info, k)))
            except bc.BigArraysError as exc:  # e.g. a codec or sharding spec bigarrays cannot read
                slots.append(ScaleSlot(k, key, error=exc))
        for slot in slots:
            if slot.error is not None:
                log.warning("dataset %r mip %d (scale %r) cannot be read; its other scales serve: %s",
                            name, slot.mip, slot.key, slot.error)
        return cls(name, url, store, raw, info, slots, stamp)

    # -- description -------------------------------------------------------------------
    @property
    def dtype(self) -> Any:
        return self.info.dtype

    @property
    def num_channels(self) -> int:
        return self.info.num_channels

    @property
    def num_mips(self) -> int:
        return len(self.scales)

    @property
    def arrays(self) -> list[bc.BigArray]:
        """The BigArrays of the scales that can be read."""
        return [s.array for s in self.scales if s.array is not None]

    @cached_property
    def info_tag(self) -> str:
        """A digest of the info as stored: part of every entity tag of this dataset's data."""
        text = json.dumps(self.raw_info, sort_keys=True, separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    @cached_property
    def served(self) -> list[ServedScale | None]:
        """How each scale is served under ``/precomputed`` (None: a scale the server cannot
        read, whose files pass through as stored); see :mod:`bigarrays_server.transcoding`."""
        return [None if s.array is None else served_scale(s.array) for s in self.scales]

    @cached_property
    def served_info(self) -> dict[str, Any]:
        """The info ``/precomputed/{ds}/info`` serves: the stored one describing what the
        tree serves (transcoded encodings, no ``compression``, ...)."""
        return served_info(self.raw_info, self.served)

    def scale_keys(self) -> list[str]:
        return [s.key for s in self.scales if s.key is not None]

    def _unreadable(self, slot: ScaleSlot) -> ApiError:
        assert slot.error is not None
        status, code = status_of(slot.error)
        return ApiError(status, code,
                        f"dataset {self.name!r} mip {slot.mip} (scale {slot.key!r}) cannot be read by this server: "
                        f"{slot.error}", {"dataset": self.name, "mip": slot.mip, "scale_key": slot.key})

    def at(self, mip: int) -> bc.BigArray:
        """The BigArray of ``mip``: 404 when the dataset has no such scale, the scale's own
        error when it cannot be read."""
        if not 0 <= mip < len(self.scales):
            raise ApiError.of(bc.DatasetNotFoundError,
                              f"dataset {self.name!r} has no mip {mip}; it has mips 0..{len(self.scales) - 1}",
                              {"dataset": self.name, "mip": mip, "num_mips": len(self.scales)})
        slot = self.scales[mip]
        if slot.array is None:
            raise self._unreadable(slot)
        return slot.array

    def slot_of_key(self, key: str) -> ScaleSlot | None:
        """The scale whose key is ``key``, or None."""
        for slot in self.scales:
            if slot.key == key:
                return slot
        return None


class DatasetRegistry:
    """Name -> :class:`Dataset`, in the configured order; reloads a dataset whose info changed."""

    def __init__(self, datasets: Mapping[str, Dataset]) -> None:
        self._datasets = dict(datasets)
        self._broken: dict[str, bc.BigArraysError] = {}
        self._lock = threading.Lock()
        #: Bumped whenever a dataset is reloaded (or breaks): what was derived from the
        #: old one (cached chunks, resolved paths) is to be dropped.
        self.version = 0

    @classmethod
    def open(cls, urls: Mapping[str, str], *, writable: bool) -> DatasetRegistry:
        """Open each ``name -> url``; a dataset that cannot be opened fails start-up, naming it."""
        opened: dict[str, Dataset] = {}
        for name, url in urls.items():
            try:
                opened[name] = Dataset.open(name, url, writable=writable)
            except bc.BigArraysError as exc:
                exc.add_note(f"(while opening dataset {name!r} at {url})")
                raise
        return cls(opened)

    def names(self) -> list[str]:
        return list(self._datasets)

    def __iter__(self) -> Iterator[Dataset]:
        return iter(list(self._datasets.values()))

    def get(self, name: str) -> Dataset:
        """The dataset called ``name``; 404 listing the known names otherwise (and the
        dataset's error when its info stopped being readable)."""
        ds = self._datasets.get(name)
        if ds is None:
            raise ApiError.of(bc.DatasetNotFoundError, f"no dataset {name!r}; this server has {sorted(self._datasets)}",
                              {"dataset": name, "datasets": sorted(self._datasets)})
        broken = self._broken.get(name)
        if broken is not None:
            status, code = status_of(broken)
            raise ApiError(status, code, f"dataset {name!r} cannot be read: {broken}", {"dataset": name})
        return ds

    def refresh(self) -> list[str]:
        """Stat every info; reopen the datasets whose info changed. Blocking. Returns the
        names reloaded (or newly broken, or repaired)."""
        changed: list[str] = []
        for name, ds in list(self._datasets.items()):
            try:
                stamp = ds.store.stat(INFO_KEY)
                if stamp == ds.info_stamp and name not in self._broken:
                    continue
                fresh = Dataset.load(name, ds.url, ds.store)
            except bc.BigArraysError as exc:
                if isinstance(exc, bc.StorageError) and not isinstance(exc, bc.ReadOnlyError):
                    log.warning("dataset %r: cannot check its info (%s); serving what was read before", name, exc)
                    continue
                with self._lock:
                    if str(self._broken.get(name)) != str(exc):
                        log.warning("dataset %r: its info cannot be read any more: %s", name, exc)
                        self._broken[name] = exc
                        self.version += 1
                        changed.append(name)
                continue
            with self._lock:
                self._datasets[name] = fresh
                self._broken.pop(name, None)
                self.version += 1
            log.info("dataset %r: its info changed; reopened", name)
            changed.append(name)
        return changed
