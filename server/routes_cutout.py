"""``/v1/{ds}/cutout/{mip}/{bbox}``: GET and HEAD stream a region, PUT saves one.

The body is the region's voxels, little-endian, x fastest (Fortran order of
``(x, y, z, c)``), raw or behind an NPY v1.0 header. Reads outside the volume and of
missing chunks give zeros (docs/server.md). Headers describe the body (``X-Bbox``,
``X-Shape``, ``X-Dtype``, ``X-Order: F``, ``X-Axes: x,y,z,c``) and ``Content-Length`` is
exact, so a HEAD is a dry run and a truncated body is detectable. ``X-Bigarrays-Worker``
names the worker process that answered (:data:`WORKER`).

HTTP semantics: the ``ETag`` is a digest of the stamps of every chunk the box touches (taken
before any of them is read, so it never names newer data than the body holds), the box and
the format; ``If-None-Match`` gives a 304 without reading a voxel. ``Range`` gives a 206 of
any span of the body, read from just the chunks it needs. ``Accept-Encoding: zstd`` or
``gzip`` gives the whole body compressed on the fly (fast levels; no ``Content-Length``).
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Sequence
from typing import Annotated

import anyio.to_thread
import numpy as np
from bigarrays_server.bbox import RequestBox, parse_bbox
from bigarrays_server.cache import Entry
from bigarrays_server.conditional import entity_tag, last_modified, stamp_text
from bigarrays_server.content_coding import choose
from bigarrays_server.datasets import Dataset
from bigarrays_server.errors import ApiError
from bigarrays_server.formats import MEDIA_TYPES, negotiate, npy_header, parse_npy
from bigarrays_server.openapi import ERRORS_READ, ERRORS_WRITE, RANGE_HEADERS, binary_content, responses
from bigarrays_server.ranges import Span, requested_span
from bigarrays_server.reader import body_view
from bigarrays_server.responses import answer_conditions
from bigarrays_server.routing import get_and_head
from bigarrays_server.slabs import BodyPlan, Piece, stream_body
from bigarrays_server.state import ServerState, StateDep
from bigarrays_server.storage_calls import handed_failure, run_storage
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

import bigarrays_core as bc
from bigarrays_core.geometry import split_box
from bigarrays_core.kvstore import Stamp, deadline

__all__ = ["router"]

router = APIRouter()

BBOX_DOC = ("x0:x1,y0:y1,z0:z1[,c0:c1] or x0-x1_y0-y1_z0-z1: absolute, half-open voxel coordinates of the mip "
            "(negative allowed)")
FORMAT_DOC = "raw (default, application/octet-stream) or npy (application/x-npy); overrides Accept"

#: This worker process's name in every cutout answer (``X-Bigarrays-Worker``): random, new in
#: each process (forked ones too). The client sends the pieces of a large read to different
#: workers by it; it says nothing about the server but that two answers came from one process.
WORKER = secrets.token_hex(6)


def _rename_worker() -> None:
    global WORKER
    WORKER = secrets.token_hex(6)


os.register_at_fork(after_in_child=_rename_worker)

_N = "-?[0-9]{1,19}"
_C = "[0-9]{1,19}"
#: The two spellings of a bbox, for the OpenAPI document (the route's parser is the reference:
#: it also checks start < stop on every axis and the channels against the dataset).
BBOX_PATTERN = (f"^{_N}:{_N},{_N}:{_N},{_N}:{_N}(,{_C}:{_C})?$|"
                f"^{_N}-{_N}_{_N}-{_N}_{_N}-{_N}(,{_C}:{_C})?$")
CHUNK_PATTERN = f"^{_N}-{_N}_{_N}-{_N}_{_N}-{_N}$"

#: The largest cutout answered on the event loop when all its chunks are cached and fresh.
INLINE_BYTES = 2 << 20

DsParam = Annotated[str, Path(description="a configured dataset name")]
MipParam = Annotated[int, Path(description="the scale; 0 is the finest")]
BboxParam = Annotated[str, Path(description=BBOX_DOC, json_schema_extra={"pattern": BBOX_PATTERN,
                                                                          "examples": ["0:64,0:64,0:16"]})]


def chunk_count(ba: bc.BigArray, box: bc.Box) -> int:
    rx, ry, rz = ba.grid.grid_range(box)
    return len(rx) * len(ry) * len(rz)


def too_large(req: RequestBox, ba: bc.BigArray, limit: int) -> ApiError:
    """The 413 for ``req``, with a chunk-aligned split of it into pieces under ``limit``."""
    bpv = req.dtype.itemsize * (req.channels[1] - req.channels[0])
    split = split_box(req.box, ba.grid, bpv, limit)
    c0, c1 = req.channels
    pieces_text = None if split is None else [f"{b.to_colon()},{c0}:{c1}" for b in split]
    return ApiError.of(bc.TooLargeError,
                       f"cutout {req.to_text()} is {req.nbytes} bytes, over this server's limit of {limit} bytes"
                       + ("" if split else "; it needs more than 10000 pieces, ask for a smaller box"),
                       {"bbox": req.to_text(), "bytes": req.nbytes, "max_bytes": limit, "split": pieces_text})


def describe_headers(req: RequestBox, ba: bc.BigArray, fmt: str, length: int | None,
                     chunks: int | None = None) -> dict[str, str]:
    """The headers that describe a decoded body of ``req`` (``length``: its Content-Length;
    ``chunks``: the number of chunks the box touches, when the caller has counted them)."""
    out = {
        "X-Bbox": req.to_text(),
        "X-Shape": ",".join(map(str, req.shape)),
        "X-Dtype": req.dtype.name,
        "X-Order": "F",
        "X-Axes": "x,y,z,c",
        "X-Mip": str(ba.mip),
        "X-Chunks": str(chunk_count(ba, req.box) if chunks is None else chunks),
    }
    if length is not None:
        out = {"Content-Length": str(length), **out}
    return out


@get_and_head(router, "/v1/{ds}/cutout/{mip}/{bbox}", response_class=Response,
              summary="Cut out a region (streamed)",
              responses=responses(200, 206, 304, *ERRORS_READ, 412, 413, 416, content=binary_content(
                  "the voxels, x fastest", "application/octet-stream", "application/x-npy"),
                  headers=RANGE_HEADERS))
async def get_cutout(request: Request, state: StateDep, ds: DsParam, mip: MipParam, bbox: BboxParam,
                     format: Annotated[str | None, Query(description=FORMAT_DOC,
                                                         json_schema_extra={"enum": ["raw", "npy"]})] = None,
                     ) -> Response:
    dataset = state.datasets.get(ds)
    ba = dataset.at(mip)
    req = parse_bbox(bbox, ba)
    fmt = negotiate(format, request.headers.get("accept"))
    settings = state.settings
    limit = settings.max_cutout_bytes
    if req.nbytes > limit:
        raise too_large(req, ba, limit)
    refs = ba.chunks(req.box)
    handed_failure(request.scope)
    # A small box whose chunks are all cached and fresh is answered on the event loop: no I/O,
    # a paste of at most INLINE_BYTES (cheaper than the trips to a worker thread).
    held = state.reader.held(ba, refs) if req.nbytes <= INLINE_BYTES else None
    if held is not None:
        stamps, known = [e.stamp for e in held.values()], None
    else:
        stamps, known = await run_storage(settings.storage_timeout, f"checking the chunks of {req.to_text()}",
                                          state.reader.stamps, ba, refs)
    wants_range = request.method == "GET" and "range" in request.headers
    coding = None if wants_range else choose(request.headers.get("accept-encoding"))
    prefix = npy_header(req.dtype, req.shape) if fmt == "npy" else b""
    length = len(prefix) + req.nbytes
    headers, etag = cutout_headers(dataset, ba, req, fmt, coding, stamps, settings.cache_control, length)
    early = answer_conditions(request, etag, headers)
    if early is not None:
        return early
    span = requested_span(request.headers, length, etag) if wants_range else None
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = span.content_range()
        headers["Content-Length"] = str(span.size)
    if request.method == "HEAD":
        return Response(headers=headers, media_type=MEDIA_TYPES[fmt])
    if held is not None and coding is None:
        a, b = span_bounds(span, length)
        body = held_body(state, ba, req, prefix, held)[a:b]
        return Response(body, status_code=status, headers=headers, media_type=MEDIA_TYPES[fmt])
    plan = BodyPlan(req, prefix, *(span_bounds(span, length)))
    slab = settings.slab_bytes

    async def read(piece: Piece) -> memoryview:
        box, chans = piece
        arr = await run_storage(settings.storage_timeout, f"reading {box.to_colon()} of dataset {ds!r}",
                                state.reader.read_box, ba, box, chans, known)
        return body_view(arr)

    parts = plan.pieces(ba.grid, slab)
    # Read the first piece before answering: a failing store then gives 502/504, not a cut body.
    first_piece = next(parts, None)
    first = None if first_piece is None else await read(first_piece)
    return StreamingResponse(stream_body(plan, parts, read, first, coding), status_code=status,
                             headers=headers, media_type=MEDIA_TYPES[fmt])


def cutout_headers(dataset: Dataset, ba: bc.BigArray, req: RequestBox, fmt: str, coding: str | None,
                   stamps: Sequence[Stamp | None], cache_control: str, length: int) -> tuple[dict[str, str], str]:
    """Every header of a cutout's whole answer in ``fmt`` and content ``coding`` (``length``:
    the plain body's; ``stamps``: one per chunk the box touches), and its entity tag. The
    fast path answers with the same."""
    etag = entity_tag("cutout", dataset.info_tag, ba.key, req.to_text(), fmt, coding or "identity",
                      (stamp_text(s) for s in stamps))
    headers = describe_headers(req, ba, fmt, None if coding else length, len(stamps))
    headers.update({"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding",
                    "X-Bigarrays-Worker": WORKER})
    modified = last_modified(stamps)
    if modified:
        headers["Last-Modified"] = modified
    if coding:
        headers["Content-Encoding"] = coding
    else:
        headers["Accept-Ranges"] = "bytes"
    return headers, etag


def held_body(state: ServerState, ba: bc.BigArray, req: RequestBox, prefix: bytes,
              held: dict[str, Entry]) -> memoryview | bytes:
    """The whole body of a small cutout from cache entries at hand (a paste, no I/O)."""
    data = body_view(state.reader.read_held(ba, req.box, req.channels, held))
    return prefix + data if prefix else data


def span_bounds(span: Span | None, length: int) -> tuple[int, int]:
    return (0, length) if span is None else (span.start, span.stop)


def unaligned(exc: bc.AlignmentError, ds: str, ba: bc.BigArray) -> ApiError:
    """The 409 of a PUT that does not cover whole chunks, saying what a REST caller can do
    (the core's advice, ``non_aligned_writes=True``, is an option of the library only)."""
    box = exc.box.to_colon() if isinstance(exc.box, bc.Box) else None
    nearest = exc.nearest.to_colon() if isinstance(exc.nearest, bc.Box) else None
    advice = ("" if nearest is None else
              f" GET the chunk-aligned box {nearest},0:{ba.num_channels} (detail.nearest, all channels), change the "
              f"voxels you meant to write in it, and PUT that whole box back.")
    detail = {k: v for k, v in (("bbox", box), ("nearest", nearest), ("reason", exc.reason)) if v is not None}
    return ApiError.of(bc.AlignmentError,
                       f"cannot write {box or 'this box'} to dataset {ds!r} mip {ba.mip}: "
                       f"{exc.reason or 'it is not chunk-aligned'}. A PUT must cover whole chunks (a box ending at "
                       f"the volume's end counts).{advice}", detail)


def check_token(state: ServerState, authorization: str | None) -> None:
    """401 without credentials, 403 with wrong ones or when the server takes no writes."""
    token = state.settings.write_token
    if token is None:
        raise ApiError(403, "writes_disabled", "this server is read-only (start it with a write token to allow PUT)")
    if not authorization:
        raise ApiError(401, "unauthorized", "PUT needs 'Authorization: Bearer <token>'",
                       headers={"WWW-Authenticate": 'Bearer realm="bigarrays"'})
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(403, "forbidden", "the bearer token is not this server's write token")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (400) one longer than ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError.of(bc.WriteDataError, f"body of {declared} bytes is longer than the region ({limit} bytes)")
    parts: list[bytes] = []
    n = 0
    async for part in request.stream():
        n += len(part)
        if n > limit:
            raise ApiError.of(bc.WriteDataError, f"body is longer than the region ({limit} bytes)")
        parts.append(part)
    return b"".join(parts)


def decode_body(body: bytes, content_type: str, req: RequestBox) -> np.ndarray:
    """The 4-D array a PUT body holds; 400 naming the size, shape or dtype that is wrong."""
    if body.startswith(b"\x93NUMPY") or content_type.split(";")[0].strip() in ("application/x-npy", "application/npy"):
        arr = parse_npy(body)
        if arr.dtype.newbyteorder("<") != req.dtype.newbyteorder("<") or arr.dtype.kind != req.dtype.kind:
            raise ApiError.of(bc.WriteDataError, f"body dtype {arr.dtype.name} is not the dataset's {req.dtype.name}",
                              {"dtype": arr.dtype.name, "expected_dtype": req.dtype.name})
        if arr.shape == req.shape[:3] and req.shape[3] == 1:
            arr = arr[..., np.newaxis]
        if arr.shape != req.shape:
            raise ApiError.of(bc.WriteDataError, f"body shape {arr.shape} does not fit bbox {req.to_text()} of shape "
                              f"{req.shape}", {"shape": list(arr.shape), "expected_shape": list(req.shape)})
        return arr.astype(req.dtype, copy=False)
    if len(body) != req.nbytes:
        raise ApiError.of(bc.WriteDataError,
                          f"raw body is {len(body)} bytes; bbox {req.to_text()} of {req.dtype.name} needs {req.nbytes}",
                          {"bytes": len(body), "expected_bytes": req.nbytes})
    return np.frombuffer(body, dtype=req.dtype).reshape(req.shape, order="F")


@router.put("/v1/{ds}/cutout/{mip}/{bbox}", summary="Save a region (needs the write token)",
            responses=responses(200, *ERRORS_WRITE, 413), openapi_extra={"requestBody": {
                "required": True, "description": "the region's voxels: raw Fortran-order bytes of the box (exactly its "
                "size) or an .npy file of the dataset's dtype, shape (x, y, z, c) or (x, y, z) for one channel",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                            "application/x-npy": {"schema": {"type": "string", "format": "binary"}}}}})
