"""The import layers of the core, checked on the source (docs/architecture.md).

``bigarrays_core`` is layered, each layer importing only from the layers below it:

    errors, config                          (anything may import these)
    kernels                                 (imports nothing from bigarrays but itself)
    geometry  <-  kvstore  <-  codecs  <-  format  <-  array  <-  operations and api

"Operations and api" are the modules at the top of the package (``api``, ``ingest``,
``pyramid``, ``transfer``, ``client``, ...). The core never imports the server
(``bigarrays_server``) or the command line (``bigarrays_cli``); the server never imports
the command line. Every import counts, including imports inside functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "bigarrays_core"

#: Rank of each subpackage; a module may import from its own rank or lower ones.
RANKS = {"errors": 0, "config": 0, "kernels": 0, "geometry": 1, "kvstore": 2, "codecs": 3, "format": 4,
         "array": 5}
TOP = 6  # modules directly in bigarrays_core/ (operations, api, client)


def _module_name(path: Path, root: Path, package: str) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [package, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """``(line, absolute module)`` of every import in ``path`` (relative ones resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from bigarrays_core import array` imports a subpackage
                yield node.lineno, f"{target}.{alias.name}"


def _rank(module: str) -> int | None:
    """The layer of a ``bigarrays_core`` module (None for the package root itself)."""
    parts = module.split(".")
    if parts[0] != "bigarrays_core":
        return None
    if len(parts) == 1:
        return TOP
    if parts[1] in RANKS:
        return RANKS[parts[1]]
    return TOP


def _core_modules() -> list[tuple[Path, str]]:
    return [(p, _module_name(p, CORE, "bigarrays_core")) for p in sorted(CORE.rglob("*.py"))]


@pytest.mark.parametrize("path,module", _core_modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_core_module_imports_only_downwards(path: Path, module: str) -> None:
    own = _rank(module)
    assert own is not None
    kernel = module.split(".")[1:2] == ["kernels"]
    bad = []
    for line, target in _imports(path, module):
        top = target.split(".")[0]
        if top in ("bigarrays_server", "bigarrays_cli"):
            bad.append(f"line {line}: {target} (the core never imports the server or the command line)")
            continue
        if top != "bigarrays_core":
            continue
        if kernel:
            if not target.startswith("bigarrays_core.kernels"):
                bad.append(f"line {line}: {target} (kernels import nothing from bigarrays but each other)")
            continue
        rank = _rank(target)
        if target == "bigarrays_core" and own < TOP:
            bad.append(f"line {line}: {target} (the package root is the top layer)")
        elif rank is not None and rank > own:
            bad.append(f"line {line}: {target} (layer {rank} above {module}'s layer {own})")
    assert not bad, f"{module} imports against the layers:\n" + "\n".join(bad)


def test_the_server_never_imports_the_command_line() -> None:
    bad = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        module = _module_name(path, ROOT / "server", "bigarrays_server")
        bad += [f"{path.name}:{line} {t}" for line, t in _imports(path, module) if t.split(".")[0] == "bigarrays_cli"]
    assert not bad
