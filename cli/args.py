"""Argument helpers shared by the subcommands."""

from __future__ import annotations

from typing import Any

__all__ = ["ints3"]


def ints3(n: int, name: str) -> dict[str, Any]:
    return {"nargs": n, "type": int, "metavar": tuple(f"{a}" for a in "XYZ"[:n]) if n == 3 else name}
