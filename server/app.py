"""The app factory: routers, error handlers, middleware (the chunk fast path, metrics,
CORS, ``Allow``, entity tags), the OpenAPI document and the lifespan; no logic.

``create_app(settings=None)`` reads :class:`Settings` from the environment when none is
given (this is how ``uvicorn --factory --workers N`` builds one app per worker). The
lifespan opens every dataset once per worker, builds its chunk cache and starts the task
that reopens datasets whose info changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bigarrays_server import routes_chunks, routes_cutout, routes_image, routes_meta, routes_precomputed
from bigarrays_server.cors import CorsMiddleware, CorsPolicy
from bigarrays_server.errors import install_error_handlers
from bigarrays_server.etags import EntityTagMiddleware
from bigarrays_server.fastpath import ChunkFastPath
from bigarrays_server.methods import AllowMiddleware
from bigarrays_server.metrics import Metrics, MetricsMiddleware
from bigarrays_server.openapi import install_openapi
from bigarrays_server.settings import Settings
from bigarrays_server.state import ServerState
from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import bigarrays_core as bc

__all__ = ["create_app"]

DESCRIPTION = """REST cutouts of Neuroglancer precomputed volumes, and the volumes themselves for Neuroglancer.

Coordinates are absolute, half-open voxel coordinates of the chosen mip, axes (x, y, z, c);
bodies are little-endian with x fastest (Fortran order). Errors are JSON
`{"error": code, "message": ..., "detail": {...}}`. See docs/server.md.
"""


class BigArraysApp(FastAPI):
    """FastAPI with the chunk fast path in front of everything (its own middleware stack
    included): fresh cache hits are answered before any other layer runs."""

    fast: ChunkFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast is not None and scope["type"] == "http":
            await self.fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def routed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Everything but the fast path (what it falls through to)."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A FastAPI app serving ``settings.datasets`` (settings from ``BIGARRAYS_*`` when None)."""
    settings = settings if settings is not None else Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ServerState.start(settings, metrics)
        app.state.bigarrays = state
        watcher = asyncio.ensure_future(state.watch_datasets())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    app = BigArraysApp(title="bigarrays", version=bc.__version__, description=DESCRIPTION, lifespan=lifespan)

    def current_state() -> ServerState | None:
        state: ServerState | None = getattr(app.state, "bigarrays", None)
        return state

    install_error_handlers(app)
    modules = (routes_meta, routes_cutout, routes_chunks, routes_image, routes_precomputed)
    for module in modules:
        app.include_router(module.router)
    install_openapi(app, settings.datasets)
    cors = CorsPolicy(settings.cors_origins)
    # Every route, flat: the documentation pages' and each router's own.
    routes = [r for r in app.routes if isinstance(r, Route)] + [r for m in modules for r in m.router.routes]
    app.add_middleware(EntityTagMiddleware)
    app.add_middleware(AllowMiddleware, routes=lambda: routes)
    app.add_middleware(CorsMiddleware, policy=cors)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Outermost, before FastAPI's own layers: fresh cached chunks and small cutouts are answered
    # before routing (the same answers, see fastpath.py).
    app.fast = ChunkFastPath(app.routed, cors=cors, metrics=metrics, state=current_state)
    return app
