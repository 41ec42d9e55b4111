"""What a worker holds while it serves: settings, datasets, cache, reader, metrics.

Owns: :class:`ServerState`, built by the lifespan and reached from routes through the
:func:`get_state` dependency (tests may swap it with ``app.dependency_overrides``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from bigarrays_server.cache import ChunkCache
from bigarrays_server.datasets import DatasetRegistry
from bigarrays_server.generation import WriteGeneration
from bigarrays_server.metrics import Metrics
from bigarrays_server.reader import ChunkReader
from bigarrays_server.redaction import Redactor
from bigarrays_server.settings import Settings
from fastapi import Depends, Request

__all__ = ["ServerState", "StateDep", "get_state"]


@dataclass
class ServerState:
    settings: Settings
    datasets: DatasetRegistry
    cache: ChunkCache
    reader: ChunkReader
    metrics: Metrics
    #: The counter of writes shared with the other workers, when there are several.
    writes: WriteGeneration | None = None
    #: What clients may see of error messages (storage roots written as dataset names,
    #: unless the settings expose storage URLs).
    redactor: Redactor = Redactor({})

    @classmethod
    def start(cls, settings: Settings, metrics: Metrics) -> ServerState:
        """Open every dataset (failing start-up, naming it, if one cannot be opened)."""
        cache = ChunkCache(settings.cache_bytes)
        datasets = DatasetRegistry.open(settings.datasets, writable=settings.write_token is not None)
        writes = WriteGeneration(settings.generation_file) if settings.generation_file else None
        roots = {} if settings.expose_storage_urls else {d.name: [d.url, d.base.url] for d in datasets}
        return cls(settings, datasets, cache, ChunkReader(cache), metrics, writes, Redactor(roots))

    def observe_writes(self) -> None:
        """Empty the cache if another worker has written since; call before serving a request."""
        if self.writes is not None and self.writes.others_wrote():
            self.cache.clear()

    def wrote(self) -> None:
        """Tell the other workers that this one has stored a write (after invalidating it here)."""
        if self.writes is not None:
            self.writes.bump()


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.bigarrays
    return state


#: Route parameter annotation for the worker's state.
StateDep = Annotated[ServerState, Depends(get_state)]
