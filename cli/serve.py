"""``bigarrays serve``: serve datasets over HTTP (the REST cutout API and a Neuroglancer tree).

Before serving it prints, for every dataset, its Neuroglancer layer source and a link that
opens it in the public Neuroglancer app.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Mapping
from typing import Any

from bigarrays_core.errors import BigArraysError

NEUROGLANCER_APP = "https://neuroglancer-demo.appspot.com/"


def add(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve", help="serve datasets over HTTP (REST cutouts, Neuroglancer precomputed)",
        description="Serve each NAME=URL dataset: REST cutouts under /v1/NAME and a precomputed tree for "
                    "Neuroglancer at precomputed://http://HOST:PORT/precomputed/NAME. See docs/server.md.")
    p.add_argument("datasets", nargs="+", metavar="NAME=URL", help="dataset name and storage URL")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--cache-mb", type=float, default=512, help="decoded-chunk cache per worker, MiB (default 512)")
    p.add_argument("--write-token", default=None, help="bearer token that allows PUT (default: read-only)")
    p.add_argument("--max-cutout-mb", type=float, default=1024, help="largest cutout per request, MiB (default 1024)")
    p.add_argument("--cors-origin", action="append", dest="cors_origins", metavar="ORIGIN",
                   help="allowed browser origin (repeatable; default any origin)")
    p.add_argument("--cache-revalidate", type=float, default=None, metavar="SECONDS",
                   help="serve a cached chunk this long before checking storage for a newer one; 0 checks on every "
                        "request (default 1)")
    p.add_argument("--cache-control", default=None, metavar="VALUE",
                   help="Cache-Control of data answers (default 'public, no-cache': caches revalidate with the ETag; "
                        "e.g. 'public, max-age=3600' for data that does not change)")
    p.add_argument("--storage-timeout", type=float, default=None, metavar="SECONDS",
                   help="longest the storage work of one request may take, retries included, before a 504 "
                        "(default 30)")
    p.add_argument("--expose-storage-urls", action="store_true",
                   help="show clients the storage URLs of datasets (in /v1/datasets and error messages)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(run=run_serve)


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """``["em=file:///d"]`` -> ``{"em": "file:///d"}``; a malformed or repeated name is an error naming it."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name or not url:
            raise BigArraysError(f"dataset {pair!r} is not NAME=URL")
        if name in out:
            raise BigArraysError(f"dataset name {name!r} is given twice")
        out[name] = url
    return out


def neuroglancer_link(base: str, name: str, info: Mapping[str, Any]) -> str:
    """A public Neuroglancer app URL showing dataset ``name`` served at ``base``, centred on
    its finest scale (``info``: the dataset's precomputed info)."""
    scale = info["scales"][0]
    resolution = scale.get("resolution", [1, 1, 1])
    offset = scale.get("voxel_offset", [0, 0, 0])
    size = scale.get("size", [0, 0, 0])
    kind = "segmentation" if str(info.get("type", "image")).lower() == "segmentation" else "image"
    state = {
        "dimensions": {a: [r * 1e-9, "m"] for a, r in zip("xyz", resolution)},
        "position": [o + s / 2 for o, s in zip(offset, size)],
        "crossSectionScale": 1,
        "layers": [{"type": kind, "source": f"precomputed://{base}/precomputed/{name}", "name": name}],
        "layout": "4panel",
    }
    return NEUROGLANCER_APP + "#!" + urllib.parse.quote(json.dumps(state, separators=(",", ":")), safe="")


def link_lines(base: str, datasets: Mapping[str, str]) -> list[str]:
    """For each dataset: its layer source and Neuroglancer link (or why there is none)."""
    from bigarrays_server.datasets import Dataset

    lines = []
    for name, url in datasets.items():
        ds = Dataset.open(name, url, writable=False)
        lines.append(f"{name}: precomputed://{base}/precomputed/{name}")
        try:
            lines.append(f"  {neuroglancer_link(base, name, ds.raw_info)}")
        except (KeyError, IndexError, TypeError, ValueError):
            lines.append("  (no Neuroglancer link: its info gives no usable first scale)")
    return lines


def run_serve(args: argparse.Namespace) -> int:
    try:
        from bigarrays_server.runner import run
    except ImportError as exc:  # a broken install: fastapi/uvicorn are dependencies
        raise BigArraysError(
            f"bigarrays serve needs fastapi and uvicorn, which bigarrays depends on; reinstall it ({exc})"
        ) from exc
    datasets = parse_pairs(args.datasets)
    more: dict[str, Any] = {"max_cutout_mb": args.max_cutout_mb, "log_level": args.log_level}
    # Unset options leave the setting to its BIGARRAYS_* variable (then to its default).
    for name in ("cache_revalidate", "cache_control", "storage_timeout"):
        if getattr(args, name) is not None:
            more[name] = getattr(args, name)
    if args.expose_storage_urls:
        more["expose_storage_urls"] = True
    if args.cors_origins:
        more["cors_origins"] = args.cors_origins
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    base = f"http://{'[' + host + ']' if ':' in host else host}:{args.port}"
    print(f"serving on {base} (Ctrl-C to stop); Neuroglancer layers:")
    for line in link_lines(base, datasets):
        print(f"  {line}")
    sys.stdout.flush()
    run(datasets, host=args.host, port=args.port, workers=args.workers,
        cache_mb=args.cache_mb, write_token=args.write_token, **more)
    return 0
