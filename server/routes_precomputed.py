"""``/precomputed/{ds}/...``: the dataset as a plain precomputed tree, for Neuroglancer and
any client of static precomputed files (TensorStore's and CloudVolume's http stores).

What each scale is served as (its stored encoding, or a transcoding into one Neuroglancer
decodes; chunk files or shards) is decided by :mod:`bigarrays_server.transcoding`.

* ``info``: the dataset's info describing what is served (:attr:`Dataset.served_info`:
  transcoded encodings, no ``compression``, no ``sharding`` for scales served unsharded).
* ``{scale key}/{x0-x1_y0-y1_z0-z1}`` of a scale the server reads and serves as chunk
  files: the chunk in the served encoding. Raw chunks without byte compression come from
  the decoded-chunk cache (their bytes are the decoded array's, so the cache serves both
  routes); so do transcoded chunks, re-encoded per request (compressed_segmentation or
  raw, with a content coding the request accepts). Other chunks are read from storage:
  gzip- or zstd-stored chunks go out as stored with that ``Content-Encoding`` when the
  request accepts it, else decompressed (and re-compressed with a coding the request
  accepts when that helps: raw and compressed_segmentation); blosc and brotli are
  decompressed. A missing chunk is a 404 (drawn as empty).
* Every other file under the dataset (shard files, meshes, skeletons, segment properties,
  annotations, files of scales the server cannot read, ...) passes through as stored, with
  ``Content-Encoding`` as above. A chunk name of a scale the server cannot read whose file
  is not stored answers that scale's error (e.g. 502 ``bad_dataset``), not a 404 that
  would be drawn as empty. Names with a component starting with ``.`` (bigarrays'
  temporaries and progress records) and anything that is not a safe relative key are 404s:
  nothing outside the dataset can be named.

Every answer has a strong ``ETag`` (from the store's stamp of the file, and for a chunk
what it is served as and its content coding: a tag of the representation sent),
``Last-Modified`` when the store knows it, the configured ``Cache-Control``, and
``Accept-Ranges: bytes``: ``Range`` gives a 206 of the plain bytes (of the transcoded
chunk for transcoded scales), read as a ranged read when the file is stored plain (shard
files), ``If-None-Match`` a 304. A ``Range`` answer never has a ``Content-Encoding``.
Storage failures are 502/504, never 403 (Neuroglancer would draw a 403 as empty).
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from bigarrays_server.cache import MISSING
from bigarrays_server.conditional import entity_tag, last_modified, stamp_text
from bigarrays_server.content_coding import CODINGS, accepts, choose, decode_bytes, encode_bytes
from bigarrays_server.datasets import Dataset, ScaleSlot
from bigarrays_server.errors import ApiError
from bigarrays_server.openapi import ERRORS_FILE, RANGE_HEADERS, binary_content, responses
from bigarrays_server.ranges import requested_span
from bigarrays_server.reader import body_view
from bigarrays_server.responses import answer_conditions, body_response, whole_headers
from bigarrays_server.routes_chunks import chunk_ref
from bigarrays_server.routing import get_and_head
from bigarrays_server.state import ServerState, StateDep
from bigarrays_server.storage_calls import handed_failure, run_storage
from bigarrays_server.transcoding import ServedScale, transcode
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response

import bigarrays_core as bc
from bigarrays_core.geometry.grid import parse_chunk_name
from bigarrays_core.kvstore import KVStore, Stamp, check_key
from bigarrays_core.kvstore.base import ByteRange, Value

__all__ = ["decoded_file_headers", "reading_file", "router", "serves_decoded"]

router = APIRouter()

#: Encodings whose plain chunks gain from a content coding on the wire.
_CODING_HELPS = ("raw", "compressed_segmentation")
OCTETS = "application/octet-stream"


@get_and_head(router, "/precomputed/{ds}/info", summary="Precomputed info (Neuroglancer)",
              responses=responses(200, 304, 404))
async def precomputed_info(ds: Annotated[str, Path(description="a configured dataset name")],
                     state: StateDep) -> JSONResponse:
    return JSONResponse(state.datasets.get(ds).served_info, headers={"Cache-Control": "no-cache"})


def serves_decoded(ba: bc.BigArray) -> bool:
    """Whether this scale's chunk files are served from the decoded-chunk cache: raw
    chunks without byte compression, whose stored bytes are the decoded array's."""
    return ba.encoding == "raw" and ba.compression is None and getattr(ba.scale_io, "sharding", None) is None


