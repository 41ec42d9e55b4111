"""Keeping the server's storage layout to itself: dataset URLs out of what clients see.

Owns: :class:`Redactor`. Core errors name the full storage URL of what failed (``cannot
decode file:///srv/data/em/8_8_40/0-64_0-64_0-64: ...``), which is right in a library and
in the server's log but tells every HTTP client where and how the data is stored. Unless
the server is started with ``expose_storage_urls`` (``BIGARRAYS_EXPOSE_STORAGE_URLS``), the
error handlers pass every message through :meth:`Redactor.apply`, which writes a dataset's
storage root as the dataset's name: a key under it becomes ``em/8_8_40/0-64_0-64_0-64``
(the path the server's own ``/precomputed/em/...`` tree gives it), the root alone becomes
``dataset 'em'``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Redactor"]


def _spellings(root: str) -> list[str]:
    """The ways a message may write a store's root: its URL and, for ``scheme://rest``,
    ``rest`` when it is a path (a local directory's ``/srv/data/em``, an object store's
    ``bucket/prefix``, as the SDKs' own errors write them). A bare name (``memory://em``'s
    ``em``) is no spelling: it would match ordinary words."""
    out = [root.rstrip("/")]
    _, sep, rest = root.partition("://")
    rest = rest.rstrip("/")
    if sep and "/" in rest.lstrip("/"):
        out.append(rest)
    elif sep and rest.startswith("/") and len(rest) > 1:
        out.append(rest)
    return out


class Redactor:
    """Rewrites storage roots in text as dataset names.

    Parameters
    ----------
    roots:
        Dataset name -> the storage URLs of its root (the store's normalised URL and the
        URL as configured). Relative paths are left alone: they name nothing outside the
        server's working directory and could match ordinary words.
    """

    def __init__(self, roots: Mapping[str, Iterable[str]]) -> None:
        names: dict[str, str] = {}
        for name, urls in roots.items():
            for url in urls:
                if "://" not in url:
                    continue
                for spelling in _spellings(url):
                    names.setdefault(spelling, name)
        self._names = names
        # Longest first, so a root never leaves the tail of a longer one behind; a match must
        # be whole path segments (``/d/em`` is not in ``/d/em2``, ``b/em`` not in ``xb/em``).
        ordered = sorted(names, key=len, reverse=True)
        alternatives = "|".join(re.escape(s) for s in ordered)
        self._pattern = (re.compile(rf"(?<![\w.\-])({alternatives})(?:(/)|(?![\w.\-]))") if ordered else None)

    def apply(self, text: str) -> str:
        """``text`` with every dataset root written as its dataset's name."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(self._replace, text)

    def _replace(self, m: re.Match[str]) -> str:
        name = self._names[m.group(1)]
        return f"{name}/" if m.group(2) else f"dataset {name!r}"

    def apply_all(self, value: Any) -> Any:
        """:meth:`apply` on every string in a JSON-like value (dicts and lists, recursively)."""
        if isinstance(value, str):
            return self.apply(value)
        if isinstance(value, dict):
            return {k: self.apply_all(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.apply_all(v) for v in value]
        return value
