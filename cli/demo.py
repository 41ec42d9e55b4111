"""``bigarrays demo``: build a local EM-like demo dataset (no network) and serve it.

Two datasets are made under ``--dir`` (default ``$BIGARRAYS_DEMO_DIR`` or
``~/.cache/bigarrays/demo``): ``em``, a uint8 image (raw + gzip), and ``seg``, its uint64
compressed_segmentation, each 256x256x128 voxels of 8x8x40 nm in 64^3 chunks with 3 mips
(2x2x1 steps). A marker file written last says the build finished: a re-run reuses a finished
build, and an interrupted one is detected and rebuilt. Then the command prints a curl line, a
Python client line and a Neuroglancer URL, and runs the server until interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bigarrays_core as bc
from bigarrays_core.ingest import ingest
from bigarrays_core.sources import ArraySource

__all__ = ["DEMO_SPEC", "DemoSpec", "add", "build_demo", "default_demo_dir", "demo_lines"]

NEUROGLANCER_APP = "https://neuroglancer-demo.appspot.com/"
MARKER = "bigarrays-demo.json"


@dataclass(frozen=True)
class DemoSpec:
    """What the demo builds; the marker records it, so a changed spec forces a rebuild."""

    version: int = 2
    size: tuple[int, int, int] = (256, 256, 128)
    chunk_size: tuple[int, int, int] = (64, 64, 64)
    resolution: tuple[int, int, int] = (8, 8, 40)
    num_mips: int = 3
    downsample: tuple[int, int, int] = (2, 2, 1)
    seed: int = 0

    def to_json(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


DEMO_SPEC = DemoSpec()


def default_demo_dir() -> Path:
    """``$BIGARRAYS_DEMO_DIR``, else ``$XDG_CACHE_HOME/bigarrays/demo``, else ``~/.cache/bigarrays/demo``."""
    if os.environ.get("BIGARRAYS_DEMO_DIR"):
        return Path(os.environ["BIGARRAYS_DEMO_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "bigarrays" / "demo"


def _is_built(root: Path, spec: DemoSpec) -> bool:
    try:
        return bool(json.loads((root / MARKER).read_text()) == spec.to_json())
    except (OSError, ValueError):
        return False


def build_demo(root: Path, spec: DemoSpec = DEMO_SPEC, *, rebuild: bool = False,
               log: bool = True) -> tuple[dict[str, str], bool]:
    """Make (or reuse) the demo datasets under ``root``.

    Returns ``({"em": url, "seg": url}, built)`` where ``built`` is False when a finished
    build was reused. The marker file is written last, atomically; without it (an
    interrupted build) the datasets are deleted and made again.
    """
    from bigarrays_core.demo_data import make_demo_volume

    urls = {"em": (root / "em").resolve().as_uri(), "seg": (root / "seg").resolve().as_uri()}
    if not rebuild and _is_built(root, spec):
        return urls, False
    if log:
        print(f"building the demo datasets in {root} ...", file=sys.stderr, flush=True)
    (root / MARKER).unlink(missing_ok=True)
    for name in urls:
        shutil.rmtree(root / name, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    vol = make_demo_volume(spec.size, seed=spec.seed)
    common: dict[str, Any] = {"size": spec.size, "chunk_size": spec.chunk_size, "resolution": spec.resolution,
              "num_mips": spec.num_mips, "downsample_factor": spec.downsample}
    em = bc.create(urls["em"], dtype="uint8", encoding="raw", compression="gzip", layer_type="image", **common)
    seg = bc.create(urls["seg"], dtype="uint64", encoding="compressed_segmentation", layer_type="segmentation",
                    **common)
    for ba, data in ((em, vol.image), (seg, vol.segmentation)):
        ingest(ArraySource(data, name=ba.url), ba)
        bc.downsample(ba, mips=spec.num_mips - 1)  # average for the image, mode for the segmentation
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(spec.to_json()))
    os.replace(tmp, root / MARKER)
    return urls, True


def neuroglancer_url(base: str, names: Mapping[str, str], spec: DemoSpec = DEMO_SPEC) -> str:
    """A public Neuroglancer app URL whose state shows ``names`` (layer name -> "image"/"segmentation")."""
    state = {
        "dimensions": {a: [r * 1e-9, "m"] for a, r in zip("xyz", spec.resolution)},
        "position": [s / 2 for s in spec.size],
        "crossSectionScale": 1,
        "projectionScale": 512,
        "layers": [{"type": kind, "source": f"precomputed://{base}/precomputed/{name}", "name": name}
                   for name, kind in names.items()],
        "selectedLayer": {"layer": "seg", "visible": True},
        "layout": "4panel",
    }
    return NEUROGLANCER_APP + "#!" + urllib.parse.quote(json.dumps(state, separators=(",", ":")), safe="")


def demo_lines(base: str, spec: DemoSpec = DEMO_SPEC) -> list[str]:
    """The ready-to-paste lines: a curl cutout, a Python client one-liner, a Neuroglancer URL
    (and the two layer sources, for pasting into any Neuroglancer's "Add layer")."""
    c = spec.chunk_size
    box = f"0:{c[0]},0:{c[1]},0:{c[2]}"
    return [
        f'curl -s -o em.raw "{base}/v1/em/cutout/0/{box}?format=raw"',
        f"python -c 'import bigarrays_core as bc; em = bc.Client(\"{base}\")[\"em\"]; "
        f"print(em[0:{c[0]}, 0:{c[1]}, 0:{c[2]}].mean())'",
        neuroglancer_url(base, {"em": "image", "seg": "segmentation"}, spec),
        f"precomputed://{base}/precomputed/em   precomputed://{base}/precomputed/seg",
    ]


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise bc.BigArraysError(f"cannot serve on {host}:{port} ({exc.strerror}); pass another --port") from None


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="build a local EM-like demo dataset and serve it (no network needed)",
                       description="Build (or reuse) an EM-like image and its segmentation under --dir, then "
                                   "serve both and print a curl line, a Python line and a Neuroglancer URL.")
    p.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--dir", type=Path, default=None,
                   help="where the datasets live (default $BIGARRAYS_DEMO_DIR or ~/.cache/bigarrays/demo)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the datasets even if a finished build exists")
    p.add_argument("--no-serve", action="store_true", help="build and print the lines, but do not serve")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise bc.BigArraysError(f"--port {args.port} is not a TCP port (1-65535)")
    root = args.dir or default_demo_dir()
    if not args.no_serve:
        _check_port_free(args.host, args.port)
    urls, built = build_demo(root, rebuild=args.rebuild)
    print(f"{'built' if built else 'reusing'} demo datasets: " + ", ".join(f"{k}={v}" for k, v in urls.items()))
    base = f"http://{args.host}:{args.port}"
    print("\nTry, once the server is up:\n")
    for line in demo_lines(base):
        print(f"  {line}\n")
    sys.stdout.flush()
    if args.no_serve:
        return 0
    from bigarrays_server.runner import run

    print(f"serving {', '.join(urls)} on {base} (Ctrl-C to stop)", flush=True)
    run(urls, host=args.host, port=args.port)
    return 0