def reading_file(dataset: Dataset, key: str) -> str:
    """What reading a file of ``/precomputed`` is called in a storage error's message."""
    return f"reading {key} of dataset {dataset.name!r}"


def decoded_file_headers(dataset: Dataset, key: str, stamp: Stamp | None,
                         cache_control: str) -> tuple[dict[str, str], str]:
    """The headers (without ``ETag``, ``Accept-Ranges``, ``Content-Length``) and the entity
    tag of a raw chunk file served from the cache. The fast path sends the same."""
    headers = {"Cache-Control": cache_control}
    modified = last_modified([stamp])
    if modified:
        headers["Last-Modified"] = modified
    return headers, entity_tag("file", dataset.info_tag, key, "identity", stamp_text(stamp))


def _file_key(dataset: Dataset, path: str) -> str:
    """The store key ``path`` names; 404 for anything that is not a visible key of the dataset."""
    try:
        key = check_key(path)
    except bc.InvalidKeyError:
        key = None
    if key is None or any(part.startswith(".") for part in key.split("/")):
        raise ApiError.of(bc.DatasetNotFoundError, f"dataset {dataset.name!r} has no file {path[:200]!r}",
                          {"dataset": dataset.name, "path": path[:200]})
    return key


def _scale_and_name(dataset: Dataset, key: str) -> tuple[bc.BigArray, ServedScale, str] | None:
    """The readable scale served as chunk files whose chunk ``key`` would be, its plan, and
    the chunk name."""
    head, sep, name = key.rpartition("/")
    if not sep:
        return None
    slot = dataset.slot_of_key(head)
    if slot is None or slot.array is None:
        return None
    plan = dataset.served[slot.mip]
    if plan is None or not plan.chunk_files:
        return None
    return slot.array, plan, name


def _media_type(key: str) -> str:
    return "application/json" if key.rpartition("/")[2] == "info" else OCTETS


# -- blocking storage work ----------------------------------------------------------------------
def _stat(store: KVStore, key: str) -> Stamp | None:
    return store.stat_many([key])[0]


def _stat_and_read(store: KVStore, key: str) -> tuple[Stamp | None, Value | None]:
    (stamp,) = store.stat_many([key])  # before the read: the stamp is never newer than the bytes
    value = next(store.iter_values([key])) if stamp is not None else None
    if value is not None:
        value = Value(bytes(value.data), value.encoding)  # the value may be a view of a reused buffer
    return stamp, value


def _read(store: KVStore, key: str) -> Value | None:
    value = next(store.iter_values([key]))
    return None if value is None else Value(bytes(value.data), value.encoding)


def _read_span(store: KVStore, key: str, start: int, stop: int) -> bytes | memoryview | None:
    return store.get_ranges([ByteRange(key, start, stop)])[0]


def _chunk_body(ba: bc.BigArray, ref: bc.ChunkRef, value: Value, accept_encoding: str | None,
                plain_only: bool) -> tuple[bytes, str | None]:
    """(body, content coding) of a stored chunk in its standard encoding. Blocking (decompresses)."""
    if not plain_only and value.encoding in CODINGS and accepts(accept_encoding, value.encoding):
        return bytes(value.data), value.encoding  # stored compressed, as the store records it: passed through
    io = ba.scale_io
    plain = io.pipeline.unwrap(value.data, io.chunk_shape(ref), io.store.describe(ref.key), ref.key, value.encoding)
    coding = None if plain_only else choose(accept_encoding)
    if coding is not None and plain is not value.data and ba.encoding in _CODING_HELPS:
        return encode_bytes(coding, plain), coding
    return bytes(plain), None


def _file_body(value: Value, accept_encoding: str | None, plain_only: bool) -> tuple[bytes, str | None]:
    """(body, content coding) of a stored file: as stored when the request accepts its coding."""
    if value.encoding is None:
        return bytes(value.data), None
    if not plain_only and accepts(accept_encoding, value.encoding):
        return bytes(value.data), value.encoding
    if value.encoding not in CODINGS:
        raise bc.StorageError(f"a stored file has content encoding {value.encoding!r}, which this server cannot decode")
    return decode_bytes(value.encoding, value.data), None


# -- answers ------------------------------------------------------------------------------------
def _validators(headers: dict[str, str], stamp: Stamp | None) -> dict[str, str]:
    modified = last_modified([stamp])
    if modified:
        headers["Last-Modified"] = modified
    return headers


