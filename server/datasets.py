"""The datasets a server worker serves: opened once at start-up, one BigArray per mip.

Owns: :class:`Dataset` and :class:`DatasetRegistry`, which turn a dataset name, a mip or
a scale key from a URL into a :class:`~bigarrays_core.BigArray`, or an :class:`ApiError`
404 naming what was not found.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from bigarrays_server.errors import ApiError

import bigarrays_core as bc

__all__ = ["Dataset", "DatasetRegistry"]


@dataclass
class Dataset:
    """One configured dataset: its name, URL and the BigArray of every mip bigarrays can read
    (``mips`` skips scales with a ``problem``, e.g. an encoding whose package is missing)."""

    name: str
    url: str
    mips: list[bc.BigArray] = field(default_factory=list)

    @classmethod
    def open(cls, name: str, url: str, *, writable: bool) -> Dataset:
        """Open every scale of the dataset at ``url`` (reads its ``info`` once).

        Reads are zero-filled outside the volume and for missing chunks (DESIGN.md §2);
        writes must be chunk-aligned.
        """
        base = bc.open(url, read_only=not writable)
        usable = [k for k, s in enumerate(base.parsed_info.scales) if k > 0 and s.usable]
        return cls(name, url, [base] + [base.at_mip(k) for k in usable])

    @property
    def base(self) -> bc.BigArray:
        return self.mips[0]

    def at(self, mip: int) -> bc.BigArray:
        """The BigArray of ``mip``; 404 when the dataset has no such scale, the scale's
        :class:`~bigarrays_core.InfoError` (502) when it cannot be read."""
        for ba in self.mips:
            if ba.mip == mip:
                return ba
        self._raise_if_unusable(mip)
        num_mips = self.base.num_mips
        raise ApiError(404, "not_found", f"dataset {self.name!r} has no mip {mip}; it has mips 0..{num_mips - 1}",
                       {"dataset": self.name, "mip": mip, "num_mips": num_mips})

    def _raise_if_unusable(self, mip: int) -> None:
        problem = self.base.parsed_info.problems.get(mip)
        if problem is not None:
            raise problem.error(f"dataset {self.name!r} mip {mip}")

    def by_scale_key(self, key: str) -> bc.BigArray:
        """The BigArray whose scale key is ``key``; 404 otherwise."""
        for ba in self.mips:
            if ba.key == key:
                return ba
        for scale in self.base.parsed_info.scales:
            if scale.key == key:
                self._raise_if_unusable(scale.index)
        raise ApiError(404, "not_found", f"dataset {self.name!r} has no scale with key {key!r}",
                       {"dataset": self.name, "scale_key": key, "scale_keys": [b.key for b in self.mips]})


class DatasetRegistry:
    """Name -> :class:`Dataset`, in the configured order."""

    def __init__(self, datasets: Mapping[str, Dataset]) -> None:
        self._datasets = dict(datasets)

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
        return iter(self._datasets.values())

    def get(self, name: str) -> Dataset:
        """The dataset called ``name``; 404 listing the known names otherwise."""
        ds = self._datasets.get(name)
        if ds is None:
            raise ApiError(404, "not_found", f"no dataset {name!r}; this server has {sorted(self._datasets)}",
                           {"dataset": name, "datasets": sorted(self._datasets)})
        return ds