async def put_cutout(request: Request, state: StateDep, ds: DsParam, mip: MipParam, bbox: BboxParam,
                     authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Save the body (raw Fortran-order bytes, or .npy) into ``bbox``; it must be chunk-aligned.

    The part outside the volume is clipped away. Nothing is written when the size, shape or
    dtype is wrong (400) or the box is not aligned (409).
    """
    check_token(state, authorization)
    ba = state.datasets.get(ds).at(mip)
    req = parse_bbox(bbox, ba)
    limit = state.settings.max_cutout_bytes
    if req.nbytes > limit:
        raise too_large(req, ba, limit)
    # Room for an .npy header and for a body of the wrong dtype, which gets a clearer 400 below.
    x, y, z, c = req.shape
    body = await read_body(request, max(req.nbytes, x * y * z * c * 8) + 65536)
    data = decode_body(body, request.headers.get("content-type", ""), req)
    (x0, y0, z0), (x1, y1, z1) = req.box.start, req.box.stop
    c0, c1 = req.channels

    def write() -> None:
        try:
            with deadline.within(state.settings.storage_timeout):
                ba[x0:x1, y0:y1, z0:z1, c0:c1] = data
        finally:
            state.reader.invalidate(ba, req.box)

    try:
        # Not abandoned at the deadline (a write is finished or failed before it is answered):
        # the stores stop retrying there.
        await anyio.to_thread.run_sync(write)
    except bc.AlignmentError as exc:
        raise unaligned(exc, ds, ba) from None
    return JSONResponse({"written": req.to_text(), "mip": ba.mip, "chunks": chunk_count(ba, req.box)})
