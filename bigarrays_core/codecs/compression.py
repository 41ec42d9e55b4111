"""The scale's ``compression`` field: which :class:`ByteCodec` sits on top of the encoding.

In the info it is ``{"id": "gzip", "level": 1}``, ``{"id": "zstd", "level": 3}``,
``{"id": "blosc", "level": 5, "cname": "blosclz", "shuffle": 1}`` or ``{"id": "br",
"level": 5}`` (brotli, CloudVolume's name for it); a bare string (``"gzip"``) means the
defaults. Absent or ``"none"`` means no compression.

gzip, zstd and br are also *content encodings*: stores record them (a file suffix, a
``Content-Encoding`` header), and :func:`content_codec` gives the codec that undoes each.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

from bigarrays_core.codecs.base import ByteCodec
from bigarrays_core.errors import InfoError, UnknownCodecError

__all__ = ["COMPRESSIONS", "byte_codec", "content_codec", "parse_compression_spec"]

COMPRESSIONS = ("gzip", "zstd", "blosc", "br")
_PARAMS = {"gzip": {"level"}, "zstd": {"level"}, "blosc": {"level", "cname", "shuffle"}, "br": {"level"}}


def parse_compression_spec(spec: Any, where: str) -> dict[str, Any] | None:
    """Normalise a compression spec to ``{"id": ..., params...}`` with defaults filled in.

    ``None``/``"none"`` give None. Raises :class:`InfoError` naming ``where`` otherwise.
    """
    if spec is None or (isinstance(spec, str) and spec.lower() in ("none", "")):
        return None
    if isinstance(spec, str):
        spec = {"id": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("id"), str):
        raise InfoError(f"{where}: expected a compression name or {{\"id\": ...}}, got {spec!r}", field=where)
    cid = spec["id"].lower()
    if cid not in COMPRESSIONS:
        raise InfoError(f"{where}: unknown compression {spec['id']!r}; known: {list(COMPRESSIONS)} or none",
                        field=where)
    extra = set(spec) - {"id"} - _PARAMS[cid]
    if extra:
        raise InfoError(f"{where}: {cid} takes {sorted(_PARAMS[cid])}, not {sorted(extra)}", field=where)
    try:
        codec = byte_codec({**spec, "id": cid})
    except (TypeError, ValueError) as exc:
        raise InfoError(f"{where}: {exc}", field=where) from None
    assert codec is not None
    return codec.config()


_CODECS = {
    "gzip": "bigarrays_core.codecs.gzip:GzipCodec",
    "zstd": "bigarrays_core.codecs.zstd:ZstdCodec",
    "blosc": "bigarrays_core.codecs.blosc:BloscCodec",
    "br": "bigarrays_core.codecs.brotli:BrotliCodec",
}


def byte_codec(config: Mapping[str, Any] | None, *, typesize: int = 1) -> ByteCodec | None:
    """The codec for a normalised spec (None for no compression); ``typesize`` feeds blosc's shuffle."""
    if config is None:
        return None
    cid = config["id"]
    if cid not in _CODECS:
        raise UnknownCodecError(f"unknown compression {cid!r}; known: {list(COMPRESSIONS)}")
    module, _, cls_name = _CODECS[cid].partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    params = {k: v for k, v in config.items() if k != "id"}
    if cid == "blosc":
        params["typesize"] = typesize
    codec: ByteCodec = cls(**params)
    return codec


@functools.cache
def content_codec(encoding: str) -> ByteCodec | None:
    """The codec (default settings) that undoes the content encoding ``encoding`` a store
    recorded (``"gzip"``, ``"zstd"``, ``"br"``), or None for one bigarrays does not write."""
    for cid in COMPRESSIONS:
        codec = byte_codec({"id": cid})
        if codec is not None and codec.content_encoding == encoding:
            return codec
    return None
