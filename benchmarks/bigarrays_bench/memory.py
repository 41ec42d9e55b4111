"""Peak memory of one cutout, measured in a fresh child process per library.

The child opens the dataset and warms up with a read of the same size elsewhere in the
volume (imports, thread pools, anything a library sets up on its first large read),
drops it (bigarrays also releases the memory it would recycle, so the measured read maps
its own output), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``, Linux >=
4.0), notes its resident set size, reads the measured box once and reports the growth of
its peak RSS (``VmHWM``) over that baseline. For bigarrays a second child reports
tracemalloc's peak (numpy and Python allocations only) during the same read. Both are
given as multiples of the cutout's output size: 1.0 is the floor (the output itself).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["measure_memory"]

_BENCH_DIR = str(Path(__file__).resolve().parent.parent)


def _child(lib_name: str, path: str, box_json: str, mode: str) -> None:
    """Entry point of the child process; prints one JSON object."""
    import psutil

    from bigarrays_bench.libraries import LIBRARIES

    box = json.loads(box_json)
    lib = next(lib for lib in LIBRARIES() if lib.name == lib_name)
    handle = lib.open(Path(path))
    (x0, y0, z0), (x1, y1, z1) = box
    # The same size at the volume's origin corner (the measured box is elsewhere).
    handle.read(((0, 0, 0), (x1 - x0, y1 - y0, z1 - z0)))  # dropped at once
    if lib_name == "bigarrays":  # release the warm-up's recycled memory: the read must map its own
        import bigarrays_core

        bigarrays_core.set_recycle_limit(0)
    proc = psutil.Process()
    if mode == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        out = handle.read((tuple(box[0]), tuple(box[1])))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(json.dumps({"peak": peak, "out": int(out.nbytes)}))
        return
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = proc.memory_info().rss
    out = handle.read((tuple(box[0]), tuple(box[1])))
    print(json.dumps({"peak": _vm_hwm() - base, "out": int(out.nbytes), "base": base}))


def _vm_hwm() -> int:
    """The process's peak resident set size since the last reset, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _run_child(lib: str, path: Path, box: Any, mode: str) -> dict[str, Any]:
    code = (f"import sys; sys.path.insert(0, {_BENCH_DIR!r}); from bigarrays_bench.memory import _child; "
            f"_child({lib!r}, {str(path)!r}, {json.dumps(box)!r}, {mode!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child for {lib} {mode} failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_memory(path: Path, box: Any, libraries: list[str]) -> list[dict[str, Any]]:
    """Rows ``{library, mode, peak_bytes, output_bytes, ratio}`` for reading ``box`` of ``path``."""
    rows = []
    for lib in libraries:
        modes = ["rss", "tracemalloc"] if lib == "bigarrays" else ["rss"]
        for mode in modes:
            r = _run_child(lib, path, box, mode)
            rows.append({"library": lib, "mode": mode, "peak_bytes": r["peak"], "output_bytes": r["out"],
                         "ratio": r["peak"] / r["out"]})
    return rows
