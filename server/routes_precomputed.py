"""``/precomputed/{ds}/...``: the dataset as a plain precomputed tree, for Neuroglancer.

``info`` is the dataset's info; ``{scale key}/{x0-x1_y0-y1_z0-z1}`` is a chunk in its
standard encoding: a missing chunk is a 404 (drawn as empty), a gzip-stored chunk goes out
as stored with ``Content-Encoding: gzip`` when the request accepts gzip (else gunzipped),
and zstd or blosc chunks are decompressed on the fly (then gzip'd when accepted). Storage
failures are 502/504, never 403 (Neuroglancer would draw a 403 as empty).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from bigarrays_server.cache import MISSING
from bigarrays_server.errors import ApiError
from bigarrays_server.routes_chunks import chunk_ref
from bigarrays_server.routing import get_and_head
from bigarrays_server.state import ServerState, StateDep
from bigarrays_server.transcode import gzip_bytes
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response

import bigarrays_core as bc

__all__ = ["router"]

router = APIRouter()

_ENCODED_CHUNKS_GZIP_HELPS = ("raw", "compressed_segmentation")


@get_and_head(router, "/precomputed/{ds}/info", summary="Precomputed info (Neuroglancer)")
def precomputed_info(ds: Annotated[str, Path()], state: StateDep) -> JSONResponse:
    return JSONResponse(state.datasets.get(ds).base.info, headers={"Cache-Control": "no-cache"})


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*") and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def _chunk_bytes(state: ServerState, ba: bc.BigArray, ref: bc.ChunkRef,
                 gzip_ok: bool) -> tuple[bytes, bool] | None:
    """(body, gzip'd) for one chunk, or None when it is not stored. Blocking."""
    comp = ba.compression
    transcoded = comp is not None and comp.get("id") in ("zstd", "blosc")
    if transcoded and ba.encoding == "raw":
        # Decode through the shared cache; raw bytes are the decoded array's Fortran bytes.
        (arr,) = state.reader.chunks(ba, [ref])
        if arr is MISSING:
            return None
        data = arr.tobytes(order="F")
        return (gzip_bytes(data), True) if gzip_ok else (data, False)
    io = ba.scale_io  # its store reads chunks of sharded scales too
    value = next(io.store.iter_values([ref.key]))
    if value is None or not value.data:
        return None
    if value.encoding == "gzip" and gzip_ok:
        return bytes(value.data), True  # stored gzip, as the store records it: passed through
    plain = io.pipeline.unwrap(value.data, io.chunk_shape(ref), io.store.describe(ref.key), ref.key, value.encoding)
    if gzip_ok and plain is not value.data and ba.encoding in _ENCODED_CHUNKS_GZIP_HELPS:
        return gzip_bytes(plain), True
    return bytes(plain), False


@get_and_head(router, "/precomputed/{ds}/{scale_key:path}/{chunk}", response_class=Response,
                  summary="One chunk in its standard encoding (Neuroglancer)",
                  responses={404: {"description": "no such chunk (drawn as empty)"}})
async def precomputed_chunk(request: Request, state: StateDep, ds: Annotated[str, Path()],
                            scale_key: Annotated[str, Path()],
                            chunk: Annotated[str, Path()]) -> Response:
    ba = state.datasets.get(ds).by_scale_key(scale_key)
    try:
        ref = chunk_ref(ba, chunk)
    except ApiError as exc:  # a file tree: any name that is no chunk of this scale is simply not there
        raise ApiError.of(bc.DatasetNotFoundError, exc.message, exc.detail) from None
    result = await anyio.to_thread.run_sync(_chunk_bytes, state, ba, ref, _accepts_gzip(request))
    if result is None:
        raise ApiError.of(bc.ChunkNotFoundError, f"chunk {ba.scale_io.store.describe(ref.key)} is not stored",
                          {"key": ref.key})
    data, is_gzip = result
    headers: dict[str, Any] = {"Vary": "Accept-Encoding", "Content-Length": str(len(data))}
    if is_gzip:
        headers["Content-Encoding"] = "gzip"
    body = b"" if request.method == "HEAD" else data
    return Response(body, headers=headers, media_type="application/octet-stream")
