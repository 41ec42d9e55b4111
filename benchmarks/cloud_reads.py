#!/usr/bin/env python
"""Read 512 chunks of 256 KiB from the S3 and GCS stand-ins: one bigarrays cutout against the SDKs.

    python benchmarks/cloud_reads.py               # 7 timed reps per subject
    python benchmarks/cloud_reads.py --reps 9 --threads 16

The dataset is a raw uint8 512³ volume in 64³ chunks (8 x 8 x 8 = 512 chunks x 256 KiB =
128 MiB), written once to a fresh bucket on moto's S3 server and on fake-gcs-server, both
started here on 127.0.0.1 (``tests/services.py``) and stopped by pid at the end.

Subjects, per store, each reading every chunk once per rep:

* ``bigarrays``: ``ba[:, :, :]``, i.e. fetch, decode and paste into one (x, y, z, c) array
  (fetching through obstore when it is installed, else through s3fs / gcsfs: see
  ``docs/cloud-storage.md``; the run prints which);
* S3 peers: ``boto3`` ``get_object`` in a ThreadPoolExecutor (``--threads``, default 16,
  ``max_pool_connections`` as many) and ``s3fs``'s batch ``cat`` on the same keys;
* GCS peers: ``gcsfs``'s batch ``cat`` on the same keys and ``google-cloud-storage``
  ``download_as_bytes`` in the same kind of thread pool.

The peers only fetch bytes (no array is assembled), so they are the ceiling of what a client
gets out of the stand-in. Each round runs every subject once (round-robin, after one untimed
warm-up round); the table shows median MiB/s, the median client CPU seconds per read (this
process, all threads) and bigarrays' ratio to the faster peer of its store. The target is
>= 1.0x. The stand-ins share the machine's cores with the client, so the numbers compare
clients against one emulator; they do not predict cloud throughput.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # before gcsfs is imported

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import bigarrays_core as bc  # noqa: E402
from bigarrays_core.kernels.paste import precompile as precompile_paste  # noqa: E402
from tests.services import (  # noqa: E402
    DUMMY_AWS_ENV,
    Service,
    create_gcs_bucket,
    create_s3_bucket,
    start_fake_gcs,
    start_moto,
)

SIDE, CHUNK = 512, 64
BUCKET = "bigarrays-bench"
PREFIX = "em"
MIB = float(1 << 20)
TOTAL_BYTES = SIDE**3


@dataclass
class Subject:
    """One way of reading every chunk; ``run`` returns the number of bytes it got."""

    store: str
    label: str
    run: Callable[[], int]
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def time_once(self) -> None:
        c0, t0 = time.process_time(), time.perf_counter()
        got = self.run()
        t1, c1 = time.perf_counter(), time.process_time()
        if got != TOTAL_BYTES:
            raise RuntimeError(f"{self.store}/{self.label} read {got} bytes, expected {TOTAL_BYTES}")
        self.seconds.append(t1 - t0)
        self.cpu.append(c1 - c0)

    def mib_s(self) -> float:
        return TOTAL_BYTES / MIB / statistics.median(self.seconds)


def chunk_keys() -> list[str]:
    n = SIDE // CHUNK
    return [f"1_1_1/{x * CHUNK}-{(x + 1) * CHUNK}_{y * CHUNK}-{(y + 1) * CHUNK}_{z * CHUNK}-{(z + 1) * CHUNK}"
            for z in range(n) for y in range(n) for x in range(n)]


def write_dataset(url: str, data: np.ndarray) -> None:
    ba = bc.create(url, dtype="uint8", size=(SIDE,) * 3, chunk_size=(CHUNK,) * 3, encoding="raw", overwrite=True)
    ba[:, :, :] = data


# -- subjects -----------------------------------------------------------------------------------


def bigarrays_subject(store: str, url: str, data: np.ndarray) -> Subject:
    ba = bc.open(url, read_only=True)
    print(f"bigarrays on {store} reads through {'obstore' if getattr(ba.store, '_reader', None) else 'fsspec'}")
    first = ba[:, :, :]
    if not np.array_equal(first, data):
        raise RuntimeError(f"bigarrays read of {url} differs from what was written")
    return Subject(store, "bigarrays", lambda: int(ba[:, :, :].nbytes))


def boto3_subject(endpoint: str, keys: list[str], threads: int) -> Subject:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    client = boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=threads))
    pool = ThreadPoolExecutor(threads)

    def get(key: str) -> int:
        return len(client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read())

    return Subject("s3", f"boto3 {threads} threads", lambda: sum(pool.map(get, keys)))


def s3fs_subject(endpoint: str, keys: list[str]) -> Subject:
    import s3fs  # type: ignore[import-untyped]

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    paths = [f"{BUCKET}/{PREFIX}/{k}" for k in keys]
    return Subject("s3", "s3fs cat", lambda: sum(len(v) for v in fs.cat(paths).values()))


def gcsfs_subject(endpoint: str, keys: list[str]) -> Subject:
    import gcsfs  # type: ignore[import-untyped]

    fs = gcsfs.GCSFileSystem(endpoint_url=endpoint, token="anon", project="test", skip_instance_cache=True)
    paths = [f"{BUCKET}/{PREFIX}/{k}" for k in keys]
    return Subject("gcs", "gcsfs cat", lambda: sum(len(v) for v in fs.cat(paths).values()))


def gcs_client_subject(keys: list[str], threads: int) -> Subject:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[import-untyped]

    client = storage.Client(project="test", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    bucket = client.bucket(BUCKET)
    pool = ThreadPoolExecutor(threads)

    def get(key: str) -> int:
        return len(bucket.blob(f"{PREFIX}/{key}").download_as_bytes(checksum=None))

    return Subject("gcs", f"google-cloud-storage {threads} threads", lambda: sum(pool.map(get, keys)))


# -- running ------------------------------------------------------------------------------------


def run_rounds(subjects: list[Subject], reps: int) -> None:
    for s in subjects:  # warm-up: connections, imports, first allocations
        s.run()
    for rep in range(reps):
        for s in subjects:
            s.time_once()
        print(f"  round {rep + 1}/{reps}: " + ", ".join(f"{s.store}/{s.label} {s.seconds[-1]:.2f}s" for s in subjects),
              flush=True)


def table(subjects: list[Subject]) -> str:
    lines = [f"{'store':<6} {'subject':<32} {'median MiB/s':>12} {'min..max s':>13} {'CPU s':>6} {'bigarrays/x':>11}"]
    for store in sorted({s.store for s in subjects}, reverse=True):
        group = [s for s in subjects if s.store == store]
        mine = next(s for s in group if s.label == "bigarrays")
        peers = [s for s in group if s is not mine]
        best = max(peers, key=Subject.mib_s)
        for s in group:
            ratio = mine.mib_s() / s.mib_s()
            lines.append(f"{store:<6} {s.label:<32} {s.mib_s():>12.1f} "
                         f"{min(s.seconds):>6.2f}..{max(s.seconds):<5.2f} {statistics.median(s.cpu):>6.2f} "
                         f"{ratio:>10.2f}x")
        verdict = "met" if mine.mib_s() >= best.mib_s() else "MISSED"
        lines.append(f"{store:<6} -> bigarrays / faster peer ({best.label}) = {mine.mib_s() / best.mib_s():.2f}x "
                     f"(target >= 1.0x: {verdict})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=7, help="timed rounds (default 7; medians need >= 5)")
    p.add_argument("--threads", type=int, default=16, help="threads of the boto3 / google-cloud-storage peers")
    p.add_argument("--only", choices=["s3", "gcs"], help="benchmark one store only")
    args = p.parse_args(argv)
    if args.reps < 5:
        p.error("--reps must be >= 5")
    os.environ.update(DUMMY_AWS_ENV)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        os.environ.pop(name, None)

    # A warmed-up process, as in run.py: the region-copy kernel bigarrays loads once a
    # process has copied 1 GiB is loaded now, not in the middle of the timed rounds.
    precompile_paste(("uint8",))
    data = np.random.default_rng(20261124).integers(0, 256, size=(SIDE,) * 3 + (1,), dtype=np.uint8)
    keys = chunk_keys()
    services: list[Service] = []
    try:
        subjects: list[Subject] = []
        if args.only in (None, "s3"):
            moto = start_moto()
            services.append(moto)
            os.environ["AWS_ENDPOINT_URL"] = moto.endpoint
            create_s3_bucket(moto.endpoint, BUCKET)
            url = f"s3://{BUCKET}/{PREFIX}"
            write_dataset(url, data)
            subjects += [bigarrays_subject("s3", url, data), boto3_subject(moto.endpoint, keys, args.threads),
                         s3fs_subject(moto.endpoint, keys)]
        if args.only in (None, "gcs"):
            gcs = start_fake_gcs()
            services.append(gcs)
            os.environ["STORAGE_EMULATOR_HOST"] = gcs.endpoint
            create_gcs_bucket(gcs.endpoint, BUCKET)
            url = f"gs://{BUCKET}/{PREFIX}"
            write_dataset(url, data)
            subjects += [bigarrays_subject("gcs", url, data), gcsfs_subject(gcs.endpoint, keys),
                         gcs_client_subject(keys, args.threads)]
        print(f"reading {len(keys)} chunks x {CHUNK**3 // 1024} KiB = {TOTAL_BYTES / MIB:.0f} MiB per read; "
              f"{args.reps} rounds, round-robin; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}")
        run_rounds(subjects, args.reps)
        print()
        print(table(subjects))
    finally:
        for s in services:
            s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