async def _decoded_chunk(request: Request, state: ServerState, dataset: Dataset, ba: bc.BigArray,
                         ref: bc.ChunkRef) -> Response:
    settings = state.settings
    handed_failure(request.scope)
    (entry,) = await run_storage(settings.storage_timeout, reading_file(dataset, ref.key),
                                 state.reader.chunks, ba, [ref])
    if entry.value is MISSING:
        raise ApiError.of(bc.ChunkNotFoundError, f"chunk {ba.scale_io.store.describe(ref.key)} is not stored",
                          {"key": ref.key}, headers={"Cache-Control": settings.cache_control})
    headers, etag = decoded_file_headers(dataset, ref.key, entry.stamp, settings.cache_control)
    early = answer_conditions(request, etag, {**headers, "ETag": etag})
    if early is not None:
        return early
    return body_response(request, body_view(entry.value), media_type=OCTETS, headers=headers, etag=etag)


def _transcoded_body(plan: ServedScale, chunk: object, where: str, coding: str | None) -> bytes:
    body = transcode(plan, chunk, where)  # type: ignore[arg-type]
    return body if coding is None else encode_bytes(coding, body)


async def _transcoded_chunk(request: Request, state: ServerState, dataset: Dataset, ba: bc.BigArray,
                            plan: ServedScale, ref: bc.ChunkRef) -> Response:
    """A chunk of a transcoded scale: decoded through the cache, re-encoded in the served
    encoding. Its tag names that encoding and the content coding sent."""
    settings = state.settings
    (entry,) = await run_storage(settings.storage_timeout, reading_file(dataset, ref.key),
                                 state.reader.chunks, ba, [ref])
    where = ba.scale_io.store.describe(ref.key)
    if entry.value is MISSING:
        raise ApiError.of(bc.ChunkNotFoundError, f"chunk {where} is not stored",
                          {"key": ref.key}, headers={"Cache-Control": settings.cache_control})
    plain_only = request.method == "GET" and "range" in request.headers
    coding = None if plain_only else choose(request.headers.get("accept-encoding"))
    headers = _validators({"Cache-Control": settings.cache_control, "Vary": "Accept-Encoding"}, entry.stamp)
    if coding is not None:
        headers["Content-Encoding"] = coding
    etag = entity_tag("file", dataset.info_tag, ref.key, plan.tag(), coding or "identity", stamp_text(entry.stamp))
    early = answer_conditions(request, etag, {**headers, "ETag": etag})
    if early is not None:
        return early
    body = await anyio.to_thread.run_sync(_transcoded_body, plan, entry.value, where, coding)
    return body_response(request, body, media_type=OCTETS, headers=headers, etag=etag)


async def _stored_chunk(request: Request, state: ServerState, dataset: Dataset, ba: bc.BigArray,
                        ref: bc.ChunkRef) -> Response:
    settings = state.settings
    what = reading_file(dataset, ref.key)
    stamp, value = await run_storage(settings.storage_timeout, what, _stat_and_read, ba.scale_io.store, ref.key)
    if value is None or not value.data:
        raise ApiError.of(bc.ChunkNotFoundError, f"chunk {ba.scale_io.store.describe(ref.key)} is not stored",
                          {"key": ref.key}, headers={"Cache-Control": settings.cache_control})
    plain_only = request.method == "GET" and "range" in request.headers
    body, coding = await anyio.to_thread.run_sync(_chunk_body, ba, ref, value,
                                                  request.headers.get("accept-encoding"), plain_only)
    headers = _validators({"Cache-Control": settings.cache_control, "Vary": "Accept-Encoding"}, stamp)
    if coding is not None:
        headers["Content-Encoding"] = coding
    etag = entity_tag("file", dataset.info_tag, ref.key, coding or "identity", stamp_text(stamp))
    early = answer_conditions(request, etag, {**headers, "ETag": etag})
    if early is not None:
        return early
    return body_response(request, body, media_type=OCTETS, headers=headers, etag=etag)


def _no_file(dataset: Dataset, key: str) -> ApiError:
    return ApiError.of(bc.DatasetNotFoundError, f"dataset {dataset.name!r} has no file {key!r}",
                       {"dataset": dataset.name, "path": key})


