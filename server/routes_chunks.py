"""``/v1/{ds}/chunks/{mip}``: the chunk plan of a box, and single chunks decoded or as stored."""

from __future__ import annotations

from typing import Annotated, Any, cast

from bigarrays_server.bbox import RequestBox, check_numbers, parse_bbox
from bigarrays_server.cache import MISSING
from bigarrays_server.conditional import entity_tag, last_modified, stamp_text
from bigarrays_server.datasets import Dataset
from bigarrays_server.errors import ApiError
from bigarrays_server.formats import MEDIA_TYPES, negotiate, npy_header
from bigarrays_server.openapi import ERRORS_READ, RANGE_HEADERS, binary_content, responses
from bigarrays_server.reader import body_view
from bigarrays_server.responses import answer_conditions, body_response
from bigarrays_server.routes_cutout import (
    BBOX_DOC,
    BBOX_PATTERN,
    CHUNK_PATTERN,
    DsParam,
    MipParam,
    chunk_count,
    describe_headers,
)
from bigarrays_server.routing import get_and_head
from bigarrays_server.state import StateDep
from bigarrays_server.storage_calls import handed_failure, run_storage
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

import bigarrays_core as bc
from bigarrays_core.geometry import Vec3, split_box
from bigarrays_core.geometry.grid import parse_chunk_name
from bigarrays_core.kvstore import Stamp
from bigarrays_core.kvstore.base import Value

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
    return [bc.Box(cast(Vec3, tuple(o[i] + p.start[i] * c[i] for i in range(3))),
                   cast(Vec3, tuple(o[i] + p.stop[i] * c[i] for i in range(3)))).intersect(box) for p in pieces]


@get_and_head(router, "/v1/{ds}/chunks/{mip}", summary="The chunks covering a box",
              responses=responses(200, 304, 400, 404, 413, 502, 504))
async def plan(state: StateDep, ds: DsParam, mip: MipParam,
               bbox: Annotated[str | None, Query(description=BBOX_DOC, json_schema_extra={"pattern": BBOX_PATTERN})
                               ] = None) -> dict[str, Any]:
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
    exists = await run_storage(state.settings.storage_timeout, f"listing the chunks of {box.to_colon()}",
                               chunk_store.exists_many, [r.key for r in refs]) if refs else []
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


def decoded_chunk_headers(dataset: Dataset, ba: bc.BigArray, ref: bc.ChunkRef, fmt: str,
                          stamp: Stamp | None, cache_control: str) -> tuple[dict[str, str], str]:
    """The headers of a decoded chunk's answer (without ``Content-Length``, ``ETag`` and
    ``Accept-Ranges``, which :func:`~bigarrays_server.responses.body_response` adds) and its
    entity tag. The fast path answers with the same, built here."""
    req = RequestBox(ref.box, (0, ba.num_channels), ba.dtype)
    headers = describe_headers(req, ba, fmt, None)
    headers["Cache-Control"] = cache_control
    modified = last_modified([stamp])
    if modified:
        headers["Last-Modified"] = modified
    return headers, entity_tag("chunk", dataset.info_tag, ba.key, ref.name, fmt, stamp_text(stamp))


def reading_chunk(dataset: Dataset, ref: bc.ChunkRef) -> str:
    """What reading a chunk of ``/v1/.../chunks`` is called in a storage error's message."""
    return f"reading chunk {ref.name} of dataset {dataset.name!r}"


def missing_chunk(ba: bc.BigArray, ref: bc.ChunkRef, cache_control: str) -> ApiError:
    return ApiError.of(bc.ChunkNotFoundError, f"chunk {ba.scale_io.store.describe(ref.key)} is not stored",
                       {"key": ref.key}, headers={"Cache-Control": cache_control})


def _encoded(ba: bc.BigArray, ref: bc.ChunkRef) -> tuple[Stamp | None, Value | None]:
    """The stamp and stored value of one chunk (stat first: the stamp is never newer). Blocking."""
    store = ba.scale_io.store
    (stamp,) = store.stat_many([ref.key])
    value = next(store.iter_values([ref.key]))
    if value is not None:
        value = Value(bytes(value.data), value.encoding)  # the value may be a view of a reused buffer
    return stamp, value


@get_and_head(router, "/v1/{ds}/chunks/{mip}/{chunk}", response_class=Response,
              summary="One chunk, decoded (raw/npy) or as stored (encoded)",
              responses=responses(200, 206, 304, *ERRORS_READ, 412, 416, content=binary_content(
                  "the chunk's voxels, x fastest (raw, npy), or its stored bytes (encoded)",
                  "application/octet-stream", "application/x-npy"), headers=RANGE_HEADERS))
async def chunk(request: Request, state: StateDep, ds: DsParam, mip: MipParam,
                chunk: Annotated[str, Path(description="x0-x1_y0-y1_z0-z1",
                                           json_schema_extra={"pattern": CHUNK_PATTERN})],
                format: Annotated[str | None, Query(description="raw, npy or encoded (the stored bytes)",
                                                    json_schema_extra={"enum": ["raw", "npy", "encoded"]})] = None,
                ) -> Response:
    dataset = state.datasets.get(ds)
    ba = dataset.at(mip)
    ref = chunk_ref(ba, chunk)
    fmt = negotiate(format, request.headers.get("accept"), ("raw", "npy", "encoded"))
    settings = state.settings
    what = reading_chunk(dataset, ref)
    if fmt == "encoded":
        stamp, value = await run_storage(settings.storage_timeout, what, _encoded, ba, ref)
        if value is None or not value.data:
            raise missing_chunk(ba, ref, settings.cache_control)
        headers = {"X-Encoding": ba.encoding, "X-Compression": str((ba.compression or {}).get("id", "none")),
                   "X-Content-Encoding": value.encoding or "identity", "X-Bbox": ref.box.to_colon(),
                   "Cache-Control": settings.cache_control}
        modified = last_modified([stamp])
        if modified:
            headers["Last-Modified"] = modified
        etag = entity_tag("chunk", dataset.info_tag, ba.key, ref.name, "encoded", stamp_text(stamp))
        early = answer_conditions(request, etag, {**headers, "ETag": etag})
        if early is not None:
            return early
        return body_response(request, value.data, media_type="application/octet-stream", headers=headers, etag=etag)
    handed_failure(request.scope)
    (entry,) = await run_storage(settings.storage_timeout, what, state.reader.chunks, ba, [ref])
    if entry.value is MISSING:
        raise missing_chunk(ba, ref, settings.cache_control)
    req = RequestBox(ref.box, (0, ba.num_channels), ba.dtype)
    prefix = npy_header(ba.dtype, req.shape) if fmt == "npy" else b""
    headers, etag = decoded_chunk_headers(dataset, ba, ref, fmt, entry.stamp, settings.cache_control)
    early = answer_conditions(request, etag, {**headers, "ETag": etag})
    if early is not None:
        return early
    view = body_view(entry.value)  # the cached array itself, not a copy
    body = prefix + view if prefix else view
    return body_response(request, body, media_type=MEDIA_TYPES[fmt], headers=headers, etag=etag)
