"""Serving the app with uvicorn: ``run(datasets, ...)``, used by ``bigarrays serve`` and ``bigarrays demo``.

Settings reach the workers as ``BIGARRAYS_*`` environment variables and each worker builds
its own app through the factory import string, the only way uvicorn can start several
worker processes (uvicorn#687).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["run"]

FACTORY = "bigarrays_server.app:create_app"
#: The HTTP protocol of every worker: uvicorn's httptools one with limits on slow clients.
PROTOCOL = "bigarrays_server.protocol:BoundedHttpProtocol"
_UVICORN_OPTIONS = ("log_level", "timeout_keep_alive", "access_log")


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with the server's own logger (storage failures,
    client disconnects) printed like uvicorn's at ``level``."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["bigarrays_server"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def run(datasets: Mapping[str, str], *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
        cache_mb: float = 512, write_token: str | None = None, **more: Any) -> None:
    """Serve ``datasets`` (name -> URL) until interrupted. Blocks.

    Parameters
    ----------
    datasets:
        Dataset names (URL path segments) and their storage URLs.
    host, port:
        Where to listen (127.0.0.1 by default: pass ``0.0.0.0`` deliberately).
    workers:
        Number of uvicorn worker processes; each has its own cache of ``cache_mb`` MiB,
        revalidated against storage every ``cache_revalidate`` seconds (workers share nothing).
    write_token:
        Bearer token that allows PUT; None falls back to ``BIGARRAYS_WRITE_TOKEN`` (so the
        token need not appear in a process list), and without either the server is read-only.
    more:
        Other :class:`~bigarrays_server.settings.Settings` fields (``cache_revalidate``,
        ``cache_control``, ``storage_timeout``, ``max_cutout_mb``, ``cors_origins``,
        ``slab_mb``, ``max_plan_chunks``, ``expose_storage_urls``, ``header_timeout``,
        ``body_timeout``, ``max_header_kb``, ``max_connections``) and the uvicorn options
        ``log_level``, ``timeout_keep_alive``, ``access_log``.

    Raises
    ------
    TypeError
        For an unknown keyword.
    BigArraysError
        When a dataset cannot be opened (checked before listening), naming it.
    """
    import uvicorn
    from bigarrays_server.datasets import DatasetRegistry
    from bigarrays_server.settings import Settings

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    uv = {k: more.pop(k) for k in _UVICORN_OPTIONS if k in more}
    unknown = set(more) - set(Settings.model_fields)
    if unknown:
        raise TypeError(f"run() got unknown options {sorted(unknown)}; known: "
                        f"{sorted(set(Settings.model_fields) - {'datasets'}) + list(_UVICORN_OPTIONS)}")
    if write_token is None:
        write_token = os.environ.get("BIGARRAYS_WRITE_TOKEN") or None
    settings = Settings(datasets=dict(datasets), cache_mb=cache_mb,
                        write_token=write_token, **more)
    DatasetRegistry.open(settings.datasets, writable=False)  # fail fast, naming the dataset
    saved = {k: os.environ.get(k) for k in settings.to_env()}
    os.environ.update(settings.to_env())
    try:
        # uvloop (installed with uvicorn[standard]) when available; the protocol is httptools'.
        level = uv.get("log_level", "info")
        uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers, loop="auto", http=PROTOCOL,
                    log_level=level, log_config=_log_config(level), access_log=uv.get("access_log", False),
                    proxy_headers=False,  # no route uses the client's address
                    timeout_keep_alive=uv.get("timeout_keep_alive", 5))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
