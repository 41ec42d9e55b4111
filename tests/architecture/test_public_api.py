"""The public surface of each package is exactly what it declares (``__all__``), documented.

Adding a public name is a decision: add it here too. Each name in ``__all__`` must exist,
and each public class and function must carry a docstring stating its contract.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

#: The intended public names of each package.
PUBLIC = {
    "bigarrays_core": {
        # entry points and operations
        "open", "create", "create_info", "BigArray", "Client", "Info",
        # operations of huge volumes (pyramids, transfers, Dask)
        "downsample", "transfer", "from_dask",
        # geometry
        "Box", "ChunkGrid", "ChunkRef", "Region",
        # storage
        "KVStore", "WriteOptions", "open_store", "register_store", "ShardingSpec",
        # process-wide settings
        "num_threads", "set_num_threads", "set_recycle_limit", "__version__",
        # the error tree
        "BigArraysError", "AlignmentError", "ConfigError", "ChunkDecodeError", "ChunkEncodeError", "ChunkNotFoundError",
        "DatasetExistsError", "DatasetNotFoundError", "InfoError", "InvalidKeyError", "OutOfBoundsError",
        "ReadOnlyError", "SelectionError", "StorageError", "StoragePermissionError", "StorageTimeoutError",
        "TooLargeError", "UnknownCodecError", "UnknownSchemeError", "WriteDataError",
    },
    "bigarrays_server": {"Settings", "create_app", "run"},
    "bigarrays_cli": {"COMMANDS", "build_parser", "main"},
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_all_is_the_intended_surface(package: str) -> None:
    module = importlib.import_module(package)
    declared = set(module.__all__)
    assert declared == PUBLIC[package], (
        f"{package}.__all__ differs from the intended surface: added {sorted(declared - PUBLIC[package])}, "
        f"missing {sorted(PUBLIC[package] - declared)}")
    for name in declared:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which does not exist"


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_classes_and_functions_state_their_contract(package: str) -> None:
    module = importlib.import_module(package)
    undocumented = [name for name in module.__all__
                    if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
                    and not (obj.__doc__ or "").strip()]
    assert not undocumented, f"{package}: no docstring on {undocumented}"
