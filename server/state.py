"""What a worker holds while it serves: settings, datasets, cache, reader, metrics.

Owns: :class:`ServerState`, built by the lifespan and reached from routes through the
:func:`get_state` dependency (tests may swap it with ``app.dependency_overrides``), and
:meth:`ServerState.watch_datasets`, the background task that reopens datasets whose info
changed. Workers share nothing: each one revalidates its own cache against storage
(``bigarrays_server.cache``), so any number of workers, processes or machines serve the
same answers within the revalidation interval.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from dataclasses import dataclass
from typing import Annotated

from bigarrays_server.cache import ChunkCache
from bigarrays_server.datasets import DatasetRegistry
from bigarrays_server.metrics import Metrics
from bigarrays_server.reader import ChunkReader
from bigarrays_server.redaction import Redactor
from bigarrays_server.settings import Settings
from bigarrays_server.storage_calls import run_storage
from fastapi import Depends, Request

from bigarrays_core.kernels import paste

__all__ = ["INFO_CHECK_MIN_SECONDS", "ServerState", "StateDep", "get_state"]

log = logging.getLogger("bigarrays_server")

#: The info of every dataset is checked at the cache's revalidation interval, but not more
#: often than this (an interval of 0 revalidates chunks on every request, not infos).
INFO_CHECK_MIN_SECONDS = 0.25


@dataclass
class ServerState:
    settings: Settings
    datasets: DatasetRegistry
    cache: ChunkCache
    reader: ChunkReader
    metrics: Metrics
    #: What clients may see of error messages (storage roots written as dataset names,
    #: unless the settings expose storage URLs).
    redactor: Redactor = Redactor({})

    @classmethod
    def start(cls, settings: Settings, metrics: Metrics) -> ServerState:
        """Open every dataset (failing start-up, naming it, if one cannot be opened)."""
        cache = ChunkCache(settings.cache_bytes, settings.cache_revalidate)
        datasets = DatasetRegistry.open(settings.datasets, writable=settings.write_token is not None)
        roots = {} if settings.expose_storage_urls else {d.name: [d.url, d.store.url] for d in datasets}
        # The copy kernels of the served dtypes load now, in the background, rather than
        # after a gigabyte of cutouts, in the middle of serving them.
        paste.preload({d.info.data_type for d in datasets})
        _freeze_when_loaded()
        return cls(settings, datasets, cache, ChunkReader(cache), metrics, Redactor(roots))

    async def watch_datasets(self) -> None:
        """Forever: check every dataset's info at the revalidation interval; reopen the
        changed ones and forget what was cached of them. Storage failures are logged."""
        period = max(self.settings.cache_revalidate, INFO_CHECK_MIN_SECONDS)
        while True:
            await asyncio.sleep(period)
            try:
                changed = await run_storage(self.settings.storage_timeout, "checking the datasets' infos",
                                            self.datasets.refresh)
            except Exception as exc:  # never let the watcher die
                log.warning("checking the datasets' infos failed: %s", exc)
                continue
            if changed:
                self.cache.clear()


_freezing = threading.Lock()
_frozen = False


def _freeze_when_loaded() -> None:
    """Once per process, when the kernels have loaded: collect, then move every object alive
    (numba's, the app's, the datasets') out of the garbage collector's reach (``gc.freeze``).
    A full collection of a worker holding numba stalled it for ~90 ms every few seconds of
    traffic (a 64 MiB cutout: ~25 ms, 119 ms when one fell in it); now it walks only what
    was made since. Objects frozen stay until the process ends unless their references drop."""
    global _frozen
    with _freezing:
        if _frozen:
            return
        _frozen = True

    def settle() -> None:
        paste.wait_for_kernels(600)
        gc.collect()
        gc.freeze()

    threading.Thread(target=settle, name="bigarrays-gc-freeze", daemon=True).start()


async def get_state(request: Request) -> ServerState:
    """The worker's state (a coroutine: FastAPI runs plain functions in its thread pool)."""
    state: ServerState = request.app.state.bigarrays
    return state


#: Route parameter annotation for the worker's state.
StateDep = Annotated[ServerState, Depends(get_state)]
