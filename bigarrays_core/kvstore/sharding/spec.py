"""The sharding spec of a scale (``"sharding"`` in the info): which shard file and minishard
hold each chunk id.

``neuroglancer_uint64_sharded_v1``: a chunk id (for volumes, the compressed Morton code
of the chunk's grid cell, :mod:`bigarrays_core.geometry.morton`) is shifted right by
``preshift_bits`` and hashed (``identity``, or the low 64 bits of MurmurHash3_x86_128 of
its 8 little-endian bytes with seed 0); the hash's low ``minishard_bits`` bits are the
minishard, the next ``shard_bits`` bits the shard. Shard ``n`` is the file
``<scale key>/<n in lower-case hex, zero-padded to ceil(shard_bits / 4) digits>.shard``.

Pure: no I/O. Parsing names the bad field (``info.scales[i].sharding.<field>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mmh3
import numpy as np
import numpy.typing as npt

from bigarrays_core.errors import InfoError
from bigarrays_core.geometry.bbox import Vec3
from bigarrays_core.geometry.morton import MortonCode

__all__ = ["DATA_ENCODINGS", "HASHES", "SHARDING_TYPE", "ShardingSpec", "murmurhash3_x86_128_low64"]

SHARDING_TYPE = "neuroglancer_uint64_sharded_v1"
HASHES = ("identity", "murmurhash3_x86_128")
DATA_ENCODINGS = ("raw", "gzip")
_BIT_FIELDS = ("preshift_bits", "minishard_bits", "shard_bits")
_KNOWN = {"@type", "hash", "minishard_index_encoding", "data_encoding", *_BIT_FIELDS}


def murmurhash3_x86_128_low64(values: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """The low 64 bits of MurmurHash3_x86_128 (seed 0) of each uint64's 8 little-endian bytes.

    That is ``(h2 << 32) | h1`` of the hash's four 32-bit words ``h1..h4``: what
    ``mmh3.mmh3_x86_128_utupledigest(b, 0)[0]`` returns (the first of its two 64-bit halves).

    >>> [hex(h) for h in murmurhash3_x86_128_low64([0, 1, 42])]
    ['0x4772b084e028ae41', '0xe8bd67d616d4ce9a', '0xc20b94f95119f47a']
    """
    arr = np.ascontiguousarray(values, dtype="<u8").reshape(-1)
    raw = arr.tobytes()
    digest = mmh3.mmh3_x86_128_utupledigest
    return np.fromiter((digest(raw[8 * i:8 * i + 8], 0)[0] for i in range(len(arr))), dtype=np.uint64,
                       count=len(arr))


def _low_mask(bits: int) -> np.uint64:
    mask: np.uint64 = np.uint64((1 << min(bits, 64)) - 1)
    return mask


def _shift_right(values: npt.NDArray[np.uint64], bits: int) -> npt.NDArray[np.uint64]:
    """``values >> bits`` for 0 <= bits <= 64 (numpy leaves a shift by 64 undefined)."""
    if bits >= 64:
        return np.zeros(values.shape, dtype=np.uint64)
    out: npt.NDArray[np.uint64] = values >> np.uint64(bits)
    return out


@dataclass(frozen=True)
class ShardingSpec:
    """A validated ``neuroglancer_uint64_sharded_v1`` spec (see the module docstring)."""

    preshift_bits: int
    hash: str
    minishard_bits: int
    shard_bits: int
    minishard_index_encoding: str = "raw"
    data_encoding: str = "raw"

    def __post_init__(self) -> None:
        self._check("sharding")

    def _check(self, where: str) -> None:
        for name in _BIT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= 64:
                raise InfoError(f"{where}.{name}: expected an integer 0..64, got {v!r}", field=f"{where}.{name}")
        if self.minishard_bits + self.shard_bits > 64:
            raise InfoError(
                f"{where}.shard_bits: minishard_bits + shard_bits must be <= 64 (the hash has 64 bits), got "
                f"{self.minishard_bits} + {self.shard_bits}",
                field=f"{where}.shard_bits",
            )
        if self.hash not in HASHES:
            raise InfoError(f"{where}.hash: expected one of {list(HASHES)}, got {self.hash!r}",
                            field=f"{where}.hash")
        for name in ("minishard_index_encoding", "data_encoding"):
            v = getattr(self, name)
            if v not in DATA_ENCODINGS:
                raise InfoError(f"{where}.{name}: expected one of {list(DATA_ENCODINGS)}, got {v!r}",
                                field=f"{where}.{name}")

    @classmethod
    def from_json(cls, raw: Any, where: str = "sharding") -> ShardingSpec:
        """Parse the info's ``sharding`` object. Enums are read case-insensitively; a missing
        ``minishard_index_encoding`` or ``data_encoding`` means ``"raw"`` (as Neuroglancer,
        TensorStore and CloudVolume read it). Raises :class:`InfoError` naming ``where.<field>``.
        """
        if not isinstance(raw, Mapping):
            raise InfoError(f"{where}: expected an object, got {raw!r}", field=where)
        if raw.get("@type") != SHARDING_TYPE:
            raise InfoError(f"{where}.@type: expected {SHARDING_TYPE!r}, got {raw.get('@type')!r}",
                            field=f"{where}.@type")
        values: dict[str, Any] = {}
        for name in (*_BIT_FIELDS, "hash"):
            if name not in raw:
                raise InfoError(f"{where}.{name}: missing (required)", field=f"{where}.{name}")
            values[name] = raw[name]
        for name in ("hash", "minishard_index_encoding", "data_encoding"):
            v = raw.get(name, "raw")
            values[name] = v.lower() if isinstance(v, str) else v
        for name in _BIT_FIELDS:
            if isinstance(values[name], float) and values[name].is_integer():
                values[name] = int(values[name])
        spec = object.__new__(cls)
        for name, v in values.items():
            object.__setattr__(spec, name, v)
        spec._check(where)
        for name in _BIT_FIELDS:
            object.__setattr__(spec, name, int(getattr(spec, name)))
        return spec

    def to_json(self) -> dict[str, Any]:
        """The info's ``sharding`` object (lower-case enums, every field written)."""
        return {
            "@type": SHARDING_TYPE,
            "preshift_bits": self.preshift_bits,
            "hash": self.hash,
            "minishard_bits": self.minishard_bits,
            "shard_bits": self.shard_bits,
            "minishard_index_encoding": self.minishard_index_encoding,
            "data_encoding": self.data_encoding,
        }

    # -- where chunks go ------------------------------------------------------------------
    def hash_ids(self, chunk_ids: npt.ArrayLike) -> npt.NDArray[np.uint64]:
        """The hashed ids: ``hash(chunk_id >> preshift_bits)``."""
        shifted = _shift_right(np.asarray(chunk_ids, dtype=np.uint64).reshape(-1), self.preshift_bits)
        if self.hash == "identity":
            return shifted
        return murmurhash3_x86_128_low64(shifted)

    def locate(self, chunk_ids: npt.ArrayLike) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        """``(shard, minishard)`` numbers of each chunk id."""
        h = self.hash_ids(chunk_ids)
        minishard = h & _low_mask(self.minishard_bits)
        shard = _shift_right(h, self.minishard_bits) & _low_mask(self.shard_bits)
        return shard, minishard

    def locate_one(self, chunk_id: int) -> tuple[int, int]:
        """``(shard, minishard)`` of one chunk id, in plain Python (as :meth:`locate`)."""
        h = chunk_id >> self.preshift_bits if self.preshift_bits < 64 else 0
        if self.hash != "identity":
            h = mmh3.mmh3_x86_128_utupledigest(h.to_bytes(8, "little"), 0)[0]
        minishard = h & ((1 << self.minishard_bits) - 1)
        shard = (h >> self.minishard_bits) & ((1 << self.shard_bits) - 1)
        return shard, minishard

    def shard_name(self, shard: int) -> str:
        """The file name of shard ``shard``: ``"0a3f.shard"`` for 15 shard bits, ``"0.shard"`` for 0.

        >>> ShardingSpec(0, "identity", 0, 15).shard_name(0xa3f)
        '0a3f.shard'
        """
        return format(int(shard), "x").rjust(-(-self.shard_bits // 4), "0") + ".shard"

    @property
    def num_minishards(self) -> int:
        return 1 << self.minishard_bits

    @property
    def index_nbytes(self) -> int:
        """Bytes of a shard's index: 16 per minishard."""
        return 16 << self.minishard_bits

    def shard_shape_in_chunks(self, code: MortonCode) -> Vec3 | None:
        """Chunks per axis of every shard, when shards are boxes of the grid; else None.

        Shards are boxes (tiling the grid from its origin, clipped at its end) when the hash
        is ``identity`` and ``preshift_bits + minishard_bits + shard_bits`` covers every bit
        of the grid's Morton code: then a shard holds the chunks whose codes agree above
        the lowest ``preshift_bits + minishard_bits`` bits. With ``murmurhash3_x86_128``, or
        too few bits (several regions share a shard number), they are not.
        """
        total = code.total_bits
        if self.hash != "identity" or total > self.preshift_bits + self.minishard_bits + self.shard_bits:
            return None
        low = code.low_bits(min(self.preshift_bits + self.minishard_bits, total))
        x, y, z = (min(g, 1 << b) for g, b in zip(code.grid_shape, low))
        return (x, y, z)
