"""The pyramid and transfer cases: 3 mips of the image (average) and of the segmentation (mode),
against igneous and TensorStore; 2 Dask worker processes against 1; a raw -> gzip transfer
against CloudVolume's ``transfer_to``.

Each library works in its own copy of the dataset: a directory whose ``info`` has only the
source's scale 0 and whose scale-0 directory is a symlink to the benchmark data (read, never
written). The first (untimed, warm-up) round adds the scales; before every round the chunk
directories of the scales built are removed (untimed, the subject's ``before``), so every
round writes new files, as a first build does, by each library's own means:

- bigarrays: ``bc.downsample(ba, mips=3, factor=(2, 2, 1))`` (``auto``: average / mode), on
  this machine's threads (2), or ``client=`` a ``LocalCluster`` of 1 or 2 worker processes
  (one thread each) started once per case.
- igneous: ``create_downsampling_tasks(..., num_mips=3, factor=(2, 2, 1), compress=None)``
  run by ``LocalTaskQueue(parallel=2)`` (its default method: tinybrain's average / mode),
  task creation included (it is part of running igneous).
- TensorStore: for each mip ``k``, ``ts.downsample(mip k-1, [2, 2, 1, 1], "mean" | "mode")``
  written into scale ``k`` (created once with TensorStore), read back from the stored scale
  for the next one; default context (all cores).
- Transfer: ``bc.transfer(img_raw, dst, compression="gzip", resume=False)`` (gzip level 1,
  its default; also at level 9, report only) vs ``CloudVolume.transfer_to(dst, bounds,
  compress="gzip")`` (CloudVolume's default gzip level), into a destination removed before
  each round (outside the timing: the subject's ``before``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bigarrays_core as bc
from bigarrays_bench.cases import Case, Env, Subject, Target

__all__ = ["PYRAMID_CASES"]

MIPS = 3
FACTOR = (2, 2, 1)


def _mip0_copy(src: Path, dst: Path) -> Path:
    """``dst``: the info of ``src`` with scale 0 only, and a symlink to its scale-0 chunks."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    info = json.loads((src / "info").read_text())
    info["scales"] = info["scales"][:1]
    (dst / "info").write_text(json.dumps(info))
    key = info["scales"][0]["key"]
    os.symlink((src / key).resolve(), dst / key)
    return dst


def _count_bytes(path: Path, mips: int = MIPS) -> float:
    """Decoded bytes of the scales built (up to ``mips``; igneous makes fewer when a scale would be
    smaller than a chunk, as on ``--quick`` data): what a subject reports as its amount of work."""
    ba = bc.open(str(path))
    top = min(mips, ba.num_mips - 1)
    return float(sum(ba.at_mip(k).bounds.size for k in range(1, top + 1)) * ba.dtype.itemsize)


def _clear_mips(path: Path) -> Callable[[], None]:
    """Remove the chunk directories of every scale but 0 (kept in the info)."""
    def clear() -> None:
        info = json.loads((path / "info").read_text())
        for scale in info["scales"][1:]:
            shutil.rmtree(path / scale["key"], ignore_errors=True)
    return clear


def _bigarrays(path: Path, client: Any = None) -> Callable[[], float]:
    def run() -> float:
        bc.downsample(bc.open(str(path)), mips=MIPS, factor=FACTOR, client=client)
        return _count_bytes(path)

    return run


def _igneous(path: Path) -> Callable[[], float]:
    def run() -> float:
        import igneous.task_creation as tc
        from taskqueue import LocalTaskQueue

        tasks = tc.create_downsampling_tasks(f"file://{path}", mip=0, num_mips=MIPS, factor=FACTOR,
                                             compress=None, fill_missing=True)
        tq = LocalTaskQueue(parallel=2, progress=False)
        with contextlib.redirect_stdout(io.StringIO()):  # igneous prints the bounds of every job
            tq.insert(tasks)
            tq.execute(progress=False)
        return _count_bytes(path)

    return run


