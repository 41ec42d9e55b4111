"""The benchmark cases of benchmarks/README.md, each turned into timed *subjects*.

A case prepares one subject per library (or, for the flat-volume case, per library and
volume size). A subject's ``run()`` does the timed work once and returns how much it did
(decoded bytes, or cutouts); the runner times it and turns that into MB/s or cutouts/s.
Opening datasets, making source data and choosing cutout origins happen in ``prepare``,
outside the timing. Every random choice is seeded, so all libraries get the same work.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import bigarrays_core as bc
from bigarrays_bench.datasets import CHUNK, IMG_SHARDING, DatasetSizes
from bigarrays_bench.libraries import Box3, Library, Unsupported

__all__ = ["CASES", "Case", "Env", "Geometry", "Subject", "Target"]


@dataclass(frozen=True)
class Geometry:
    """Box sizes and counts of one flavour of the suite."""

    read_shape: tuple[int, int, int]
    read_origin: tuple[int, int, int]
    shift: tuple[int, int, int]
    cseg_shape: tuple[int, int, int]
    cseg_origin: tuple[int, int, int]
    random_raw: int  # cutouts per rep
    random_cseg: int
    write_shape: tuple[int, int, int]
    flat_exponents: tuple[int, ...]  # declared volume sizes 10**e bytes
    flat_shape: tuple[int, int, int]
    flat_cutouts: int


FULL_GEOMETRY = Geometry(read_shape=(512, 512, 256), read_origin=(256, 256, 128), shift=(13, 27, 5),
                         cseg_shape=(384, 384, 256), cseg_origin=(64, 64, 128), random_raw=300, random_cseg=60,
                         write_shape=(512, 512, 256), flat_exponents=(9, 10, 11, 12, 13, 14, 15),
                         flat_shape=(128, 128, 128), flat_cutouts=40)
QUICK_GEOMETRY = Geometry(read_shape=(128, 128, 64), read_origin=(64, 64, 0), shift=(13, 27, 5),
                          cseg_shape=(96, 96, 64), cseg_origin=(0, 0, 64), random_raw=30, random_cseg=10,
                          write_shape=(128, 128, 64), flat_exponents=(9, 12, 15),
                          flat_shape=(64, 64, 64), flat_cutouts=3)


@dataclass
class Env:
    """What cases need: the datasets, their sizes, the geometry, a scratch directory, the libraries."""

    data: dict[str, Path]
    sizes: DatasetSizes
    geometry: Geometry
    scratch: Path
    libraries: list[Library]
    seed: int = 12345
    #: Processes a case started (servers); the runner closes it after the case.
    resources: ExitStack = field(default_factory=ExitStack)
    quick: bool = False


@dataclass(frozen=True)
class Target:
    """bigarrays must reach ``ratio`` times ``peer``'s median."""

    peer: str
    ratio: float


@dataclass
class Subject:
    """One timed thing: ``run()`` returns the amount of work done (bytes or cutouts)."""

    label: str
    library: str
    run: Callable[[], float] | None
    cant: str | None = None  # why the library cannot do it (run is None then)
    params: dict[str, object] = field(default_factory=dict)
    #: True when run() returns the rate itself (e.g. wrk's requests/s), not an amount to time.
    direct: bool = False
    #: Untimed preparation before each round (e.g. removing what the last round wrote).
    before: Callable[[], None] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    unit: str  # "MB/s" or "cutouts/s"
    what: str
    target: Target | None
    prepare: Callable[[Env], list[Subject]]
    max_reps: int | None = None  # cap for slow cases (the server load test)


def _box(origin: tuple[int, int, int], shape: tuple[int, int, int]) -> Box3:
    return (origin, (origin[0] + shape[0], origin[1] + shape[1], origin[2] + shape[2]))


