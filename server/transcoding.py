"""What the ``/precomputed`` tree serves of each scale: as stored, or transcoded into an
encoding Neuroglancer decodes.

Owns: :data:`NEUROGLANCER_ENCODINGS`, :class:`ServedScale` (one scale's plan: the encoding
its chunks are served in, whether they are re-encoded, whether the scale is served as
chunk files although it is stored sharded), :func:`served_scale` (the plan of a readable
scale), :func:`served_info` (the info that describes what is served) and
:func:`transcode` (one decoded chunk in the served encoding).

The rules, for a scale the server can read:

* Its encoding is one Neuroglancer decodes (raw, jpeg, png, compressed_segmentation,
  compresso, jxl): chunks are served in it. Any other (crackle, fpzip, kempressed, zfpc, a
  registered one) is **transcoded**: ``compressed_segmentation`` (8x8x8 blocks, lossless)
  for ``uint32``/``uint64`` volumes, ``raw`` otherwise. Lossy encodings are transcoded from
  what bigarrays decodes, so every client sees the same voxels bigarrays reads.
* Byte compression (gzip, zstd, blosc, brotli; the scale's ``compression`` member or a
  stored content encoding) never reaches a client as part of the chunk: chunks are served
  plain, with a content coding on the wire when the request accepts one. The served info
  therefore drops ``compression`` (no client of the tree reads it; bigarrays would).
* A sharded scale whose shards hold chunks Neuroglancer decodes as stored (its encoding is
  served as is and it records no ``compression``) passes through: shard files, ranges and
  all. Any other sharded scale is served **unsharded**: the served info drops
  ``sharding`` and the tree answers the scale's chunk names (``x0-x1_y0-y1_z0-z1``), each
  read out of its shard and re-encoded; its shard files still pass through as stored.

Scales the server cannot read are left as stored (info and files): Neuroglancer reads
what it can of them. Pure functions over the core's codecs: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import bigarrays_core as bc
from bigarrays_core.codecs import ChunkCodec, chunk_codec, encoding_settings

__all__ = ["NEUROGLANCER_ENCODINGS", "SEGMENTATION_BLOCK", "ServedScale", "served_info", "served_scale",
           "transcode"]

#: The encodings Neuroglancer's precomputed source decodes itself.
NEUROGLANCER_ENCODINGS = frozenset({"raw", "jpeg", "png", "compressed_segmentation", "compresso", "jxl"})
#: The ``compressed_segmentation_block_size`` of transcoded segmentation scales.
SEGMENTATION_BLOCK = (8, 8, 8)
_SEGMENTATION_DTYPES = ("uint32", "uint64")


@dataclass(frozen=True)
class ServedScale:
    """How one readable scale is served under ``/precomputed``."""

    #: The encoding its chunks are served in.
    encoding: str
    #: Whether chunks are decoded and re-encoded into :attr:`encoding` (the stored encoding differs).
    transcoded: bool
    #: Whether the scale is stored sharded but served as chunk files (its info without ``sharding``).
    unsharded: bool
    #: The members of the served scale's JSON that replace the stored ones (transcoded scales).
    members: tuple[tuple[str, Any], ...] = ()
    #: Whether the tree answers the scale's chunk names (False: a sharded scale passed through).
    chunk_files: bool = True
    #: The codec that writes :attr:`encoding` (transcoded scales only).
    codec: ChunkCodec | None = None

    def tag(self) -> str:
        """The part of a chunk's entity tag that names what it is served as."""
        if not self.transcoded:
            return "stored"
        return "as:" + ",".join(f"{k}={v}" for k, v in (("encoding", self.encoding), *self.members))


def served_scale(ba: bc.BigArray) -> ServedScale:
    """The plan of a scale the server reads (see the module docstring)."""
    stored_sharded = getattr(ba.scale_io, "sharding", None) is not None
    if ba.encoding in NEUROGLANCER_ENCODINGS:
        unsharded = stored_sharded and ba.compression is not None
        return ServedScale(ba.encoding, False, unsharded, chunk_files=unsharded or not stored_sharded)
    dtype = np.dtype(ba.dtype)
    if dtype.name in _SEGMENTATION_DTYPES:
        members: tuple[tuple[str, Any], ...] = (("compressed_segmentation_block_size", list(SEGMENTATION_BLOCK)),)
        encoding = "compressed_segmentation"
    else:
        members, encoding = (), "raw"
    codec = chunk_codec(encoding, dtype, ba.num_channels, dict(members))
    return ServedScale(encoding, True, stored_sharded, members, chunk_files=True, codec=codec)


def served_info(raw_info: dict[str, Any], plans: Sequence[ServedScale | None]) -> dict[str, Any]:
    """The info the ``/precomputed`` tree serves: ``raw_info`` with each planned scale
    (``plans[mip]``; None for a scale left as stored) describing what is served.

    Members dropped from a served scale: ``compression``; ``sharding`` when served
    unsharded; and for a transcoded scale the stored encoding's settings (``jxl_quality``,
    ``zfpc_tolerance``, ...), replaced by the served encoding's. ``raw_info`` is not changed.
    """
    info = copy.deepcopy(raw_info)
    scales = info.get("scales")
    if not isinstance(scales, list):
        return info
    for mip, plan in enumerate(plans):
        if plan is None or mip >= len(scales) or not isinstance(scales[mip], dict):
            continue
        scale = scales[mip]
        scale.pop("compression", None)
        if plan.unsharded:
            scale.pop("sharding", None)
        if plan.transcoded:
            stored = str(scale.get("encoding", "")).lower()
            for member in encoding_settings(stored) or ():
                scale.pop(member, None)
            scale["encoding"] = plan.encoding
            scale.update(copy.deepcopy(dict(plan.members)))
    return info


def transcode(plan: ServedScale, chunk: np.ndarray, where: str) -> bytes:
    """The bytes of a decoded ``(x, y, z, c)`` chunk in the served encoding. Blocking.

    Raises :class:`~bigarrays_core.errors.ChunkEncodeError` naming ``where`` if the chunk
    cannot be encoded (it always can for raw and compressed_segmentation of its dtype).
    """
    assert plan.codec is not None, "transcode() is for transcoded scales"
    try:
        return plan.codec.encode(chunk)
    except Exception as exc:  # codec libraries raise their own error types
        raise bc.ChunkEncodeError(f"cannot transcode {where} to {plan.encoding}: {exc}") from exc