def _tensorstore(path: Path, method: str) -> Callable[[], float]:
    import tensorstore as ts

    spec = {"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/"}
    base = ts.open({**spec, "scale_index": 0}).result()
    info = json.loads((path / "info").read_text())
    s0 = info["scales"][0]
    scales = []
    for k in range(1, MIPS + 1):
        fine = scales[-1] if scales else base
        view = ts.downsample(fine, [*FACTOR, 1], method)
        lo, hi = view.domain.inclusive_min[:3], view.domain.exclusive_max[:3]
        meta: dict[str, Any] = {"size": [b - a for a, b in zip(lo, hi)], "voxel_offset": list(lo),
                                "chunk_size": s0["chunk_sizes"][0],
                                "resolution": [r * f**k for r, f in zip(s0["resolution"], FACTOR)],
                                "encoding": s0["encoding"]}
        if "compressed_segmentation_block_size" in s0:
            meta["compressed_segmentation_block_size"] = s0["compressed_segmentation_block_size"]
        scales.append(ts.open({**spec, "scale_metadata": meta, "create": True, "open": True}).result())

    def run() -> float:
        fine = base
        for out in scales:
            out.write(ts.downsample(fine, [*FACTOR, 1], method)).result()
            fine = out
        return _count_bytes(path)

    return run


def _downsample_prepare(dataset: str, ts_method: str) -> Any:
    def prepare(env: Env) -> list[Subject]:
        src = env.data[dataset]
        work = env.scratch / f"pyramid_{dataset}"
        paths = {name: _mip0_copy(src, work / name) for name in ("bigarrays", "igneous", "tensorstore")}
        return [Subject("bigarrays", "bigarrays", _bigarrays(paths["bigarrays"]),
                        before=_clear_mips(paths["bigarrays"])),
                Subject("igneous", "igneous", _igneous(paths["igneous"]), params={"parallel": 2},
                        before=_clear_mips(paths["igneous"])),
                Subject("tensorstore", "tensorstore", _tensorstore(paths["tensorstore"], ts_method),
                        before=_clear_mips(paths["tensorstore"]))]

    return prepare


def _cluster(env: Env, workers: int) -> Any:
    import distributed

    cluster = env.resources.enter_context(distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR))
    return env.resources.enter_context(distributed.Client(cluster))


def _dask_prepare(env: Env) -> list[Subject]:
    src = env.data["img_raw"]
    work = env.scratch / "pyramid_dask"
    # The 2-worker subject is "bigarrays" (the one the ratio is of); "dask-1" is the same on one worker.
    paths = {n: _mip0_copy(src, work / f"w{n}") for n in (2, 1)}
    return [Subject("bigarrays" if n == 2 else "dask-1", f"dask-{n}", _bigarrays(paths[n], _cluster(env, n)),
                    params={"workers": n}, before=_clear_mips(paths[n]))
            for n in (2, 1)]


def _transfer_prepare(env: Env) -> list[Subject]:
    from cloudvolume import CloudVolume

    src = env.data["img_raw"]
    work = env.scratch / "transfer"
    ba = bc.open(str(src))
    cv = CloudVolume(f"file://{src}", parallel=1, progress=False, fill_missing=True)

    def ours(dst: Path, level: int) -> Callable[[], float]:
        def run() -> float:
            bc.transfer(ba, str(dst), compression={"id": "gzip", "level": level}, resume=False)
            return float(ba.bounds.size)
        return run

    def theirs(dst: Path) -> Callable[[], float]:
        def run() -> float:
            cv.transfer_to(f"file://{dst}", cv.bounds, compress="gzip")
            return float(ba.bounds.size)
        return run

    subjects = []
    for label, lib, make, dst in (("bigarrays", "bigarrays", lambda d: ours(d, 1), work / "bigarrays"),
                                  ("bigarrays gzip 9", "bigarrays-9", lambda d: ours(d, 9), work / "bigarrays-9"),
                                  ("cloudvolume", "cloudvolume", theirs, work / "cloudvolume")):
        subjects.append(Subject(label, lib, make(dst), params={"dst": str(dst)},
                                before=lambda d=dst: shutil.rmtree(d, ignore_errors=True)))
    return subjects


PYRAMID_CASES: list[Case] = [
    Case("downsample_image", "pyramid", "MB/s",
         "3 mips (2,2,1) of the 1024x1024x512 uint8 image, average: MB of mips written per s",
         Target("igneous", 2.0), _downsample_prepare("img_raw", "mean")),
    Case("downsample_seg", "pyramid", "MB/s",
         "3 mips (2,2,1) of the 512^3 uint64 segmentation, mode: MB of mips written per s",
         Target("igneous", 2.0), _downsample_prepare("seg_cseg", "mode")),
    Case("downsample_dask", "pyramid", "MB/s",
         "the image's 3 mips on a LocalCluster of 2 worker processes vs 1 (1 thread each)",
         Target("dask-1", 1.6), _dask_prepare),
    Case("transfer_gzip", "transfer", "MB/s", "raw -> gzip copy of the 1024x1024x512 image (MB of voxels per s)",
         Target("cloudvolume", 2.0), _transfer_prepare),
]
