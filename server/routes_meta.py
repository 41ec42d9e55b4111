"""Routes that describe the server: ``/v1/datasets``, ``/v1/{ds}/info``, ``/healthz``, ``/metrics``."""

from __future__ import annotations

from typing import Any

from bigarrays_server.datasets import Dataset, ScaleSlot
from bigarrays_server.errors import status_of
from bigarrays_server.formats import MEDIA_TYPES
from bigarrays_server.images import IMAGE_MEDIA_TYPES
from bigarrays_server.metrics import render
from bigarrays_server.openapi import responses
from bigarrays_server.routing import get_and_head
from bigarrays_server.state import StateDep
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

__all__ = ["router"]

router = APIRouter()


def _scale(slot: ScaleSlot, dataset: Dataset) -> dict[str, Any]:
    ba = slot.array
    if ba is None:
        assert slot.error is not None
        status, code = status_of(slot.error)
        return {"mip": slot.mip, "key": slot.key, "readable": False,
                "error": {"status": status, "error": code, "message": str(slot.error)}}
    b = ba.bounds
    return {
        "mip": ba.mip,
        "key": ba.key,
        "readable": True,
        "voxel_offset": list(ba.voxel_offset),
        "size": list(ba.shape[:3]),
        "bounds": b.to_colon(),
        "chunk_size": list(ba.chunk_size),
        "resolution": list(ba.resolution),
        "encoding": ba.encoding,
        "compression": ba.compression,
        "sharding": (ba.scale.sharding if ba.scale.sharding is not None else None),
    }


def _shape(dataset: Dataset) -> list[int] | None:
    slot = dataset.scales[0]
    return None if slot.array is None else list(slot.array.shape)


@get_and_head(router, "/v1/datasets", summary="List the datasets", responses=responses(200, 304))
async def datasets(request: Request, state: StateDep) -> list[dict[str, Any]]:
    """Each dataset's name, shape, dtype and its Neuroglancer source URL; its storage URL
    (``url``) only when the server exposes storage URLs."""
    base = str(request.base_url).rstrip("/")
    expose = state.settings.expose_storage_urls
    return [{
        "name": ds.name,
        **({"url": ds.url} if expose else {}),
        "shape": _shape(ds),
        "dtype": ds.dtype.name,
        "num_mips": ds.num_mips,
        "info_url": f"{base}/v1/{ds.name}/info",
        "precomputed_url": f"precomputed://{base}/precomputed/{ds.name}",
    } for ds in state.datasets]


@get_and_head(router, "/v1/{ds}/info", summary="A dataset's info, bounds and limits",
              responses=responses(200, 304, 404, 502))
async def info(ds: str, state: StateDep) -> dict[str, Any]:
    """The precomputed ``info`` plus what clients need: bounds per mip, dtype, axes, limits,
    formats; a scale the server cannot read is listed with ``readable: false`` and its error."""
    d = state.datasets.get(ds)
    s = state.settings
    return {
        "name": d.name,
        "info": d.raw_info,
        "dtype": d.dtype.name,
        "num_channels": d.num_channels,
        "axes": ["x", "y", "z", "c"],
        "order": "F",
        "scales": [_scale(slot, d) for slot in d.scales],
        "limits": {"max_cutout_bytes": s.max_cutout_bytes, "max_plan_chunks": s.max_plan_chunks},
        "formats": {"cutout": MEDIA_TYPES, "chunk": {**MEDIA_TYPES, "encoded": "stored bytes"},
                    "image": IMAGE_MEDIA_TYPES},
        "writable": s.write_token is not None,
    }


@get_and_head(router, "/healthz", summary="Liveness", responses=responses(200, 304))
async def healthz(state: StateDep) -> JSONResponse:
    return JSONResponse({"status": "ok", "datasets": state.datasets.names()})


@router.get("/metrics", summary="Prometheus metrics of this worker", response_class=PlainTextResponse,
            responses=responses(200, 304))
async def metrics(state: StateDep) -> PlainTextResponse:
    return PlainTextResponse(render(state.metrics, state.cache), media_type="text/plain; version=0.0.4")
