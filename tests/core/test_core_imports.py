"""The core library never imports the server or the command line (they import it, not the reverse).

Every module of ``bigarrays_core`` is imported in a fresh interpreter, which then must hold
neither ``bigarrays_server`` nor ``bigarrays_cli``; and no core source file names them in an
import, so an import inside a function cannot slip through either.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import bigarrays_core

CORE = Path(bigarrays_core.__file__).resolve().parent
OUTSIDE = ("bigarrays_server", "bigarrays_cli")

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
import bigarrays_core
for info in pkgutil.walk_packages(bigarrays_core.__path__, "bigarrays_core."):
    importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {outside!r})))
"""


def test_importing_every_core_module_loads_neither_server_nor_cli() -> None:
    done = subprocess.run([sys.executable, "-c", _IMPORT_ALL.format(outside=set(OUTSIDE))], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_no_core_source_names_server_or_cli_in_an_import() -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(CORE.parent)}:{node.lineno} imports {n}"
                          for n in names if n.split(".")[0] in OUTSIDE]
    assert offenders == []
