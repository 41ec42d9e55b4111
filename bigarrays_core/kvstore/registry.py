"""Which store opens which URL.

``open_store(url)`` picks the store class by the URL's scheme; a plain path means a local
directory. ``register_store(scheme, factory)`` adds a backend (any callable taking the URL
and keyword options and returning a :class:`KVStore`).
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
    m = _SCHEME.match(url)
    scheme = m.group(1).lower() if m else ("file" if not url.startswith("file:") else "file")
    factory = _FACTORIES.get(scheme)
    if factory is None:
        raise UnknownSchemeError(
            f"no key-value store for {scheme}:// in {url!r}; known schemes: "
            + ", ".join(f"{s}://" for s in registered_schemes())
        )
    return factory(url, **options)


def _local(url: str, **options: Any) -> KVStore:
    from bigarrays_core.kvstore.local import LocalStore

    return LocalStore(url, **options)


def _memory(url: str, **options: Any) -> KVStore:
    from bigarrays_core.kvstore.memory import MemoryStore

    return MemoryStore(url, **options)


register_store("file", _local)
register_store("memory", _memory)
