"""A scale's sharding: the spec of a sharded scale, checked against the scale, and the spec
bigarrays chooses for a new volume.

The info keeps each scale's ``sharding`` as the JSON object it was given; it is parsed
here when the scale is opened (:func:`scale_sharding`), so a bad spec fails that scale
only. Pure: no I/O.

Choosing a spec (:func:`choose_sharding`, what ``bc.create(..., sharding=True)`` writes),
as TensorStore and CloudVolume/igneous do for image volumes:

* ``hash`` identity, so every shard is a box of the chunk grid (chunks near in space are
  near in the file, and writes can be cut on shard boundaries);
* each shard holds ``2**w`` chunks with ``w = floor(log2(TARGET_SHARD_BYTES / chunk
  bytes))``, at least 0 and at most the grid's Morton bits: shards of at most
  :data:`TARGET_SHARD_BYTES` (512 MiB) uncompressed;
* ``preshift_bits = min(w, 9)``, ``minishard_bits = w - preshift_bits``: minishards of up to
  512 chunks (a 12 KiB index) and a small shard index (TensorStore's rule);
* ``shard_bits`` = the grid's Morton bits minus ``w``, so every chunk has its own place;
* ``minishard_index_encoding`` gzip; ``data_encoding`` gzip, except raw for jpeg and png,
  which are compressed already.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bigarrays_core.errors import InfoError
from bigarrays_core.geometry.morton import axis_bits
from bigarrays_core.kvstore.sharding import ShardingSpec

__all__ = ["MAX_PRESHIFT_BITS", "MAX_WRITE_MINISHARD_BITS", "TARGET_SHARD_BYTES", "choose_sharding",
           "scale_sharding"]

#: Uncompressed bytes a chosen shard holds at most.
TARGET_SHARD_BYTES = 512 << 20
#: Chunks per minishard of a chosen spec: at most ``2**MAX_PRESHIFT_BITS``.
MAX_PRESHIFT_BITS = 9
#: bigarrays writes shards whose index is at most 16 * 2**24 bytes.
MAX_WRITE_MINISHARD_BITS = 24
_IMAGE_CODECS = ("jpeg", "png")


def _grid_bits(size: Sequence[int], chunk_size: Sequence[int], where: str) -> int:
    grid = [-(-int(s) // int(c)) for s, c in zip(size, chunk_size)]
    bits = sum(axis_bits(grid))
    if bits > 64:
        raise InfoError(
            f"{where}: a chunk grid of {grid} cells needs {bits} bits of compressed Morton code; the sharded "
            "format allows at most 64 (use larger chunks)",
            field=where,
        )
    return bits


def scale_sharding(scale: Any) -> ShardingSpec | None:
    """The parsed sharding spec of a :class:`~bigarrays_core.format.Scale` (None when unsharded).

    Raises :class:`InfoError` naming ``info.scales[i].sharding.<field>`` for a bad spec, and
    the offending field when the scale cannot be sharded as it is: more than one chunk
    size, a grid needing more than 64 Morton bits, or a ``compression`` on top of gzip
    ``data_encoding`` (which would be applied twice).
    """
    if scale.sharding is None:
        return None
    where = f"info.scales[{scale.index}]"
    spec = ShardingSpec.from_json(scale.sharding, f"{where}.sharding")
    if len(scale.chunk_sizes) != 1:
        raise InfoError(f"{where}.chunk_sizes: a sharded scale has exactly one chunk size, got "
                        f"{[list(c) for c in scale.chunk_sizes]}", field=f"{where}.chunk_sizes")
    _grid_bits(scale.size, scale.chunk_size, f"{where}.sharding")
    if scale.compression is not None and spec.data_encoding == "gzip":
        raise InfoError(
            f"{where}.compression: the sharded scale's chunks are gzip'd by its data_encoding; a compression "
            f"({scale.compression['id']}) on top is not supported",
            field=f"{where}.compression",
        )
    return spec


def choose_sharding(size: Sequence[int], chunk_size: Sequence[int], dtype: Any, num_channels: int,
                    encoding: str, *, target_shard_bytes: int = TARGET_SHARD_BYTES,
                    where: str = "sharding") -> ShardingSpec:
    """The spec bigarrays writes for a volume of ``size`` voxels in ``chunk_size`` chunks
    (see the module docstring for the rule).

    >>> choose_sharding((1024, 1024, 512), (64, 64, 64), "uint8", 1, "raw").to_json()["minishard_bits"]
    2
    """
    total = _grid_bits(size, chunk_size, where)
    chunk_bytes = math.prod(int(c) for c in chunk_size) * np.dtype(dtype).itemsize * int(num_channels)
    within = 0
    while within < total and chunk_bytes << (within + 1) <= target_shard_bytes:
        within += 1
    preshift = min(within, MAX_PRESHIFT_BITS)
    return ShardingSpec(
        preshift_bits=preshift,
        hash="identity",
        minishard_bits=within - preshift,
        shard_bits=total - within,
        minishard_index_encoding="gzip",
        data_encoding="raw" if encoding in _IMAGE_CODECS else "gzip",
    )
