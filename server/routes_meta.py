"""Routes that describe the server: ``/v1/datasets``, ``/v1/{ds}/info``, ``/healthz``, ``/metrics``."""

from __future__ import annotations

from typing import Any

from bigarrays_server.formats import MEDIA_TYPES
from bigarrays_server.metrics import render
from bigarrays_server.routing import get_and_head
from bigarrays_server.state import StateDep
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

import bigarrays_core as bc

__all__ = ["router"]

router = APIRouter()


def _scale(ba: bc.BigArray) -> dict[str, Any]:
    b = ba.bounds
    return {
        "mip": ba.mip,
        "key": ba.key,
        "voxel_offset": list(ba.voxel_offset),
        "size": list(ba.shape[:3]),
        "bounds": b.to_colon(),
        "chunk_size": list(ba.chunk_size),
        "resolution": list(ba.resolution),
        "encoding": ba.encoding,
        "compression": ba.compression,
    }


@get_and_head(router, "/v1/datasets", summary="List the datasets")
def datasets(request: Request, state: StateDep) -> list[dict[str, Any]]:
    """Each dataset's name, shape, dtype and its Neuroglancer source URL; its storage URL
    (``url``) only when the server exposes storage URLs."""
    base = str(request.base_url).rstrip("/")
    expose = state.settings.expose_storage_urls
    return [{
        "name": ds.name,
        **({"url": ds.url} if expose else {}),
        "shape": list(ds.base.shape),
        "dtype": ds.base.dtype.name,
        "num_mips": len(ds.mips),
        "info_url": f"{base}/v1/{ds.name}/info",
        "precomputed_url": f"precomputed://{base}/precomputed/{ds.name}",
    } for ds in state.datasets]


@get_and_head(router, "/v1/{ds}/info", summary="A dataset's info, bounds and limits")
def info(ds: str, state: StateDep) -> dict[str, Any]:
    """The precomputed ``info`` plus what clients need: bounds per mip, dtype, axes, limits, formats."""
    d = state.datasets.get(ds)
    ba = d.base
    s = state.settings
    return {
        "name": d.name,
        "info": ba.info,
        "dtype": ba.dtype.name,
        "num_channels": ba.num_channels,
        "axes": ["x", "y", "z", "c"],
        "order": "F",
        "scales": [_scale(b) for b in d.mips],
        "limits": {"max_cutout_bytes": s.max_cutout_bytes, "max_plan_chunks": s.max_plan_chunks},
        "formats": {"cutout": MEDIA_TYPES, "chunk": {**MEDIA_TYPES, "encoded": "stored bytes"}},
        "writable": s.write_token is not None,
    }


@get_and_head(router, "/healthz", summary="Liveness")
def healthz(state: StateDep) -> JSONResponse:
    return JSONResponse({"status": "ok", "datasets": state.datasets.names()})


@router.get("/metrics", summary="Prometheus metrics of this worker", response_class=PlainTextResponse)
def metrics(state: StateDep) -> PlainTextResponse:
    return PlainTextResponse(render(state.metrics, state.cache), media_type="text/plain; version=0.0.4")
