"""The core's environment variables: read once, in one place (bigarrays_core/config.py), validated.

A bad value is a :class:`ConfigError` naming the variable and the value, raised when the setting
is first needed (importing bigarrays never fails on one). Importing bigarrays changes no other
library's state: no environment variable, no blosc thread count.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bigarrays_core.config import MAX_THREADS, ConfigError, config, read_config


@pytest.mark.parametrize(
    ("environ", "field", "value"),
    [
        ({}, "num_threads", os.cpu_count() or 2),
        ({"BIGARRAYS_NUM_THREADS": "0"}, "num_threads", os.cpu_count() or 2),
        ({"BIGARRAYS_NUM_THREADS": " 3 "}, "num_threads", 3),
        ({}, "recycle_bytes", 256 << 20),
        ({"BIGARRAYS_RECYCLE_MB": "1.5"}, "recycle_bytes", 3 << 19),
        ({"BIGARRAYS_RECYCLE_MB": "0"}, "recycle_bytes", 0),
        ({}, "poison_buffers", False),
        ({"BIGARRAYS_POISON_BUFFERS": "0"}, "poison_buffers", False),
        ({"BIGARRAYS_POISON_BUFFERS": "1"}, "poison_buffers", True),
        ({"BIGARRAYS_POISON_BUFFERS": "Yes"}, "poison_buffers", True),
        ({"BIGARRAYS_POISON_BUFFERS": "off"}, "poison_buffers", False),
    ],
)
def test_values_are_read(environ: dict[str, str], field: str, value: object) -> None:
    assert getattr(read_config(environ), field) == value


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("BIGARRAYS_NUM_THREADS", "lots"), ("BIGARRAYS_NUM_THREADS", "-2"), ("BIGARRAYS_NUM_THREADS", "2.5"),
        ("BIGARRAYS_NUM_THREADS", str(MAX_THREADS + 1)),
        ("BIGARRAYS_RECYCLE_MB", "lots"), ("BIGARRAYS_RECYCLE_MB", "-1"), ("BIGARRAYS_RECYCLE_MB", "nan"),
        ("BIGARRAYS_RECYCLE_MB", "inf"),
        ("BIGARRAYS_POISON_BUFFERS", "maybe"), ("BIGARRAYS_POISON_BUFFERS", "2"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        read_config({name: raw})
    assert name in str(info.value) and repr(raw) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_the_suite_runs_with_poisoned_buffers() -> None:
    assert config().poison_buffers  # tests/conftest.py sets BIGARRAYS_POISON_BUFFERS=1
    assert config() is config()  # read once


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("BIGARRAYS_")}
    child.update(env)
    return subprocess.run([sys.executable, "-c", code], env=child, capture_output=True, text=True, timeout=120)


def test_a_bad_variable_fails_the_first_read_not_the_import() -> None:
    code = (
        "import bigarrays_core as bc\n"
        "ba = bc.create('memory://cfg', dtype='uint8', size=(8, 8, 8), chunk_size=(8, 8, 8))\n"
        "try:\n"
        "    ba[:, :, :]\n"
        "except bc.BigArraysError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = _python(code, BIGARRAYS_NUM_THREADS="lots")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ConfigError BIGARRAYS_NUM_THREADS must be")
    assert "'lots'" in out.stdout


def test_the_environment_is_read_once() -> None:
    code = (
        "import os\n"
        "import bigarrays_core as bc\n"
        "from bigarrays_core.array.executor import num_threads\n"
        "first = num_threads()\n"
        "os.environ['BIGARRAYS_NUM_THREADS'] = '7'\n"
        "print(first, num_threads())\n"
    )
    out = _python(code, BIGARRAYS_NUM_THREADS="3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "3"]


def test_importing_bigarrays_changes_no_other_librarys_state() -> None:
    """No environment variable set (gcsfs's used to be), no blosc thread count changed (it was
    set to 1), by importing the core and every module a read or write may load."""
    code = (
        "import os, blosc\n"
        "env, threads = dict(os.environ), blosc.set_nthreads(3)\n"
        "import bigarrays_core as bc\n"
        "import bigarrays_core.kvstore.fsspec_store, bigarrays_core.kvstore.obstore_reads\n"
        "import bigarrays_core.codecs.blosc, bigarrays_core.codecs.gzip, bigarrays_core.codecs.zstd\n"
        "import bigarrays_core.codecs.content_encodings, bigarrays_core.kernels.paste\n"
        "ba = bc.create('memory://state', dtype='uint16', size=(64, 64, 64), chunk_size=(32, 32, 32),\n"
        "               compression='blosc')\n"
        "ba[:, :, :] = 5\n"
        "assert (ba[:, :, :] == 5).all()\n"
        "print(dict(os.environ) == env, blosc.set_nthreads(3))\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "3"]
