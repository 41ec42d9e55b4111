"""``bigarrays serve``: serve datasets over HTTP (the REST cutout API and a Neuroglancer tree)."""

from __future__ import annotations

import argparse

from bigarrays_core.errors import BigArraysError


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


def run_serve(args: argparse.Namespace) -> int:
    try:
        from bigarrays_server.runner import run
    except ImportError as exc:  # a broken install: fastapi/uvicorn are dependencies
        raise BigArraysError(
            f"bigarrays serve needs fastapi and uvicorn, which bigarrays depends on; reinstall it ({exc})"
        ) from exc
    more = {"max_cutout_mb": args.max_cutout_mb, "log_level": args.log_level}
    if args.cors_origins:
        more["cors_origins"] = args.cors_origins
    run(parse_pairs(args.datasets), host=args.host, port=args.port, workers=args.workers,
        cache_mb=args.cache_mb, write_token=args.write_token, **more)
    return 0
