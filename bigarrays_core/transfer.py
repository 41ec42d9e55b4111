"""Transfers: :func:`transfer` copies a dataset, or a region of it, into another one.

The copy may change what is stored but never the voxels: another chunk size, encoding,
byte compression, sharding or bounds (every scale copied gets them), in a new dataset (whose info is
the source's, unknown fields kept, with those changes) or into an existing one (which must
have the source's dtype, channels and scale resolutions; options that contradict it are
refused). Voxel coordinates stay the same: voxel ``(x, y, z)`` of a scale of the source is
voxel ``(x, y, z)`` of that scale of the copy.

Each scale is copied like an ingest of that scale of the source
(:mod:`bigarrays_core.ingest`), so the same promises hold: tasks write whole destination
chunks (on this machine's threads or a Dask cluster, ``client=``); a destination chunk the
copied region covers only in part is merged with what the destination holds there, never
dropped; chunks the source does not store are skipped (a sparse volume stays sparse) and
all-zero chunks are not stored unless ``write_empty``. The transfer is **resumable**: its
finished tasks are recorded in the destination (:mod:`bigarrays_core.resume`), so running
the same transfer again after an interruption skips them, and running a finished one
writes nothing (``overwrite=True`` copies everything again). ``verify=True`` then reads
every copied region back from both datasets and compares them voxel for voxel.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bigarrays_core.api import open as open_dataset
from bigarrays_core.array import BigArray
from bigarrays_core.codecs import encoding_settings as settings_of
from bigarrays_core.errors import BigArraysError, DatasetNotFoundError, InfoError, OutOfBoundsError
from bigarrays_core.format import Info, create_info, write_info
from bigarrays_core.format.scales import coarsen_box, downsample_factor
from bigarrays_core.format.sharding import choose_sharding, scale_sharding
from bigarrays_core.geometry import Box
from bigarrays_core.ingest import ingest_group, ingest_stage
from bigarrays_core.jobs import Progress, Stage, run_stages
from bigarrays_core.kvstore import open_store
from bigarrays_core.resume import ProgressRecord, scale_fingerprint
from bigarrays_core.scale_writer import WriteReport
from bigarrays_core.sources import PrecomputedSource
from bigarrays_core.task_grid import LIST_ABOVE_TASKS, stored_boxes

__all__ = ["KEEP", "TransferPlan", "plan_transfer", "transfer"]

#: "Keep the source's" for options where None means something (no compression).
KEEP: Any = "keep"
#: Encodings that do not give back the voxels they were given.
_LOSSY = ("jpeg",)


def _ignore(n: int) -> None:
    pass


def _scale_entry(info: Info, raw: Mapping[str, Any], box: Box | None, chunk_size: Sequence[int] | None,
                 encoding: str | None, compression: Any, sharding: Any,
                 settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A source scale's info entry with the transfer's changes (see :func:`transfer`)."""
    entry = dict(raw)
    source_sharding = entry.pop("sharding", None)
    regrid = box is not None or (chunk_size is not None and [int(c) for c in chunk_size] != entry["chunk_sizes"][0])
    if box is not None:
        entry["voxel_offset"] = list(box.start)
        entry["size"] = list(box.shape)
    if chunk_size is not None:
        entry["chunk_sizes"] = [[int(c) for c in chunk_size]]
    else:
        entry["chunk_sizes"] = [list(entry["chunk_sizes"][0])]
    if encoding is not None and encoding != entry["encoding"]:
        for name in settings_of(entry["encoding"]) or ():  # the old encoding's settings go with it
            entry.pop(name, None)
        entry["encoding"] = encoding
        if encoding == "compressed_segmentation":
            entry["compressed_segmentation_block_size"] = [8, 8, 8]
    if settings:
        allowed = settings_of(entry["encoding"]) or ()
        for name, value in settings.items():
            if name not in allowed:
                raise InfoError(f"encoding_settings: {name!r} is not a setting of encoding {entry['encoding']!r} "
                                f"(its settings: {', '.join(allowed) or 'none'})", field=name)
            entry[name] = value
    if compression is not KEEP:
        entry.pop("compression", None)
        if compression is not None:
            probe = create_info(dtype="uint8", size=(1, 1, 1), compression=compression)
            entry["compression"] = probe.scales[0].compression
    if sharding is KEEP:
        sharding = source_sharding if source_sharding is None or not regrid else True
    if sharding is True:
        sharding = choose_sharding(entry["size"], entry["chunk_sizes"][0], info.dtype, info.num_channels,
                                   entry["encoding"]).to_json()
    if sharding:
        if compression is not KEEP and compression is not None:
            raise InfoError("compression: a sharded scale's chunks are compressed by its sharding's data_encoding; "
                            "compression= applies to unsharded destinations only", field="compression")
        entry.pop("compression", None)
        entry["sharding"] = dict(sharding)
    return entry


