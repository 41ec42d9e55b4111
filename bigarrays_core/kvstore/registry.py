"""Which store opens which URL.

``open_store(url)`` picks the store class by the URL's scheme; a plain path means a local
directory. ``register_store(scheme, factory)`` adds a backend (any callable taking the URL
and keyword options and returning a :class:`KVStore`).

Registered here: ``file`` (local directory), ``memory``, and ``gs``, ``gcs``, ``s3``,
``http``, ``https`` (:class:`~bigarrays_core.kvstore.fsspec_store.FsspecStore`). Any other
scheme fsspec knows falls back to ``FsspecStore`` too. Backends are imported lazily, when a
URL of theirs is first opened; a backend whose package is not installed is an
:class:`UnknownSchemeError` naming the package and how to install it (for GCS and S3, the
``cloud`` extra).

A URL may carry Neuroglancer's and CloudVolume's format prefix, ``precomputed://``
(``precomputed://gs://bucket/em``, ``precomputed://file:///data/em``,
``precomputed://http://host/path``): the store is the URL after it. This is the one place
URLs are read, so ``open``, ``create``, the command line and the server all take them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bigarrays_core.errors import UnknownSchemeError
from bigarrays_core.kvstore.base import KVStore

__all__ = ["open_store", "register_store", "registered_schemes"]

StoreFactory = Callable[..., KVStore]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_FACTORIES: dict[str, StoreFactory] = {}
#: Neuroglancer's and CloudVolume's prefix naming the format of the data at the URL after it.
FORMAT_PREFIX = "precomputed://"
#: The package each cloud scheme needs, all of them in the ``cloud`` extra.
def register_store(scheme: str, factory: StoreFactory, *, replace: bool = False) -> None:
    """Make ``scheme://`` URLs open with ``factory(url, **options)``."""
    scheme = scheme.lower()
    if scheme in _FACTORIES and not replace:
        raise ValueError(f"a store is already registered for {scheme}://; pass replace=True")
    _FACTORIES[scheme] = factory


def registered_schemes() -> list[str]:
    return sorted(_FACTORIES)


def open_store(url: str | KVStore, **options: Any) -> KVStore:
    """The store for ``url``; a :class:`KVStore` is returned as it is.

    Raises :class:`UnknownSchemeError` listing the known schemes when none matches.
    """
    if isinstance(url, KVStore):
        return url
    url = str(url)
    if url[:len(FORMAT_PREFIX)].lower() == FORMAT_PREFIX:
        return open_store(url[len(FORMAT_PREFIX):], **options)
    m = _SCHEME.match(url)
    scheme = m.group(1).lower() if m else ("file" if not url.startswith("file:") else "file")
    factory = _FACTORIES.get(scheme)
    if factory is None and scheme in _fsspec_protocols():
        factory = _fsspec
    if factory is None:
        others = sorted(_fsspec_protocols() - set(_FACTORIES))
        raise UnknownSchemeError(
            f"no key-value store for {scheme}:// in {url!r}; known schemes: "
            + ", ".join(f"{s}://" for s in registered_schemes())
            + ("; also through fsspec: " + ", ".join(f"{s}://" for s in others) if others else "")
        )
    return factory(url, **options)


def _fsspec_protocols() -> set[str]:
    """Every protocol fsspec knows (installed or with an install hint); empty without fsspec."""
    try:
        from fsspec.registry import known_implementations, registry
    except ImportError:
        return set()
    return set(known_implementations) | set(registry)


def _local(url: str, **options: Any) -> KVStore:
    from bigarrays_core.kvstore.local import LocalStore

    return LocalStore(url, **options)


def _memory(url: str, **options: Any) -> KVStore:
    from bigarrays_core.kvstore.memory import MemoryStore

    return MemoryStore(url, **options)


def _fsspec(url: str, **options: Any) -> KVStore:
    from bigarrays_core.kvstore.filesystems import missing_package_error
    from bigarrays_core.kvstore.fsspec_store import FsspecStore

    try:
        return FsspecStore(url, **options)
    except ModuleNotFoundError as exc:
        raise missing_package_error(url, exc) from exc


register_store("file", _local)
register_store("memory", _memory)
for _scheme in ("gs", "gcs", "s3", "http", "https"):
    register_store(_scheme, _fsspec)
del _scheme
