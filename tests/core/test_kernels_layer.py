"""The speed kernels (bigarrays_core/kernels/) import nothing from the rest of bigarrays.

So they sit below every layer: any layer may use them, and they can never pull a layer in.
Checked on the source (every import statement) and by running a copy of the package in an
interpreter where bigarrays cannot be imported.
"""

from __future__ import annotations

import ast
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import bigarrays_core.kernels as kernels

KERNELS = sorted(m.name for m in pkgutil.iter_modules(kernels.__path__))


def test_the_package_has_its_kernels() -> None:
    assert KERNELS == ["cseg", "cseg_encode", "downsample", "jit", "paste", "scratch", "spans"]


def test_kernel_sources_import_only_each_other() -> None:
    for path in Path(kernels.__path__[0]).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("bigarrays") or name.startswith("bigarrays_core.kernels"), \
                    f"{path.name} imports {name}"


def test_the_kernels_run_without_the_rest_of_bigarrays(tmp_path: Path) -> None:
    """A copy of the package under another name, in an interpreter that cannot import
    bigarrays at all, imports and runs."""
    shutil.copytree(kernels.__path__[0], tmp_path / "standalone_kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = (
        "import sys\n"
        "sys.modules['bigarrays_core'] = None  # any import of bigarrays now fails\n"
        "import numpy as np\n"
        "from standalone_kernels import cseg, cseg_encode, downsample, jit, paste\n"
        "out = np.zeros((64, 64, 16, 1), np.uint16, order='F')\n"
        "src = np.arange(out.size, dtype=np.uint16).reshape(out.shape)\n"
        "paste.precompile(('uint16',))\n"
        "paste.paste(out, src)\n"
        "print(bool((out == src).all()))\n"
        "half = np.zeros((32, 32, 16, 1), np.uint16, order='F')\n"
        "downsample.average_22_narrow(out, 1, 2, half)\n"
        "block = src[0:2, 0:2, 0, 0].astype(float)\n"
        "print(int(half[0, 0, 0, 0]) == round(block.mean()))\n"
        "words = cseg_encode.encode_channel(np.zeros((8, 8, 8), np.uint64), (8, 8, 8))\n"
        "print(words.tolist() == [2 | 0 << 24, 2, 0, 0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]