def _new_info(src: BigArray, mips: int, bounds: Box | None, chunk_size: Sequence[int] | None,
              encoding: str | None, compression: Any, sharding: Any, settings: Mapping[str, Any] | None) -> Info:
    raw = src.info
    scales = []
    for k in range(src.mip, src.mip + mips):
        box = None
        if bounds is not None:
            box = bounds
            for j in range(src.mip + 1, k + 1):
                box = coarsen_box(box, downsample_factor(src.parsed_info.scales[j - 1], src.parsed_info.scales[j]))
        scales.append(_scale_entry(src.parsed_info, raw["scales"][k], box, chunk_size, encoding, compression,
                                   sharding, settings))
    raw["scales"] = scales
    return Info(raw)


def _check_existing(src: BigArray, dst: BigArray, mips: int, chunk_size: Sequence[int] | None,
                    encoding: str | None, sharding: Any = KEEP) -> None:
    where = dst.url
    if dst.dtype != src.dtype or dst.num_channels != src.num_channels:
        raise InfoError(f"{where} holds {dst.num_channels} channel(s) of {dst.dtype.name}; the source "
                        f"{src.url} has {src.num_channels} of {src.dtype.name}", field="data_type")
    if dst.num_mips < mips:
        raise InfoError(f"{where} declares {dst.num_mips} scale(s); the transfer copies {mips}", field="scales")
    for j in range(mips):
        s, d = src.parsed_info.scales[src.mip + j], dst.parsed_info.scales[j]
        if tuple(s.resolution) != tuple(d.resolution):
            raise InfoError(f"{where} scale {j} has resolution {list(d.resolution)}, the source's scale "
                            f"{src.mip + j} {list(s.resolution)}", field=f"info.scales[{j}].resolution")
        if chunk_size is not None and tuple(chunk_size) != d.chunk_size:
            raise InfoError(f"{where} exists with chunk size {list(d.chunk_size)} at scale {j}, but chunk_size="
                            f"{list(chunk_size)} was asked for; transfer into a new URL or leave it out",
                            field="chunk_size")
        if encoding is not None and encoding != d.encoding:
            raise InfoError(f"{where} exists with encoding {d.encoding!r} at scale {j}, but encoding={encoding!r} "
                            f"was asked for; transfer into a new URL or leave it out", field="encoding")
        if sharding is not KEEP and bool(sharding) != (d.sharding is not None):
            raise InfoError(f"{where} exists {'with' if d.sharding is not None else 'without'} sharding at scale "
                            f"{j}, but sharding={sharding!r} was asked for; transfer into a new URL or leave it out",
                            field="sharding")


@dataclass(frozen=True)
class _Compare:
    """What a verify task needs: the two scales and the region copied."""

    src: BigArray
    dst: BigArray
    region: Box


def _verify_task(ctx: _Compare, box: Box) -> WriteReport:
    part = box.intersect(ctx.region)
    a, b = ctx.src.read(part), ctx.dst.read(part)
    if not np.array_equal(a, b) and not (a.dtype.kind == "f" and np.array_equal(a, b, equal_nan=True)):
        where = np.argwhere(a != b)[0]
        voxel = [int(s) + int(w) for s, w in zip(part.start, where[:3])]
        raise BigArraysError(f"verify: {ctx.dst.url} mip {ctx.dst.mip} differs from {ctx.src.url} mip "
                             f"{ctx.src.mip} in {part}, first at voxel {voxel} channel {int(where[3])}")
    return WriteReport()


