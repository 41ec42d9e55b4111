"""The only place the ``info`` JSON meets storage."""

from __future__ import annotations

import json
from typing import Any

from bigarrays_core.errors import DatasetNotFoundError, InfoError
from bigarrays_core.format.info import Info
from bigarrays_core.kvstore.base import KVStore, WriteOptions

__all__ = ["read_info", "read_raw_info", "write_info"]

INFO_KEY = "info"


def read_raw_info(store: KVStore) -> dict[str, Any]:
    """The ``info`` JSON object as stored, not validated (for callers that validate parts
    of it on their own, such as a server that serves the scales it can read).

    Raises :class:`DatasetNotFoundError` if absent, :class:`InfoError` if it is not a JSON
    object.
    """
    data = store.get(INFO_KEY)
    if data is None:
        raise DatasetNotFoundError(f"no dataset at {store.url}: {store.describe(INFO_KEY)} does not exist")
    if data[:2] == b"\x1f\x8b":
        import gzip

        data = gzip.decompress(data)
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InfoError(f"{store.describe(INFO_KEY)} is not valid JSON: {exc}", field="info") from exc
    if not isinstance(raw, dict):
        raise InfoError(f"{store.describe(INFO_KEY)}: expected a JSON object, got {type(raw).__name__}", field="info")
    return raw


def read_info(store: KVStore) -> Info:
    """Read and validate ``info``; :class:`DatasetNotFoundError` if absent, :class:`InfoError` if bad."""
    raw = read_raw_info(store)
    try:
        return Info(raw)
    except InfoError as exc:
        raise InfoError(f"{store.describe(INFO_KEY)}: {exc}", field=exc.field) from None


def write_info(store: KVStore, info: Info) -> None:
    """Write ``info`` as indented JSON with ``Cache-Control: no-cache``."""
    body = json.dumps(info.to_json(), indent=2).encode() + b"\n"
    store.set(INFO_KEY, body, WriteOptions(content_type="application/json", cache_control="no-cache"))