async def _passthrough(request: Request, state: ServerState, dataset: Dataset, key: str) -> Response:
    settings = state.settings
    store = dataset.store
    what = reading_file(dataset, key)
    media_type = _media_type(key)
    stamp = await run_storage(settings.storage_timeout, what, _stat, store, key)
    if stamp is None:
        raise _no_file(dataset, key)
    plain_only = request.method == "GET" and "range" in request.headers
    if stamp.encoding is None and stamp.size is not None:
        # Stored plain, size known: HEAD and ranges need no read of the whole file.
        headers = _validators({"Cache-Control": settings.cache_control}, stamp)
        etag = entity_tag("file", key, "identity", stamp_text(stamp))
        early = answer_conditions(request, etag, {**headers, "ETag": etag})
        if early is not None:
            return early
        if request.method == "HEAD":
            return Response(headers=whole_headers(headers, etag, stamp.size, True), media_type=media_type)
        span = requested_span(request.headers, stamp.size, etag) if plain_only else None
        if span is not None:
            data = await run_storage(settings.storage_timeout, what, _read_span, store, key, span.start, span.stop)
            if data is None:
                raise _no_file(dataset, key)
            if len(data) == span.size:
                out = whole_headers(headers, etag, span.size, True)
                out["Content-Range"] = span.content_range()
                return Response(data, status_code=206, headers=out, media_type=media_type)
            # The file changed since its stamp: answer from a whole read below.
        value = await run_storage(settings.storage_timeout, what, _read, store, key)
        if value is None:
            raise _no_file(dataset, key)
        if value.encoding is None:
            return body_response(request, value.data, media_type=media_type, headers=headers, etag=etag)
    else:
        stamp, value = await run_storage(settings.storage_timeout, what, _stat_and_read, store, key)
        if value is None:
            raise _no_file(dataset, key)
    body, coding = await anyio.to_thread.run_sync(_file_body, value, request.headers.get("accept-encoding"),
                                                  plain_only)
    headers = _validators({"Cache-Control": settings.cache_control, "Vary": "Accept-Encoding"}, stamp)
    if coding is not None:
        headers["Content-Encoding"] = coding
    etag = entity_tag("file", key, coding or "identity", stamp_text(stamp))
    early = answer_conditions(request, etag, {**headers, "ETag": etag})
    if early is not None:
        return early
    return body_response(request, body, media_type=media_type, headers=headers, etag=etag)


@get_and_head(router, "/precomputed/{ds}/{path:path}", response_class=Response,
              summary="Any file of the dataset: chunks, shard files, meshes, skeletons, ... (Neuroglancer)",
              responses=responses(200, 206, 304, *ERRORS_FILE, 412, 416, content=binary_content(
                  "the file (a chunk in its standard encoding)", OCTETS, "application/json"), headers=RANGE_HEADERS))
async def precomputed_file(request: Request, state: StateDep,
                           ds: Annotated[str, Path(description="a configured dataset name")],
                           path: Annotated[str, Path(description="a file of the dataset, e.g. 8_8_40/0-64_0-64_0-64, "
                                                                 "8_8_40/0.shard, mesh/info")]) -> Response:
    dataset = state.datasets.get(ds)
    key = _file_key(dataset, path)
    found = _scale_and_name(dataset, key)
    if found is not None:
        ba, plan, name = found
        try:
            ref = chunk_ref(ba, name)
        except ApiError as exc:
            if exc.status != 404:  # not a chunk name: any other file of the scale's directory
                ref = None
            else:  # a chunk name off this scale's grid
                raise ApiError.of(bc.DatasetNotFoundError, exc.message, exc.detail) from None
        if ref is not None:
            if serves_decoded(ba):
                return await _decoded_chunk(request, state, dataset, ba, ref)
            if plan.transcoded:
                return await _transcoded_chunk(request, state, dataset, ba, plan, ref)
            return await _stored_chunk(request, state, dataset, ba, ref)
    try:
        return await _passthrough(request, state, dataset, key)
    except ApiError as exc:
        unreadable = _unreadable_scale(dataset, key)
        if exc.status == 404 and unreadable is not None:
            dataset.at(unreadable.mip)  # raises the scale's own error: its chunk is not merely missing
        raise


def _unreadable_scale(dataset: Dataset, key: str) -> ScaleSlot | None:
    """The scale the server cannot read of which ``key`` names a chunk, or None."""
    head, _, name = key.rpartition("/")
    slot = dataset.slot_of_key(head)
    if slot is None or slot.array is not None:
        return None
    try:
        parse_chunk_name(name)
    except bc.InvalidKeyError:
        return None
    return slot