@dataclass(frozen=True)
class TransferPlan:
    """A planned transfer: the destination (its info written), the copy's stages, the
    verification's stages (empty without ``verify``) and the job's description."""

    target: BigArray
    stages: list[Stage[Any, Any]]
    checks: list[Stage[Any, Any]]
    job: dict[str, Any]


def plan_transfer(src: BigArray | str, dst: str, *, mips: int | None = None, region: Box | str | None = None,
                  bounds: Box | str | None = None, chunk_size: Sequence[int] | None = None,
                  encoding: str | None = None, compression: Any = KEEP, sharding: Any = KEEP,
                  encoding_settings: Mapping[str, Any] | None = None, write_empty: bool = False,
                  verify: bool = False, **store_options: Any) -> TransferPlan:
    """Check the arguments of :func:`transfer`, create the destination's info if it has none
    and cut the copy into stages (run them with :func:`bigarrays_core.jobs.run_stages`).
    Raises as :func:`transfer`."""
    source = open_dataset(src, read_only=True) if isinstance(src, str) else src
    top = len(source.parsed_info.scales) - source.mip
    mips = top if mips is None else mips
    if isinstance(mips, bool) or not isinstance(mips, int) or not 1 <= mips <= top:
        raise ValueError(f"mips must be an integer from 1 to {top} (the scales of {source.url} from mip "
                         f"{source.mip}), got {mips!r}")
    region = Box.parse(region) if isinstance(region, str) else region
    bounds = Box.parse(bounds) if isinstance(bounds, str) else bounds
    store = open_store(dst, **store_options)
    try:
        target = open_dataset(store)
    except DatasetNotFoundError:
        info = _new_info(source, mips, bounds, chunk_size, encoding, compression, sharding, encoding_settings)
        from bigarrays_core.codecs import pipeline_for

        for scale in info.scales:  # an encoding the dtype cannot have fails here, before anything is written
            pipeline_for(scale, info.dtype, info.num_channels)
            scale_sharding(scale)
        write_info(store, info)
        target = BigArray(store, info, 0)
    else:
        if bounds is not None:
            raise InfoError(f"{target.url} exists: bounds= applies to a new destination only", field="bounds")
        if encoding_settings:
            raise InfoError(f"{target.url} exists: encoding_settings= applies to a new destination only",
                            field="encoding_settings")
        _check_existing(source, target, mips, chunk_size, encoding, sharding)
    if verify and target.encoding in _LOSSY:
        raise ValueError(f"verify cannot compare a {target.encoding} destination: it does not keep the voxels")
    box = source.bounds if region is None else region
    box = box.intersect(source.bounds).intersect(target.bounds)
    if box.is_empty:
        raise OutOfBoundsError(f"nothing to copy: region {region or source.bounds} of {source.url} mip {source.mip} "
                               f"does not meet the destination's bounds {target.bounds}")
    stages: list[Stage[Any, Any]] = []
    checks: list[Stage[Any, Any]] = []
    groups: list[list[int]] = []  # how each stage's tasks are cut: the record knows them by index
    part = box
    for j in range(mips):
        s, d = source.at_mip(source.mip + j), target.at_mip(j)
        if j:
            part = coarsen_box(part, downsample_factor(source.parsed_info.scales[source.mip + j - 1], s.scale))
        here = part.intersect(s.bounds).intersect(d.bounds)
        if here.is_empty:
            continue
        mip_source = PrecomputedSource(s, box=here)
        stage = ingest_stage(mip_source, d, here.start, write_empty=write_empty)
        if len(stage.tasks) > LIST_ABOVE_TASKS:  # a huge, probably sparse, source: only where it stores chunks
            stage = ingest_stage(mip_source, d, here.start, write_empty=write_empty, stored=stored_boxes(s))
        stages.append(Stage(f"transfer mip {j}", stage.run, stage.context, stage.tasks, stage.weights, stage.ids))
        groups.append(list(ingest_group(d, here)))
        if verify:
            checks.append(Stage(f"verify mip {j}", _verify_task, _Compare(s, d, here), stage.tasks))
    fingerprint = hashlib.sha256(json.dumps(source.info, sort_keys=True).encode()).hexdigest()
    job = {"kind": "transfer", "version": 1, "source": source.url, "mip": source.mip, "info": fingerprint,
           "region": [list(box.start), list(box.stop)], "write_empty": write_empty,
           "scales": [scale_fingerprint(target.at_mip(j)) for j in range(mips)], "groups": groups}
    return TransferPlan(target, stages, checks, job)


