#!/usr/bin/env python
"""Run the bigarrays benchmark suite against TensorStore and CloudVolume.

    python benchmarks/run.py                     # every case, 5 reps
    python benchmarks/run.py --case read_raw_aligned --case random --reps 7
    python benchmarks/run.py --quick             # small data, a smoke run
    PYTHONPATH=/tmp/proto python benchmarks/run.py --label proto   # A/B a patched bigarrays_core copy

Each case runs its subjects round-robin (rep 1 of every library, then rep 2, ...) after
one untimed warm-up round, prints a table of medians and ratios, and appends one JSON
line per rep and per summary to ``benchmarks/results/<timestamp>.jsonl``. Datasets are
built on first use in ``benchmarks/data/`` and reused afterwards. See README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import faulthandler
import gc
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bigarrays_bench.cases import CASES as CORE_CASES  # noqa: E402
from bigarrays_bench.cases import FULL_GEOMETRY, QUICK_GEOMETRY, Case, Env, Subject  # noqa: E402
from bigarrays_bench.codec_cases import CODEC_CASES, format_size_table, size_table  # noqa: E402
from bigarrays_bench.datasets import FULL, QUICK, ensure_datasets  # noqa: E402
from bigarrays_bench.libraries import LIBRARIES  # noqa: E402
from bigarrays_bench.memory import measure_memory  # noqa: E402
from bigarrays_bench.pyramids import PYRAMID_CASES  # noqa: E402
from bigarrays_bench.report import Summary, flat_summary, format_table, summarise  # noqa: E402

from bigarrays_core.kernels.paste import precompile as precompile_paste  # noqa: E402

MEMORY_CASE = "memory"
#: The size table of the codec cases (stored bytes per encoding), run with the "codecs" group.
SIZES_CASE = "codec_sizes"
CASES = CORE_CASES + CODEC_CASES + PYRAMID_CASES


def _parse(argv: list[str] | None) -> argparse.Namespace:
    names = sorted({c.name for c in CASES} | {c.group for c in CASES} | {MEMORY_CASE, SIZES_CASE})
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", action="append", default=[], metavar="NAME",
                   help=f"run only this case or group (repeatable): {', '.join(names)}")
    p.add_argument("--reps", type=int, default=7, help="timed reps per subject (default 7; use >= 5)")
    p.add_argument("--quick", action="store_true", help="small datasets and boxes: a smoke run, not a measurement")
    p.add_argument("--data", type=Path, default=HERE / "data", help="dataset directory (default benchmarks/data)")
    p.add_argument("--results", type=Path, default=HERE / "results", help="where the .jsonl goes")
    p.add_argument("--scratch", type=Path, default=None, metavar="DIR",
                   help="where cases write their outputs (default DATA/FLAVOUR/scratch); e.g. a tmpfs, to keep "
                        "the disk's state out of the write-heavy cases (see README, 'the disk's state')")
    p.add_argument("--label", default="", help="a tag for this run (e.g. the patch being tried), kept in the output")
    p.add_argument("--case-timeout", type=float, default=900, metavar="SECONDS",
                   help="a case still running after this long (a peer library hanging) ends the run: every "
                        "thread's stack on stderr, the case's servers stopped, exit status 3; the reps so far "
                        "stay in the results (default 900)")
    args = p.parse_args(argv)
    unknown = [n for n in args.case if n not in names]
    if unknown:
        p.error(f"unknown case {unknown[0]!r}; known: {', '.join(names)}")
    if args.reps < 1:
        p.error("--reps must be >= 1")
    if args.case_timeout <= 0:
        p.error("--case-timeout must be > 0")
    return args


def _time_round(subjects: list[Subject], unit: str) -> dict[str, float]:
    out = {}
    for s in subjects:
        if s.run is None:
            continue
        if s.before is not None:
            s.before()
        t0 = time.perf_counter()
        amount = s.run()
        dt = time.perf_counter() - t0
        out[s.label] = amount if s.direct else (amount / 1e6 if unit == "MB/s" else amount) / dt
    return out


def _watchdog(case: Case, env: Env, seconds: float) -> threading.Timer:
    """A started timer that, if not cancelled within ``seconds``, prints every thread's stack,
    stops the case's servers and clusters, and exits the process (status 3). A peer that
    deadlocks (seen once: CloudVolume's download threads in ``random_sharded``) would
    otherwise hold the run forever."""

    def expire() -> None:
        print(f"\n{case.name}: still running after {seconds:g} s; the stacks of every thread:",
              file=sys.stderr, flush=True)
        faulthandler.dump_traceback(all_threads=True)
        try:
            env.resources.close()
        finally:
            os._exit(3)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def _run_case(case: Case, env: Env, reps: int, emit: Any) -> tuple[list[Subject], dict[str, list[float]]]:
    subjects = case.prepare(env)
    _time_round(subjects, case.unit)  # warm-up: page cache, thread pools, lazy imports
    # The harness's own objects (every peer's modules, the datasets' checks: ~250k) are set aside
    # from the garbage collector while the case is timed: a full collection walks them all
    # (~70-130 ms), and it fell in whichever subject's rep happened to allocate at the time.
    gc.collect()
    gc.freeze()
    try:
        values: dict[str, list[float]] = {s.label: [] for s in subjects if s.run is not None}
        for rep in range(1, min(reps, case.max_reps or reps) + 1):
            for label, v in _time_round(subjects, case.unit).items():
                values[label].append(v)
                emit({"type": "rep", "case": case.name, "subject": label, "rep": rep, "value": v, "unit": case.unit})
    finally:
        gc.unfreeze()
    return subjects, values


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    sizes, geometry = (QUICK, QUICK_GEOMETRY) if args.quick else (FULL, FULL_GEOMETRY)
    wanted = set(args.case)
    cases = [c for c in CASES if not wanted or c.name in wanted or c.group in wanted]
    started = time.perf_counter()
    print(f"datasets ({sizes.name}) in {args.data / sizes.name} ...", flush=True)
    data = ensure_datasets(args.data / sizes.name, sizes)
    scratch = (args.scratch if args.scratch is not None else args.data / sizes.name / "scratch").resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    libraries = LIBRARIES()
    env = Env(data, sizes, geometry, scratch, libraries, quick=args.quick)
    # Cases measure a warmed-up process: bigarrays loads its numba region-copy kernel once a
    # process has copied 1 GiB (bigarrays_core/kernels/paste.py); load it now rather than in
    # the middle of whichever case crosses that line.
    precompile_paste(("uint8", "uint64"))

    args.results.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    tag = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in args.label)
    out_path = args.results / f"{stamp}{'-quick' if args.quick else ''}{'-' + tag if tag else ''}.jsonl"
    out = out_path.open("a")

    def emit(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    import bigarrays_core

    emit({"type": "run", "time": stamp, "label": args.label, "flavour": sizes.name, "reps": args.reps,
          "scratch": str(scratch), "cpus": os.cpu_count(), "bigarrays_core": str(Path(bigarrays_core.__file__).parent),
          "load_average": os.getloadavg(),
          "python": platform.python_version(), "machine": platform.platform(),
          "versions": {lib.name: lib.version() for lib in libraries}})
    summaries: list[Summary] = []
    flats: list[dict[str, Any]] = []
    for case in cases:
        t0 = time.perf_counter()
        print(f"{case.name}: {case.what} ...", end=" ", flush=True)
        watchdog = _watchdog(case, env, args.case_timeout)
        try:
            subjects, values = _run_case(case, env, args.reps, emit)
        finally:
            watchdog.cancel()
            env.resources.close()  # stop the case's servers
        if case.group == "flat":
            rows, flat = flat_summary(case, subjects, values)
            summaries += rows
            flats.append(flat)
            for r in rows:
                emit(r.to_json())
            emit(flat)
        else:
            s = summarise(case, subjects, values)
            summaries.append(s)
            emit(s.to_json())
        print(f"{time.perf_counter() - t0:.1f} s", flush=True)

    if not wanted or MEMORY_CASE in wanted:
        g = geometry
        box = [list(g.read_origin), [o + s for o, s in zip(g.read_origin, g.read_shape)]]
        print("memory: peak RSS / tracemalloc of one raw read vs its output ...", flush=True)
        mem = measure_memory(data["img_raw"], box, [lib.name for lib in libraries])
        for row in mem:
            emit({"type": "memory", "case": "memory_read_raw", "box": box, **row})
    else:
        mem = []

    sizes_rows = []
    if not wanted or SIZES_CASE in wanted or "codecs" in wanted:
        print("codec_sizes: stored bytes of the codec cases' data per encoding ...", flush=True)
        sizes_rows = size_table(env)
        for row in sizes_rows:
            emit(row)

    print()
    print(format_table(summaries, flats))
    if sizes_rows:
        print()
        print(format_size_table(sizes_rows))
    if mem:
        print()
        print("memory (one aligned raw read after a warm-up read of its size; peak growth / output size;"
              " 1.00 = only the output):")
        for row in mem:
            print(f"  {row['library']:12s} {row['mode']:12s} {row['peak_bytes'] / 1e6:9.1f} MB "
                  f"/ {row['output_bytes'] / 1e6:.1f} MB = {row['ratio']:.2f}")
    print(f"\nload average now {os.getloadavg()[0]:.1f} (above ~1.5, other jobs shared the 2 cores)")
    print(f"results: {out_path}  ({time.perf_counter() - started:.0f} s)")
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
