"""``/v1/{ds}/chunks/{mip}``: the chunk plan of a box, and single chunks decoded or as stored."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from bigarrays_server.bbox import RequestBox, check_numbers, parse_bbox
from bigarrays_server.cache import MISSING
from bigarrays_server.errors import ApiError
from bigarrays_server.formats import MEDIA_TYPES, negotiate, npy_header
from bigarrays_server.reader import body_view
from bigarrays_server.routes_cutout import BBOX_DOC, DsParam, MipParam, chunk_count, describe_headers
from bigarrays_server.routing import get_and_head
from bigarrays_server.state import StateDep
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

import bigarrays_core as bc
from bigarrays_core.geometry import split_box
from bigarrays_core.geometry.grid import parse_chunk_name

__all__ = ["router"]

router = APIRouter()


def plan_split(box: bc.Box, grid: bc.ChunkGrid, limit: int) -> list[bc.Box] | None:
    """Pieces of ``box`` cut on the chunk grid that each touch at most ``limit`` chunks (None
    when more than 10000 pieces would be needed).

    The box's grid cells are split as a box of cells, one "voxel" per chunk, so a thin box
    that crosses many chunks is cut by the chunks it touches, not by its voxel count.
    """
    ranges = grid.grid_range(box)
    cells = bc.Box(tuple(r.start for r in ranges), tuple(r.stop for r in ranges))  # type: ignore[arg-type]
    unit = bc.ChunkGrid((0, 0, 0), cells.stop, (1, 1, 1))
    pieces = split_box(cells, unit, 1, limit)
    if pieces is None:
        return None
    o, c = grid.voxel_offset, grid.chunk_size
    return [bc.Box(tuple(o[i] + p.start[i] * c[i] for i in range(3)),
                   tuple(o[i] + p.stop[i] * c[i] for i in range(3))).intersect(box) for p in pieces]


@get_and_head(router, "/v1/{ds}/chunks/{mip}", summary="The chunks covering a box")
async def plan(state: StateDep, ds: DsParam, mip: MipParam,
               bbox: Annotated[str | None, Query(description=BBOX_DOC)] = None) -> dict[str, Any]:
    """Each chunk the box touches (the whole volume by default): key, name, grid cell, box, exists."""
    ba = state.datasets.get(ds).at(mip)
    box = ba.bounds if bbox is None else parse_bbox(bbox, ba).box
    n = chunk_count(ba, box)
    limit = state.settings.max_plan_chunks
    if n > limit:
        split = plan_split(box, ba.grid, limit)
        raise ApiError.of(bc.TooLargeError, f"bbox {box.to_colon()} covers {n} chunks, over the limit of {limit}",
                          {"bbox": box.to_colon(), "chunks": n, "max_chunks": limit,
                           "split": None if split is None else [b.to_colon() for b in split]})
    refs = ba.chunks(box)
    chunk_store = ba.scale_io.store  # chunk keys, for sharded scales too
    exists = await anyio.to_thread.run_sync(chunk_store.exists_many, [r.key for r in refs]) if refs else []
    return {
        "dataset": ds, "mip": mip, "bbox": box.to_colon(), "scale_key": ba.key,
        "chunk_size": list(ba.chunk_size), "count": len(refs),
        "chunks": [{"key": r.key, "name": r.name, "grid": list(r.grid), "bbox": r.box.to_colon(), "exists": e}
                   for r, e in zip(refs, exists, strict=False)],
    }


def chunk_ref(ba: bc.BigArray, name: str) -> bc.ChunkRef:
    """The chunk called ``name``: 400 when malformed, 404 when not on this scale's grid."""
    check_numbers(name, "chunk", bc.InvalidKeyError)
    try:
        box = parse_chunk_name(name)
    except bc.InvalidKeyError as exc:
        raise ApiError.of(bc.InvalidKeyError, str(exc), {"chunk": name}) from None
    try:
        g = ba.grid.grid_of_name(name)
    except bc.InvalidKeyError as exc:
        raise ApiError.of(bc.DatasetNotFoundError, str(exc), {"chunk": name}) from None
    return bc.ChunkRef(f"{ba.key}/{name}", g, box)


@get_and_head(router, "/v1/{ds}/chunks/{mip}/{chunk}", response_class=Response,
                  summary="One chunk, decoded (raw/npy) or as stored (encoded)")
async def chunk(request: Request, state: StateDep, ds: DsParam, mip: MipParam,
                chunk: Annotated[str, Path(description="x0-x1_y0-y1_z0-z1")],
                format: Annotated[str | None, Query(description="raw, npy or encoded (the stored bytes)")] = None,
                ) -> Response:
    ba = state.datasets.get(ds).at(mip)
    ref = chunk_ref(ba, chunk)
    fmt = negotiate(format, request.headers.get("accept"), ("raw", "npy", "encoded"))
    if fmt == "encoded":
        data = await anyio.to_thread.run_sync(ba.scale_io.store.get, ref.key)
        if not data:
            raise ApiError.of(bc.ChunkNotFoundError, f"chunk {ba.scale_io.store.describe(ref.key)} is not stored",
                              {"key": ref.key})
        headers = {"X-Encoding": ba.encoding, "X-Compression": str((ba.compression or {}).get("id", "none")),
                   "X-Bbox": ref.box.to_colon(), "Content-Length": str(len(data))}
        body = b"" if request.method == "HEAD" else data
        return Response(body, headers=headers, media_type="application/octet-stream")
    (arr,) = await anyio.to_thread.run_sync(state.reader.chunks, ba, [ref])
    if arr is MISSING:
        raise ApiError.of(bc.ChunkNotFoundError, f"chunk {ba.scale_io.store.describe(ref.key)} is not stored",
                          {"key": ref.key})
    req = RequestBox(ref.box, (0, ba.num_channels), ba.dtype)
    prefix = npy_header(ba.dtype, req.shape) if fmt == "npy" else b""
    headers = describe_headers(req, ba, fmt, len(prefix) + req.nbytes)
    view = body_view(arr)  # the cached array itself, not a copy
    decoded = b"" if request.method == "HEAD" else (prefix + view if prefix else view)
    return Response(decoded, headers=headers, media_type=MEDIA_TYPES[fmt])
