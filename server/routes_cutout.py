"""``/v1/{ds}/cutout/{mip}/{bbox}``: GET and HEAD stream a region, PUT saves one.

The body is the region's voxels, little-endian, x fastest (Fortran order of
``(x, y, z, c)``), raw or behind an NPY v1.0 header. Reads outside the volume and of
missing chunks give zeros (DESIGN.md §2). Headers describe the body (``X-Bbox``,
``X-Shape``, ``X-Dtype``, ``X-Order: F``, ``X-Axes: x,y,z,c``) and ``Content-Length`` is
exact, so a HEAD is a dry run and a truncated body is detectable.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import anyio.to_thread
import numpy as np
from bigarrays_server.bbox import RequestBox, parse_bbox
from bigarrays_server.errors import ApiError
from bigarrays_server.formats import MEDIA_TYPES, negotiate, npy_header, parse_npy
from bigarrays_server.routing import get_and_head
from bigarrays_server.slabs import pieces, read_piece, stream_body
from bigarrays_server.state import ServerState, StateDep
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

import bigarrays_core as bc
from bigarrays_core.geometry import split_box

__all__ = ["router"]

router = APIRouter()

BBOX_DOC = ("x0:x1,y0:y1,z0:z1[,c0:c1] or x0-x1_y0-y1_z0-z1: absolute, half-open voxel coordinates of the mip "
            "(negative allowed)")
FORMAT_DOC = "raw (default, application/octet-stream) or npy (application/x-npy); overrides Accept"

DsParam = Annotated[str, Path(description="a configured dataset name")]
MipParam = Annotated[int, Path(description="the scale; 0 is the finest")]
BboxParam = Annotated[str, Path(description=BBOX_DOC)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad bbox or parameter"}, 404: {"description": "unknown dataset or mip"},
    406: {"description": "unknown format"}, 413: {"description": "too large; detail.split lists pieces"},
    502: {"description": "storage failed"}, 504: {"description": "storage timed out"},
}


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


def describe_headers(req: RequestBox, ba: bc.BigArray, fmt: str, length: int) -> dict[str, str]:
    return {
        "Content-Length": str(length),
        "X-Bbox": req.to_text(),
        "X-Shape": ",".join(map(str, req.shape)),
        "X-Dtype": req.dtype.name,
        "X-Order": "F",
        "X-Axes": "x,y,z,c",
        "X-Mip": str(ba.mip),
        "X-Chunks": str(chunk_count(ba, req.box)),
        "Cache-Control": "no-cache",
    }


@get_and_head(router, "/v1/{ds}/cutout/{mip}/{bbox}", response_class=Response,
                  summary="Cut out a region (streamed)", responses={
                      200: {"content": {"application/octet-stream": {}, "application/x-npy": {}},
                            "description": "the voxels, x fastest"}, **_ERRORS})
async def get_cutout(request: Request, state: StateDep, ds: DsParam, mip: MipParam, bbox: BboxParam,
                     format: Annotated[str | None, Query(description=FORMAT_DOC)] = None) -> Response:
    ba = state.datasets.get(ds).at(mip)
    req = parse_bbox(bbox, ba)
    fmt = negotiate(format, request.headers.get("accept"))
    limit = state.settings.max_cutout_bytes
    if req.nbytes > limit:
        raise too_large(req, ba, limit)
    prefix = npy_header(req.dtype, req.shape) if fmt == "npy" else b""
    headers = describe_headers(req, ba, fmt, len(prefix) + req.nbytes)
    if request.method == "HEAD":
        return Response(headers=headers, media_type=MEDIA_TYPES[fmt])
    # Read the first piece before answering: a failing store then gives 502/504, not a cut body.
    slab = state.settings.slab_bytes
    first = next(pieces(req, ba.grid, slab))
    data = await anyio.to_thread.run_sync(read_piece, state.reader, ba, first)
    return StreamingResponse(stream_body(state.reader, ba, req, slab, first=(first, data), prefix=prefix),
                             headers=headers, media_type=MEDIA_TYPES[fmt])


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
            responses={401: {"description": "no token"}, 403: {"description": "wrong token or read-only"},
                       409: {"description": "not chunk-aligned; detail.nearest is the nearest aligned box"},
                       **_ERRORS})
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
            ba[x0:x1, y0:y1, z0:z1, c0:c1] = data
        finally:
            state.reader.invalidate(ba, req.box)
            state.wrote()

    try:
        await anyio.to_thread.run_sync(write)
    except bc.AlignmentError as exc:
        raise unaligned(exc, ds, ba) from None
    return JSONResponse({"written": req.to_text(), "mip": ba.mip, "chunks": chunk_count(ba, req.box)})