def _per_library(env: Env, path: Path, make: Callable[[Library, object], Callable[[], float]],
                 compression: str | None = None, for_write: bool = False) -> list[Subject]:
    subjects = []
    for lib in env.libraries:
        try:
            handle = lib.open(path, compression=compression, for_write=for_write)
        except Unsupported as exc:
            subjects.append(Subject(lib.name, lib.name, None, cant=str(exc)))
            continue
        subjects.append(Subject(lib.name, lib.name, make(lib, handle)))
    return subjects


def _read_case(dataset: str, shifted: bool, compression: str | None = None,
               cseg: bool = False) -> Callable[[Env], list[Subject]]:
    def prepare(env: Env) -> list[Subject]:
        g = env.geometry
        origin, shape = (g.cseg_origin, g.cseg_shape) if cseg else (g.read_origin, g.read_shape)
        if shifted:
            origin = tuple(o + s for o, s in zip(origin, g.shift))  # type: ignore[assignment]
        box = _box(origin, shape)

        def make(lib: Library, handle: object) -> Callable[[], float]:
            def run() -> float:
                return float(handle.read(box).nbytes)  # type: ignore[attr-defined]
            return run

        return _per_library(env, env.data[dataset], make, compression)
    return prepare


def _random_case(dataset: str, cseg: bool) -> Callable[[Env], list[Subject]]:
    def prepare(env: Env) -> list[Subject]:
        g = env.geometry
        size = env.sizes.seg if cseg else env.sizes.image
        n = g.random_cseg if cseg else g.random_raw
        rng = np.random.default_rng(env.seed + (1 if cseg else 0))
        origins = [tuple(int(rng.integers(0, s - 64 + 1)) for s in size) for _ in range(n)]
        boxes = [_box(o, (64, 64, 64)) for o in origins]  # type: ignore[arg-type]

        def make(lib: Library, handle: object) -> Callable[[], float]:
            def run() -> float:
                for b in boxes:
                    handle.read(b)  # type: ignore[attr-defined]
                return float(len(boxes))
            return run

        return _per_library(env, env.data[dataset], make)
    return prepare


def _write_case(compression: str | None) -> Callable[[Env], list[Subject]]:
    def prepare(env: Env) -> list[Subject]:
        g = env.geometry
        box = _box((0, 0, 0), g.write_shape)
        data = np.asfortranarray(bc.open(str(env.data["img_raw"])).read(bc.Box(*box)))
        subjects = []
        for lib in env.libraries:
            path = env.scratch / f"write_{compression or 'raw'}_{lib.name}"
            if path.exists():
                shutil.rmtree(path)
            # The info is made by bigarrays for every library; only bigarrays records the
            # compression in it (CloudVolume compresses by its own ``compress`` option).
            bc.create(str(path), dtype="uint8", size=env.sizes.image, chunk_size=CHUNK, resolution=(8, 8, 40),
                      layer_type="image", compression=compression if lib.name == "bigarrays" else None)
            try:
                handle = lib.open(path, compression=compression, for_write=True)
            except Unsupported as exc:
                subjects.append(Subject(lib.name, lib.name, None, cant=str(exc)))
                continue

            def run(handle: object = handle) -> float:
                handle.write(box, data)  # type: ignore[attr-defined]
                return float(data.nbytes)
            subjects.append(Subject(lib.name, lib.name, run))
        return subjects
    return prepare


def _write_sharded_prepare(env: Env) -> list[Subject]:
    """Write one whole shard (512x512x256 in the full suite) at the origin of a fresh dataset
    sharded like ``img_sharded``; every rep replaces that shard."""
    g = env.geometry
    box = _box((0, 0, 0), g.write_shape)
    data = np.asfortranarray(bc.open(str(env.data["img_raw"])).read(bc.Box(*box)))
    subjects = []
    for lib in env.libraries:
        path = env.scratch / f"write_sharded_{lib.name}"
        if path.exists():
            shutil.rmtree(path)
        bc.create(str(path), dtype="uint8", size=env.sizes.image, chunk_size=CHUNK, resolution=(8, 8, 40),
                  layer_type="image", sharding=IMG_SHARDING)
        try:
            handle = lib.open(path, for_write=True)
            handle.write(box, data)  # a trial: CloudVolume writes only some sharded boxes
        except Unsupported as exc:
            subjects.append(Subject(lib.name, lib.name, None, cant=str(exc)))
            continue
        except Exception as exc:  # a peer's own refusal, reported as "can't"
            subjects.append(Subject(lib.name, lib.name, None, cant=f"{type(exc).__name__}: {exc}"[:200]))
            continue

        def run(handle: object = handle) -> float:
            handle.write(box, data)  # type: ignore[attr-defined]
            return float(data.nbytes)
        subjects.append(Subject(lib.name, lib.name, run))
    return subjects