def transfer(src: BigArray | str, dst: str, *, mips: int | None = None, region: Box | str | None = None,
             bounds: Box | str | None = None, chunk_size: Sequence[int] | None = None, encoding: str | None = None,
             compression: Any = KEEP, sharding: Any = KEEP, encoding_settings: Mapping[str, Any] | None = None,
             write_empty: bool = False, overwrite: bool = False,
             resume: bool = True, verify: bool = False, client: Any = None, progress: Progress = _ignore,
             report: WriteReport | None = None, **store_options: Any) -> WriteReport:
    """Copy ``src`` (a :class:`BigArray`, or a URL: its mip 0) into the dataset at ``dst``.

    Parameters
    ----------
    mips:
        How many scales to copy, from ``src.mip`` up (default: all of them). Scale
        ``src.mip + j`` of the source becomes scale ``j`` of the destination.
    region:
        The voxels to copy (a box of ``src.mip``; each scale gets it rounded outwards). Default:
        all of the source inside the destination's bounds.
    bounds:
        For a new destination: its bounds at its first scale (default: the source's); the
        other scales get them rounded outwards. Voxels outside them are not copied.
    chunk_size, encoding, compression:
        For a new destination: its chunk size, encoding and byte compression (``None`` for
        none, ``"gzip"``, ``"zstd"``, ``"blosc"`` or a spec such as ``{"id": "gzip", "level":
        6}``); each defaults to the source's. For an existing one, a value that differs from
        what it has is an :class:`InfoError` (compression is then taken from it).
    sharding:
        For a new destination: ``True`` shards every scale with the spec
        :func:`~bigarrays_core.format.sharding.choose_sharding` picks for its grid (as
        ``bc.create(sharding=True)``), a dict is every scale's ``"sharding"`` object,
        ``False`` or None unshards. Default: a sharded source scale stays sharded, with its
        own spec when the grid is unchanged and the chosen one otherwise. Sharded chunks are
        compressed by the spec's ``data_encoding``, so ``compression`` must then be left out.
    encoding_settings:
        For a new destination: members of the encoding's settings, named as in the info
        (``{"jxl_quality": 100}``, ``{"zfpc_tolerance": 0.01}``); a scale keeps its source's
        settings when its encoding is unchanged, and drops them when it changes. A name that
        is not a setting of the destination's encoding is an :class:`InfoError`.
    write_empty:
        Also store chunks whose voxels are all zeros (chunks the source lacks stay missing).
    overwrite, resume:
        ``resume`` (default) records finished tasks in ``dst`` and skips those a run of the
        same transfer recorded; ``overwrite`` forgets them and copies everything again.
    verify:
        After copying, compare every copied region of both datasets (raises
        :class:`BigArraysError` naming the first voxel that differs). Not for lossy
        destinations (jpeg).
    client:
        ``None`` (this machine's threads), a ``distributed.Client`` or a scheduler address.
    store_options:
        Options for the destination's store (e.g. ``storage_options``).

    Returns the counts of chunks written, skipped and done before, added to ``report``.
    Raises :class:`InfoError` for options an existing destination contradicts or a bad
    encoding for the dtype, :class:`OutOfBoundsError` for a region that copies nothing,
    and what the stores raise.
    """
    plan = plan_transfer(src, dst, mips=mips, region=region, bounds=bounds, chunk_size=chunk_size,
                         encoding=encoding, compression=compression, sharding=sharding,
                         encoding_settings=encoding_settings, write_empty=write_empty,
                         verify=verify, **store_options)
    record = None
    if resume:
        record = ProgressRecord(plan.target.store, plan.job)
        if overwrite:
            record.reset()
    report = run_stages(plan.stages, client=client, record=record, progress=progress, report=report)
    if plan.checks:
        run_stages(plan.checks, client=client)
    return report
