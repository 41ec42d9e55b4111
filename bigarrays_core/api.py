"""The composition root: ``open`` and ``create`` wire a store, an info and a BigArray."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bigarrays_core.array import BigArray
from bigarrays_core.errors import DatasetExistsError
from bigarrays_core.format import create_info, read_info, write_info
from bigarrays_core.kvstore import KVStore, open_store

__all__ = ["create", "open"]


def open(  # noqa: A001 - the name is the public API (README.md)
    url: str | KVStore,
    mip: int = 0,
    *,
    fill_missing: bool = True,
    bounded: bool = False,
    non_aligned_writes: bool = False,
    read_only: bool = False,
    **store_options: Any,
) -> BigArray:
    """Open scale ``mip`` of the precomputed dataset at ``url``.

    ``url`` is ``file://``, a plain path, ``memory://``, ``gs://``, ``s3://``, ``http(s)://``
    or any scheme with a registered store; ``store_options`` go to that store (e.g.
    ``storage_options={...}`` for fsspec stores, ``fsync=True`` for local ones).

    Raises :class:`DatasetNotFoundError` when there is no ``info``, :class:`InfoError`
    naming the field when it is malformed, or when ``mip`` does not exist.
    """
    store = open_store(url, read_only=read_only, **store_options) if not isinstance(url, KVStore) else url
    info = read_info(store)
    return BigArray(store, info, mip, fill_missing=fill_missing, bounded=bounded,
                    non_aligned_writes=non_aligned_writes)


def create(
    url: str | KVStore,
    *,
    dtype: Any,
    size: Sequence[int],
    chunk_size: Sequence[int] = (64, 64, 64),
    resolution: Sequence[float] = (1, 1, 1),
    voxel_offset: Sequence[int] = (0, 0, 0),
    num_channels: int = 1,
    encoding: str = "raw",
    compression: str | Mapping[str, Any] | None = "auto",
    layer_type: str | None = None,
    num_mips: int = 1,
    downsample_factor: Sequence[int] = (2, 2, 1),
    jpeg_quality: int | None = None,
    png_level: int | None = None,
    compressed_segmentation_block_size: Sequence[int] = (8, 8, 8),
    sharding: bool | Mapping[str, Any] | None = None,
    encoding_settings: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    fill_missing: bool = True,
    bounded: bool = False,
    non_aligned_writes: bool = False,
    **store_options: Any,
) -> BigArray:
    """Write a new ``info`` at ``url`` and return its mip 0 as a :class:`BigArray`.

    ``encoding`` is one of :data:`bigarrays_core.format.ENCODINGS`; ``encoding_settings`` holds
    its settings as CloudVolume names them in the info (``{"jxl_quality": 90}``, ...).
    ``compression`` is ``None``, ``"gzip"``, ``"zstd"``, ``"blosc"``, ``"br"`` (brotli) or an
    object such as ``{"id": "zstd", "level": 5}`` / ``{"id": "blosc", "cname": "lz4", "level": 5,
    "shuffle": 1}``; ``"auto"`` (the default) is gzip for compresso, crackle, fpzip and
    kempressed (their decoders trust their input; gzip's CRC-32 refuses a damaged chunk) and
    none otherwise. ``num_mips`` scales are declared, each
    ``downsample_factor`` coarser than the last.

    ``sharding=True`` stores every scale sharded (``neuroglancer_uint64_sharded_v1``) with
    the spec bigarrays picks for its grid, as TensorStore and CloudVolume/igneous do for
    volumes: identity hash (every shard a box of chunks), shards of at most 512 MiB of
    voxels (``2**w`` chunks, ``w = floor(log2(512 MiB / chunk bytes))``), ``preshift_bits =
    min(w, 9)``, ``minishard_bits = w - preshift_bits``, ``shard_bits`` the rest of the
    grid's Morton bits, gzip minishard indexes, and gzip chunk data except for jpeg and
    png (see :mod:`bigarrays_core.format.sharding`). A dict is the ``"sharding"`` object
    of every scale, validated. Sharded chunks are compressed by the spec's
    ``data_encoding``, so ``compression`` must be None then.

    Raises :class:`DatasetExistsError` if an info exists and ``overwrite`` is False, and
    :class:`InfoError` naming the argument that is invalid (nothing is written then).
    """
    info = create_info(
        dtype=dtype, size=size, chunk_size=chunk_size, resolution=resolution, voxel_offset=voxel_offset,
        num_channels=num_channels, encoding=encoding, compression=compression, layer_type=layer_type,
        num_mips=num_mips, downsample_factor=downsample_factor, jpeg_quality=jpeg_quality, png_level=png_level,
        compressed_segmentation_block_size=compressed_segmentation_block_size, sharding=sharding,
        encoding_settings=encoding_settings,
    )
    store = open_store(url, **store_options) if not isinstance(url, KVStore) else url
    if not overwrite and store.exists("info"):
        raise DatasetExistsError(f"a dataset already exists at {store.url}; pass overwrite=True to replace its info")
    # Build the codec once before writing anything, so an unusable combination fails here.
    from bigarrays_core.codecs import pipeline_for

    for scale in info.scales:
        pipeline_for(scale, info.dtype, info.num_channels)
    write_info(store, info)
    return BigArray(store, info, 0, fill_missing=fill_missing, bounded=bounded,
                    non_aligned_writes=non_aligned_writes)