def _flat_side(exponent: int) -> int:
    """The side of a cubic uint8 volume of about ``10**exponent`` bytes, a multiple of the chunk size."""
    side = round(10 ** (exponent / 3))
    return -(-side // CHUNK[0]) * CHUNK[0]


#: Seconds the flat case waits after writing its datasets, before its first read (not in --quick).
FLAT_SETTLE_S = 15


def _flat_prepare(env: Env) -> list[Subject]:
    g = env.geometry
    rng = np.random.default_rng(env.seed + 2)
    subjects = []
    for e in g.flat_exponents:
        side = _flat_side(e)
        path = env.scratch / f"flat_1e{e}"
        if path.exists():
            shutil.rmtree(path)
        ba = bc.create(str(path), dtype="uint8", size=(side, side, side), chunk_size=CHUNK, resolution=(8, 8, 40),
                       layer_type="image")
        # The same unaligned cutout near the centre at every size, at the same place relative
        # to the chunk grid (so every size does identical work); only its chunks exist.
        centre = side // 2 // CHUNK[0] * CHUNK[0]
        origin = tuple(centre + s for s in (13, 27, 5))
        box = _box(origin, g.flat_shape)  # type: ignore[arg-type]
        aligned = ba.grid.expand_to_grid(bc.Box(*box))
        ba.write(aligned, rng.integers(0, 256, size=aligned.shape, dtype=np.uint8))
        label = f"1e{e} B"
        for lib in env.libraries:
            handle = lib.open(path)

            def run(handle: object = handle, box: Box3 = box) -> float:
                for _ in range(g.flat_cutouts):
                    handle.read(box)  # type: ignore[attr-defined]
                return float(g.flat_cutouts)
            subjects.append(Subject(f"{lib.name}@{label}", lib.name, run, params={"bytes": side**3, "side": side}))
    # Memory just written reads slower for a few seconds on the VMs this was measured on: a
    # process reading these datasets within ~5 s of their writing made 1,650-1,690 cutouts/s,
    # then 2,300; one started 15 s later, 2,240-2,360 from its first read. Without the wait
    # each library's reps switched between the two speeds at their own rep, and the median
    # ratio followed the switches (1.2 to 1.9 from run to run).
    os.sync()
    time.sleep(0 if env.quick else FLAT_SETTLE_S)
    return subjects


def _server_cutout(cache_mb: float) -> Callable[[Env], list[Subject]]:
    """The same read through ``bigarrays serve --workers 1 --cache-mb <cache_mb>`` and in-process.

    Over HTTP the project's own REST client reads the box (``bc.Client(url)["img"][box]``),
    which keeps nothing between reads. With the server's default chunk cache (512 MiB) the
    untimed warm-up round fills it, as the page cache is hot for the in-process read; with
    ``--cache-mb 0`` the server reads every chunk from disk at every rep.
    """
    def prepare(env: Env) -> list[Subject]:
        from bigarrays_bench.services import bigarrays_server

        g = env.geometry
        box = _box(g.read_origin, g.read_shape)
        (x0, y0, z0), (x1, y1, z1) = box
        ba = bc.open(str(env.data["img_raw"]))
        base = env.resources.enter_context(bigarrays_server(
            {"img": env.data["img_raw"]}, workers=1, cache_mb=cache_mb, log=env.scratch / "server.log"))
        remote = env.resources.enter_context(bc.Client(base, timeout=120))["img"]
        if not np.array_equal(remote[x0:x1, y0:y1, z0:z1], ba[x0:x1, y0:y1, z0:z1]):  # checked once, untimed
            raise RuntimeError(f"the cutout {bc.Box(*box)} over HTTP differs from the in-process read")

        def over_http() -> float:
            return float(remote[x0:x1, y0:y1, z0:z1].nbytes)

        def in_process() -> float:
            return float(ba[x0:x1, y0:y1, z0:z1].nbytes)

        return [Subject("bigarrays", "bigarrays", over_http,
                        params={"via": f"HTTP, bigarrays serve --cache-mb {cache_mb:g}, bigarrays_core.Client"}),
                Subject("in-process", "in-process", in_process)]
    return prepare


def _server_chunks_prepare(env: Env) -> list[Subject]:
    """wrk -t2 -c16 against one 256 KiB chunk: nginx serving the file vs the server's chunk
    route (cached, revalidated against the file every second as shipped)."""
    from bigarrays_bench.services import bigarrays_server, nginx, wrk_requests_per_second

    seconds = 1.0 if env.quick else 4.0
    root = env.data["img_raw"]
    chunk = bc.open(str(root)).chunks()[0]
    try:
        ngx = env.resources.enter_context(nginx(root, env.scratch / "nginx"))
    except FileNotFoundError as exc:
        ngx = None
        why = str(exc)
    srv = env.resources.enter_context(
        bigarrays_server({"img": root}, workers=2, cache_mb=512, log=env.scratch / "server.log"))
    subjects = [Subject("bigarrays", "bigarrays",
                        lambda: wrk_requests_per_second(f"{srv}/v1/img/chunks/0/{chunk.name}", seconds=seconds),
                        direct=True, params={"workers": 2, "cache_revalidate": 1})]
    if ngx is None:
        subjects.append(Subject("nginx", "nginx", None, cant=why))
    else:
        subjects.append(Subject("nginx", "nginx",
                                lambda: wrk_requests_per_second(f"{ngx}/{chunk.key}", seconds=seconds), direct=True))
    return subjects


def _remote_boxes(env: Env, kind: str) -> tuple[list[Box3], str]:
    """The boxes of a remote case (``aligned``, ``shifted``, ``random``) and its amount unit."""
    g = env.geometry
    if kind == "random":
        rng = np.random.default_rng(env.seed + 3)
        n = 20 if env.quick else 100
        origins = [tuple(int(rng.integers(0, s - 64 + 1)) for s in env.sizes.image) for _ in range(n)]
        return [_box(o, (64, 64, 64)) for o in origins], "cutouts"  # type: ignore[arg-type]
    origin = g.read_origin
    if kind == "shifted":
        origin = tuple(o + s for o, s in zip(origin, g.shift))  # type: ignore[assignment]
    return [_box(origin, g.read_shape)], "bytes"


def _timed_reads(handle: object, boxes: list[Box3], unit: str) -> Callable[[], float]:
    def run() -> float:
        total = 0
        for b in boxes:
            total += handle.read(b).nbytes  # type: ignore[attr-defined]
        return float(len(boxes) if unit == "cutouts" else total)
    return run


def _warm_workers(handle: object, boxes: list[Box3], rounds: int = 2) -> None:
    """Read ``boxes`` through a ``bigarrays serve --workers 2`` a few times, untimed, so that
    each worker's cache holds them, as a server's caches do after a while: the workers have
    separate caches, and the one warm-up round leaves a chunk only in the worker that served
    it (nginx's is the page cache both its workers share, warm after one round)."""
    for _ in range(rounds):
        for b in boxes:
            handle.read(b)  # type: ignore[attr-defined]


def _check_same(env: Env, handles: dict[str, object], boxes: list[Box3]) -> None:
    """Every reader gives the library's voxels (checked once, untimed)."""
    ba = bc.open(str(env.data["img_raw"]))
    for b in boxes[:3]:
        want = ba.read(bc.Box(*b))
        for name, h in handles.items():
            if not np.array_equal(np.asarray(h.read(b)).reshape(want.shape), want):  # type: ignore[attr-defined]
                raise RuntimeError(f"{name} read {b} differently from the library")


def _remote_case(kind: str) -> Callable[[Env], list[Subject]]:
    """Cutouts over HTTP: ``bc.Client`` against ``bigarrays serve --workers 2`` (as shipped:
    default cache, revalidated every second) vs TensorStore's and CloudVolume's HTTP readers
    on nginx (2 workers, sendfile) serving the same files."""
    def prepare(env: Env) -> list[Subject]:
        from bigarrays_bench.remote import bigarrays_client, cloudvolume_http, tensorstore_http
        from bigarrays_bench.services import bigarrays_server, nginx

        root = env.data["img_raw"]
        boxes, unit = _remote_boxes(env, kind)
        srv = env.resources.enter_context(
            bigarrays_server({"img": root}, workers=2, cache_mb=512, log=env.scratch / "server.log"))
        handle, client = bigarrays_client(srv, "img")
        env.resources.callback(client.close)
        _warm_workers(handle, boxes)
        handles: dict[str, object] = {"bigarrays": handle}
        subjects = [Subject("bigarrays", "bigarrays", _timed_reads(handle, boxes, unit),
                            params={"via": "bc.Client -> bigarrays serve --workers 2"})]
        try:
            ngx = env.resources.enter_context(nginx(root, env.scratch / "nginx"))
        except FileNotFoundError as exc:
            return subjects + [Subject(n, n, None, cant=str(exc)) for n in ("tensorstore", "cloudvolume")]
        for name, opener in (("tensorstore", tensorstore_http), ("cloudvolume", cloudvolume_http)):
            h = opener(f"{ngx}/")
            handles[name] = h
            subjects.append(Subject(name, name, _timed_reads(h, boxes, unit), params={"via": "nginx"}))
        _check_same(env, handles, boxes)
        return subjects
    return prepare


def _fileserver_case(kind: str) -> Callable[[Env], list[Subject]]:
    """TensorStore reading the volume's files from ``bigarrays serve --workers 2``'s
    ``/precomputed`` tree vs from nginx (2 workers, sendfile): the server as a file server,
    the way Neuroglancer loads chunks too."""
    def prepare(env: Env) -> list[Subject]:
        from bigarrays_bench.remote import tensorstore_http
        from bigarrays_bench.services import bigarrays_server, nginx

        root = env.data["img_raw"]
        boxes, unit = _remote_boxes(env, "random" if kind == "random" else "aligned")
        srv = env.resources.enter_context(
            bigarrays_server({"img": root}, workers=2, cache_mb=512, log=env.scratch / "server.log"))
        via_server = tensorstore_http(f"{srv}/precomputed/img/")
        _warm_workers(via_server, boxes)
        subjects = [Subject("bigarrays", "bigarrays", _timed_reads(via_server, boxes, unit),
                            params={"via": "TensorStore http kvstore -> bigarrays serve /precomputed"})]
        try:
            ngx = env.resources.enter_context(nginx(root, env.scratch / "nginx"))
        except FileNotFoundError as exc:
            return subjects + [Subject("nginx", "nginx", None, cant=str(exc))]
        via_nginx = tensorstore_http(f"{ngx}/")
        _check_same(env, {"server": via_server, "nginx": via_nginx}, boxes)
        return subjects + [Subject("nginx", "nginx", _timed_reads(via_nginx, boxes, unit),
                                   params={"via": "TensorStore http kvstore -> nginx"})]
    return prepare


def _compression_case(dataset: str, mb_per_s: float | None) -> Callable[[Env], list[Subject]]:
    """The same cutout through ``bc.Client`` plain, with zstd and with gzip on the wire, over
    loopback or a link throttled to ``mb_per_s``: when transport compression pays."""
    def prepare(env: Env) -> list[Subject]:
        from bigarrays_bench.remote import bigarrays_client
        from bigarrays_bench.services import bigarrays_server, throttled_link

        g = env.geometry
        root = env.data[dataset]
        shape = g.cseg_shape if dataset == "seg_cseg" else g.read_shape
        origin = g.cseg_origin if dataset == "seg_cseg" else g.read_origin
        if mb_per_s is not None:  # a slow link: a smaller box keeps a rep near a few seconds
            shape = (shape[0] // 2, shape[1] // 2, shape[2] // 2)
        boxes = [_box(origin, shape)]
        srv = env.resources.enter_context(
            bigarrays_server({"v": root}, workers=2, cache_mb=1024, log=env.scratch / "server.log"))
        if mb_per_s is not None:
            srv = env.resources.enter_context(throttled_link(int(srv.rsplit(":", 1)[1]), mb_per_s))
        subjects = []
        for label, coding in (("bigarrays", "zstd"), ("gzip", "gzip"), ("plain", None)):
            handle, client = bigarrays_client(srv, "v", transport_compression=coding)
            env.resources.callback(client.close)
            subjects.append(Subject(label, label, _timed_reads(handle, boxes, "bytes"),
                                    params={"transport_compression": coding, "link_mb_per_s": mb_per_s}))
        return subjects
    return prepare


CASES: list[Case] = [
    Case("read_raw_aligned", "read_raw", "MB/s", "read 512x512x256 uint8 raw, chunk-aligned",
         Target("tensorstore", 1.2), _read_case("img_raw", shifted=False)),
    Case("read_raw_shifted", "read_raw", "MB/s", "same, origin shifted by (13,27,5)",
         Target("tensorstore", 1.1), _read_case("img_raw", shifted=True)),
    Case("read_gzip_aligned", "read_gzip", "MB/s", "read 512x512x256 gzip, CloudVolume-written (level 9), aligned",
         Target("cloudvolume", 2.5), _read_case("img_gzip_cv", shifted=False, compression="gzip")),
    Case("read_gzip_shifted", "read_gzip", "MB/s", "read 512x512x256 gzip, CloudVolume-written (level 9), shifted",
         Target("cloudvolume", 2.5), _read_case("img_gzip_cv", shifted=True, compression="gzip")),
    Case("read_gzip_ba_aligned", "read_gzip", "MB/s", "read 512x512x256 gzip, bigarrays-written (level 1), aligned",
         Target("cloudvolume", 2.5), _read_case("img_gzip", shifted=False, compression="gzip")),
    Case("read_gzip_ba_shifted", "read_gzip", "MB/s", "read 512x512x256 gzip, bigarrays-written (level 1), shifted",
         Target("cloudvolume", 2.5), _read_case("img_gzip", shifted=True, compression="gzip")),
    Case("read_jpeg_aligned", "read_jpeg", "MB/s", "read 512x512x256 jpeg q75, aligned",
         Target("tensorstore", 1.1), _read_case("img_jpeg", shifted=False)),
    Case("read_cseg_aligned", "read_cseg", "MB/s", "read 384x384x256 uint64 compressed_segmentation",
         Target("tensorstore", 1.3), _read_case("seg_cseg", shifted=False, cseg=True)),
    Case("random_raw", "random", "cutouts/s", "64^3 cutouts at random origins, raw uint8",
         Target("tensorstore", 1.5), _random_case("img_raw", cseg=False)),
    Case("random_cseg", "random", "cutouts/s", "64^3 cutouts at random origins, uint64 cseg",
         Target("tensorstore", 1.2), _random_case("seg_cseg", cseg=True)),
    Case("write_raw_aligned", "write", "MB/s", "write 512x512x256 uint8 raw, aligned",
         Target("tensorstore", 1.1), _write_case(None)),
    Case("write_gzip_aligned", "write", "MB/s", "write 512x512x256 gzip (bigarrays level 1 vs CloudVolume default)",
         Target("cloudvolume", 5.0), _write_case("gzip")),
    Case("read_sharded_aligned", "sharded", "MB/s",
         "read 512x512x256 uint8 raw, gzip chunk data, TensorStore-written shards of 512x512x256, aligned",
         Target("tensorstore", 1.2), _read_case("img_sharded", shifted=False)),
    Case("read_sharded_shifted", "sharded", "MB/s", "same, origin shifted by (13,27,5)",
         Target("tensorstore", 1.2), _read_case("img_sharded", shifted=True)),
    Case("read_sharded_cseg_aligned", "sharded", "MB/s",
         "read 384x384x256 uint64 compressed_segmentation, TensorStore-written shards of 256^3",
         Target("tensorstore", 1.2), _read_case("seg_sharded", shifted=False, cseg=True)),
    Case("random_sharded", "sharded", "cutouts/s", "64^3 cutouts at random origins, sharded raw uint8 (gzip)",
         Target("tensorstore", 1.2), _random_case("img_sharded", cseg=False)),
    Case("random_sharded_cseg", "sharded", "cutouts/s", "64^3 cutouts at random origins, sharded uint64 cseg",
         Target("tensorstore", 1.2), _random_case("seg_sharded", cseg=True)),
    Case("write_sharded", "sharded", "MB/s", "write 512x512x256 uint8 as one whole shard (gzip chunk data)",
         Target("tensorstore", 1.0), _write_sharded_prepare),
    Case("server_chunks", "server", "req/s", "wrk -t2 -c16 on one cached 256 KiB chunk: server (2 workers) vs nginx",
         Target("nginx", 1.0), _server_chunks_prepare, max_reps=5),
    Case("remote_aligned", "remote", "MB/s", "512x512x256 over HTTP: bc.Client + bigarrays serve vs readers on nginx",
         Target("tensorstore", 2.0), _remote_case("aligned")),
    Case("remote_shifted", "remote", "MB/s", "same, origin shifted by (13,27,5)",
         Target("tensorstore", 2.0), _remote_case("shifted")),
    Case("remote_random", "remote", "cutouts/s", "100 64^3 cutouts at random origins over HTTP",
         Target("tensorstore", 2.0), _remote_case("random")),
    Case("fileserver_big", "fileserver", "MB/s", "TensorStore reading 512x512x256 from /precomputed vs from nginx",
         Target("nginx", 0.8), _fileserver_case("big")),
    Case("fileserver_random", "fileserver", "cutouts/s", "TensorStore, 100 random 64^3 from /precomputed vs nginx",
         Target("nginx", 0.8), _fileserver_case("random")),
    Case("server_cutout", "server", "MB/s",
         "512x512x256 raw cutout over HTTP (default server, warm cache) vs in-process (no target: informative)",
         None, _server_cutout(512)),
    Case("server_cutout_nocache", "server", "MB/s", "same, server with --cache-mb 0 (reads every chunk every time)",
         None, _server_cutout(0)),
    Case("wire_img_loopback", "wire", "MB/s", "512x512x256 image cutout, zstd / gzip / plain on the wire, loopback",
         None, _compression_case("img_raw", None)),
    Case("wire_img_100MBps", "wire", "MB/s", "256x256x128 image cutout over a 100 MB/s link: zstd / gzip / plain",
         None, _compression_case("img_raw", 100.0)),
    Case("wire_seg_loopback", "wire", "MB/s", "384x384x256 uint64 segmentation, zstd / gzip / plain, loopback",
         None, _compression_case("seg_cseg", None)),
    Case("wire_seg_100MBps", "wire", "MB/s", "192x192x128 uint64 segmentation over a 100 MB/s link",
         None, _compression_case("seg_cseg", 100.0)),
    Case("flat_cutout", "flat", "cutouts/s", "one 128^3 unaligned cutout as the declared volume grows 1 GB..1 PB",
         Target("tensorstore", 1.5), _flat_prepare),
]
