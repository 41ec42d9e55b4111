"""The server's settings, read from ``BIGARRAYS_*`` environment variables.

Owns: the names, types, defaults and parsing of every setting. Nothing here opens a dataset.

==================================  ===========================================================  ==================
variable                            meaning                                                      default
==================================  ===========================================================  ==================
``BIGARRAYS_DATASETS``              ``name=url,name=url`` or a JSON object ``{"name": "url"}``   (none)
``BIGARRAYS_CACHE_MB``              decoded-chunk cache budget per worker process, MiB           512
``BIGARRAYS_CACHE_REVALIDATE``      seconds a cached chunk is served before its stamp is         1
                                    checked against storage again (0: on every request)
``BIGARRAYS_CACHE_CONTROL``         ``Cache-Control`` of data answers (chunks, files, cutouts)   ``public, no-cache``
``BIGARRAYS_STORAGE_TIMEOUT``       seconds the storage work of one request may take (504)       30
``BIGARRAYS_WRITE_TOKEN``           bearer token that allows ``PUT`` (unset: read-only server)   unset
``BIGARRAYS_MAX_CUTOUT_MB``         largest cutout (decoded bytes) one request may ask for, MiB  1024
``BIGARRAYS_MAX_PLAN_CHUNKS``       most chunks one ``/chunks?bbox=`` plan may list              100000
``BIGARRAYS_SLAB_MB``               largest piece of a streamed cutout held in memory, MiB       32
``BIGARRAYS_CORS_ORIGINS``          ``*`` or a comma-separated / JSON list of allowed origins    ``*``
``BIGARRAYS_EXPOSE_STORAGE_URLS``   show clients storage URLs (else messages name the dataset)   false
``BIGARRAYS_HEADER_TIMEOUT``        seconds a client may take to send a request's headers        10
``BIGARRAYS_BODY_TIMEOUT``          seconds a request body may pause before it is dropped        30
``BIGARRAYS_MAX_HEADER_KB``         largest request head (request line and headers), KiB         64
``BIGARRAYS_MAX_CONNECTIONS``       open connections per worker; more are answered 503           1000
==================================  ===========================================================  ==================
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "parse_datasets"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def parse_datasets(value: Any) -> dict[str, str]:
    """``{"name": "url"}`` from a mapping, a JSON object or ``name=url,name=url``.

    Raises ``ValueError`` naming the entry that is malformed or a name that is not a
    valid URL path segment (letters, digits, ``_ . -``).
    """
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"BIGARRAYS_DATASETS is not valid JSON: {exc}") from None
        else:
            pairs: dict[str, str] = {}
            for entry in filter(None, (e.strip() for e in text.split(","))):
                name, sep, url = entry.partition("=")
                if not sep or not name.strip() or not url.strip():
                    raise ValueError(f"dataset entry {entry!r} is not NAME=URL")
                pairs[name.strip()] = url.strip()
            value = pairs
    if not isinstance(value, Mapping):
        raise ValueError(f"datasets must be a mapping of name to URL, got {type(value).__name__}")
    out: dict[str, str] = {}
    for name, url in value.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"dataset name {name!r} must be letters, digits, '_', '.' or '-'")
        if not isinstance(url, str) or not url:
            raise ValueError(f"dataset {name!r}: URL must be a non-empty string, got {url!r}")
        out[name] = url
    return out


class Settings(BaseSettings):
    """Everything the app factory needs; see the module docstring for the variables."""

    model_config = SettingsConfigDict(env_prefix="BIGARRAYS_", extra="ignore", frozen=True)

    datasets: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    cache_mb: float = Field(512, ge=0)
    cache_revalidate: float = Field(1.0, ge=0, le=86400)
    cache_control: str = "public, no-cache"
    storage_timeout: float = Field(30.0, gt=0, le=86400)
    write_token: str | None = None
    max_cutout_mb: float = Field(1024, gt=0)
    max_plan_chunks: int = Field(100_000, gt=0)
    #: Small enough that reading the next piece overlaps sending this one and memory stays at a
    #: few slabs; large enough that each piece's fixed cost (a worker-thread trip, the layers a
    #: body part passes) stays small: 32 MiB slabs served a 64 MiB cutout 10-17 % faster than
    #: 8 MiB ones, and the client's 32 MiB pieces become one slab each.
    slab_mb: float = Field(32, gt=0)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    expose_storage_urls: bool = False
    header_timeout: float = Field(10.0, gt=0, le=3600)
    body_timeout: float = Field(30.0, gt=0, le=3600)
    max_header_kb: float = Field(64, gt=0, le=16384)
    max_connections: int = Field(1000, gt=0)

    @field_validator("datasets", mode="before")
    @classmethod
    def _datasets(cls, value: Any) -> dict[str, str]:
        return parse_datasets(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = json.loads(text)
            else:
                value = [o.strip() for o in text.split(",") if o.strip()]
        return list(value)

    @field_validator("cache_control")
    @classmethod
    def _cache_control(cls, value: str) -> str:
        value = value.strip()
        if not value or not value.isascii() or not value.isprintable():
            raise ValueError(f"cache_control {value!r} must be a non-empty header value of printable ASCII")
        return value

    @field_validator("write_token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> Any:
        return value or None  # an empty variable means "no writes"

    @property
    def cache_bytes(self) -> int:
        return int(self.cache_mb * 2**20)

    @property
    def max_cutout_bytes(self) -> int:
        return int(self.max_cutout_mb * 2**20)

    @property
    def slab_bytes(self) -> int:
        return int(self.slab_mb * 2**20)

    @property
    def max_header_bytes(self) -> int:
        return int(self.max_header_kb * 1024)

    def to_env(self) -> dict[str, str]:
        """These settings as ``BIGARRAYS_*`` variables (how the runner hands them to workers)."""
        return {
            "BIGARRAYS_DATASETS": json.dumps(self.datasets),
            "BIGARRAYS_CACHE_MB": repr(self.cache_mb),
            "BIGARRAYS_CACHE_REVALIDATE": repr(self.cache_revalidate),
            "BIGARRAYS_CACHE_CONTROL": self.cache_control,
            "BIGARRAYS_STORAGE_TIMEOUT": repr(self.storage_timeout),
            "BIGARRAYS_MAX_CUTOUT_MB": repr(self.max_cutout_mb),
            "BIGARRAYS_MAX_PLAN_CHUNKS": str(self.max_plan_chunks),
            "BIGARRAYS_SLAB_MB": repr(self.slab_mb),
            "BIGARRAYS_CORS_ORIGINS": json.dumps(self.cors_origins),
            "BIGARRAYS_WRITE_TOKEN": self.write_token or "",
            "BIGARRAYS_EXPOSE_STORAGE_URLS": "true" if self.expose_storage_urls else "false",
            "BIGARRAYS_HEADER_TIMEOUT": repr(self.header_timeout),
            "BIGARRAYS_BODY_TIMEOUT": repr(self.body_timeout),
            "BIGARRAYS_MAX_HEADER_KB": repr(self.max_header_kb),
            "BIGARRAYS_MAX_CONNECTIONS": str(self.max_connections),
        }
