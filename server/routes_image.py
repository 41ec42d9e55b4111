"""``/v1/{ds}/image/{mip}/{bbox}``: a 2-D PNG or JPEG of a box one voxel thick on one axis.

For browsers and notebooks (BossDB and DVID serve the same). The box is read like a cutout
(zeros outside the volume and for missing chunks), turned into pixels
(:mod:`bigarrays_server.images`) and encoded; the answer carries the cutout's validators
(``ETag`` from the chunks' stamps, ``If-None-Match`` -> 304) and ``X-Bbox``,
``X-Image-Axes`` (the axes of the columns and the rows).
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from bigarrays_server.bbox import parse_bbox
from bigarrays_server.conditional import entity_tag, last_modified, stamp_text
from bigarrays_server.errors import ApiError
from bigarrays_server.images import IMAGE_MEDIA_TYPES, encode_image, image_plane, to_pixels
from bigarrays_server.openapi import ERRORS_READ, binary_content, responses
from bigarrays_server.responses import answer_conditions, body_response
from bigarrays_server.routes_cutout import BBOX_DOC, BBOX_PATTERN, DsParam, MipParam, too_large
from bigarrays_server.routing import get_and_head
from bigarrays_server.state import StateDep
from bigarrays_server.storage_calls import run_storage
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

__all__ = ["router"]

router = APIRouter()

_ACCEPTED = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg"}
ImageBboxParam = Annotated[str, Path(description=BBOX_DOC + "; one voxel thick on one axis",
                                     json_schema_extra={"pattern": BBOX_PATTERN, "examples": ["0:64,0:64,0:1"]})]


def _image_format(fmt: str | None, accept: str | None) -> str:
    """``?format=`` (png or jpeg), else an image type ``Accept`` names, else png; 406 otherwise."""
    if fmt is not None:
        name = fmt.strip().lower()
        name = "jpeg" if name == "jpg" else name
        if name in IMAGE_MEDIA_TYPES:
            return name
        raise ApiError(406, "unsupported_format", f"image format {fmt!r} is not one of {list(IMAGE_MEDIA_TYPES)}",
                       {"format": fmt, "formats": list(IMAGE_MEDIA_TYPES)})
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in _ACCEPTED:
            return _ACCEPTED[media]
    return "png"


@get_and_head(router, "/v1/{ds}/image/{mip}/{bbox}", response_class=Response,
              summary="A 2-D image (PNG or JPEG) of a box one voxel thick on one axis",
              responses=responses(200, 304, *ERRORS_READ, 412, 413, content=binary_content(
                  "the image: rows top to bottom, columns left to right (X-Image-Axes)", "image/png", "image/jpeg")))
async def get_image(request: Request, state: StateDep, ds: DsParam, mip: MipParam, bbox: ImageBboxParam,
                    format: Annotated[str | None, Query(description="png (default; 8- or 16-bit) or jpeg "
                                                                    "(uint8 only)",
                                                        json_schema_extra={"enum": ["png", "jpeg", "jpg"]})] = None,
                    quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality")] = 90) -> Response:
    dataset = state.datasets.get(ds)
    ba = dataset.at(mip)
    req = parse_bbox(bbox, ba)
    fmt = _image_format(format, request.headers.get("accept"))
    plane = image_plane(req.box)
    settings = state.settings
    if req.nbytes > settings.max_cutout_bytes:
        raise too_large(req, ba, settings.max_cutout_bytes)
    refs = ba.chunks(req.box)
    stamps, known = await run_storage(settings.storage_timeout, f"checking the chunks of {req.to_text()}",
                                      state.reader.stamps, ba, refs)
    layer_type = dataset.info.layer_type
    etag = entity_tag("image", dataset.info_tag, ba.key, req.to_text(), fmt, str(quality) if fmt == "jpeg" else "",
                      (stamp_text(s) for s in stamps))
    headers = {"X-Bbox": req.to_text(), "X-Image-Axes": plane.names, "X-Mip": str(ba.mip),
               "Cache-Control": settings.cache_control}
    modified = last_modified(stamps)
    if modified:
        headers["Last-Modified"] = modified
    early = answer_conditions(request, etag, {**headers, "ETag": etag})
    if early is not None:
        return early
    voxels = await run_storage(settings.storage_timeout, f"reading {req.to_text()} of dataset {ds!r}",
                               state.reader.read_box, ba, req.box, req.channels, known)
    pixels = to_pixels(voxels, plane, layer_type, fmt)
    data = await anyio.to_thread.run_sync(encode_image, pixels, fmt, quality)
    return body_response(request, data, media_type=IMAGE_MEDIA_TYPES[fmt], headers=headers, etag=etag, ranges=False)
