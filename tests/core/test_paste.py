"""The region copy every read makes (bigarrays_core/kernels/paste.py): numba for large copies, numpy else."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bigarrays_core.kernels import paste as module
from bigarrays_core.kernels.paste import MIN_ELEMENTS, paste

DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]


@pytest.mark.parametrize("kernel", [False, True], ids=["numpy", "numba"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_large_region_lands_in_a_strided_view_and_nothing_else_changes(dtype: str, kernel: bool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if kernel:
        module.precompile((dtype,))
    else:
        monkeypatch.setattr(module, "_kernels", {})
        monkeypatch.setattr(module, "WARM_BYTES", 1 << 60)
    rng = np.random.default_rng(1)
    chunk = np.asfortranarray(rng.integers(0, 200, size=(64, 64, 64, 2)).astype(dtype))
    out = np.full((100, 90, 80, 3), 7, dtype=dtype, order="F") if dtype != "bool" else \
        np.ones((100, 90, 80, 3), dtype=bool, order="F")
    before = out.copy()
    src = chunk[3:60, 1:64, 5:50, 0:2]
    assert src.size >= MIN_ELEMENTS
    dst = out[10:67, 20:83, 30:75, 1:3]
    paste(dst, src)
    np.testing.assert_array_equal(dst, src)
    before[10:67, 20:83, 30:75, 1:3] = src
    np.testing.assert_array_equal(out, before)


def test_small_and_converting_copies_go_through_numpy() -> None:
    out = np.zeros((4, 4, 4, 1), dtype=np.uint16, order="F")
    paste(out, np.full((4, 4, 4, 1), 3, dtype=np.uint16))
    assert (out == 3).all()
    flags = np.zeros((64, 64, 16, 1), dtype=bool, order="F")  # a bool output from raw bytes
    raw = np.zeros((64, 64, 16, 1), dtype=np.uint8, order="F")
    raw[::3] = 2
    paste(flags, raw)
    np.testing.assert_array_equal(flags, raw != 0)


def test_a_shape_mismatch_raises_numpys_error_and_writes_nothing() -> None:
    out = np.zeros((64, 64, 16, 1), dtype=np.uint8, order="F")
    with pytest.raises(ValueError, match="broadcast"):
        paste(out, np.ones((64, 64, 15, 1), dtype=np.uint8))
    assert not out.any()


def test_a_read_only_output_raises_numpys_error_with_the_kernel_loaded() -> None:
    module.precompile(("uint8",))
    out = np.zeros((64, 64, 16, 1), dtype=np.uint8, order="F")
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        paste(out, np.ones((64, 64, 16, 1), dtype=np.uint8))
    assert not out.any()


def test_numba_is_loaded_only_after_the_process_has_copied_enough() -> None:
    # A fresh process: small copies, then large ones under the threshold, never import numba;
    # crossing it loads the kernel in the background, and later copies use it.
    code = ("import sys, numpy as np\n"
            "from bigarrays_core.kernels import paste as p\n"
            "p.WARM_BYTES = 8 << 20\n"
            "out = np.zeros((64, 64, 64, 1), np.uint8, order='F')\n"
            "p.paste(out[:16, :16, :16], np.ones((16, 16, 16, 1), np.uint8))\n"
            "for _ in range(31):\n"
            "    p.paste(out, np.ones((64, 64, 64, 1), np.uint8))\n"
            "assert out.all() and 'numba' not in sys.modules, 'numba was imported too early'\n"
            "p.paste(out, np.full((64, 64, 64, 1), 2, np.uint8))\n"
            "p.wait_for_kernels(120)\n"
            "assert 'numba' in sys.modules and np.dtype('uint8') in p._kernels\n"
            "p.paste(out, np.full((64, 64, 64, 1), 3, np.uint8))\n"
            "assert (out == 3).all() and np.dtype('uint16') not in p._kernels\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr


def test_a_one_shot_cutout_never_imports_numba(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = ("import sys, numpy as np, bigarrays_core as bc\n"
            f"ba = bc.create({str(tmp_path / 'v')!r}, dtype='uint16', size=(256, 256, 128))\n"
            "ba[...] = 5\n"
            "assert (ba[...] == 5).all()\n"
            "assert 'numba' not in sys.modules, 'numba was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_precompile_compiles_the_named_dtypes_once() -> None:
    module.precompile(("int16", "float32"))
    kernels = {name: module._kernels[np.dtype(name)] for name in ("int16", "float32")}
    module.precompile(("int16",))
    assert module._kernels[np.dtype("int16")] is kernels["int16"]
    assert all(len(k.signatures) == 1 for k in kernels.values())


def test_preload_loads_the_named_dtypes_in_the_background_before_any_copy() -> None:
    # A fresh process: preload starts the loader at once; a dtype wanted after that loader has
    # finished starts a new one (the thread is not mistaken for a running one as it returns).
    code = ("import sys, numpy as np\n"
            "from bigarrays_core.kernels import paste as p\n"
            "p.preload(['uint16', '>u2', 'S4'])\n"
            "p.wait_for_kernels(120)\n"
            "assert np.dtype('uint16') in p._kernels, 'preload loaded nothing'\n"
            "assert set(p._kernels) == {np.dtype('uint16')}, p._kernels\n"
            "p.preload(['float32'])\n"
            "p.wait_for_kernels(120)\n"
            "assert np.dtype('float32') in p._kernels, 'a second preload loaded nothing'\n"
            "out = np.zeros((64, 64, 64, 1), np.float32, order='F')\n"
            "p.paste(out, np.full((64, 64, 64, 1), 2, np.float32))\n"
            "assert (out == 2).all()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
