"""Wire formats: choosing one from ``?format=`` / ``Accept``, and the ``.npy`` header.

Owns: :func:`negotiate` (406 for anything unknown), :func:`npy_header` (NPY v1.0,
``fortran_order: True``, shape ``(x, y, z, c)``) and :func:`parse_npy` for PUT bodies.
Raw bytes are little-endian, x fastest: Fortran order of ``(x, y, z, c)`` (docs/format.md).
"""

from __future__ import annotations

import ast
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from bigarrays_server.errors import ApiError

import bigarrays_core as bc

__all__ = ["MEDIA_TYPES", "negotiate", "npy_header", "parse_npy"]

MEDIA_TYPES = {"raw": "application/octet-stream", "npy": "application/x-npy"}
_ACCEPTED = {
    "application/octet-stream": "raw",
    "application/x-npy": "npy",
    "application/npy": "npy",
}
_NPY_MAGIC = b"\x93NUMPY"


def negotiate(fmt: str | None, accept: str | None, allowed: Sequence[str] = ("raw", "npy")) -> str:
    """The format to send: ``fmt`` if given, else the first acceptable type of ``Accept``.

    No ``format`` and no (or a wildcard) ``Accept`` means ``raw``. Raises a 406
    :class:`ApiError` listing the formats when neither names one of ``allowed``.
    """
    if fmt is not None:
        fmt = fmt.strip().lower()
        if fmt in allowed:
            return fmt
        raise ApiError(406, "unsupported_format", f"format {fmt!r} is not one of {list(allowed)}",
                       {"format": fmt, "formats": list(allowed)})
    if not accept or not accept.strip():
        return allowed[0]
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        if _quality(params) <= 0:
            continue
        if media in ("*/*", "application/*", ""):
            return allowed[0]
        name = _ACCEPTED.get(media)
        if name is not None and name in allowed:
            return name
    raise ApiError(406, "unsupported_format",
                   f"none of the types in Accept {accept!r} is available; use one of "
                   f"{[MEDIA_TYPES.get(a, a) for a in allowed]} or ?format={'|'.join(allowed)}",
                   {"accept": accept, "formats": list(allowed)})


def _quality(params: str) -> float:
    """The ``q`` of an Accept entry's parameters (1 when absent or malformed)."""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0
    return 1.0


def npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """The NPY v1.0 header of a Fortran-ordered array (padded to a multiple of 64 bytes)."""
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    text = f"{{'descr': {descr!r}, 'fortran_order': True, 'shape': {tuple(shape)!r}, }}"
    pad = 64 - (len(_NPY_MAGIC) + 2 + 2 + len(text) + 1) % 64
    header = (text + " " * (pad % 64) + "\n").encode("latin1")
    return _NPY_MAGIC + b"\x01\x00" + struct.pack("<H", len(header)) + header


def parse_npy(body: bytes) -> np.ndarray:
    """The array in an ``.npy`` body (any version), without copying the data; 400 if malformed."""
    if not body.startswith(_NPY_MAGIC) or len(body) < 10:
        raise ApiError.of(bc.WriteDataError, "body is not an .npy file (no \\x93NUMPY magic)")
    major = body[6]
    if major == 1:
        (hlen,), start = struct.unpack("<H", body[8:10]), 10
    elif major in (2, 3):
        (hlen,), start = struct.unpack("<I", body[8:12]), 12
    else:
        raise ApiError.of(bc.WriteDataError, f"unsupported .npy version {major}")
    try:
        meta = ast.literal_eval(body[start:start + hlen].decode("latin1"))
        dtype = np.dtype(meta["descr"])
        shape = tuple(int(n) for n in meta["shape"])
        fortran = bool(meta["fortran_order"])
    except (ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise ApiError.of(bc.WriteDataError, f"malformed .npy header: {exc}") from None
    if dtype.hasobject:
        raise ApiError.of(bc.WriteDataError, ".npy bodies with object dtypes are refused")
    data = memoryview(body)[start + hlen:]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ApiError.of(bc.WriteDataError,
                          f".npy body holds {len(data)} data bytes, but its header says {shape} of {dtype} "
                          f"({expected} bytes)", {"bytes": len(data), "expected_bytes": expected})
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
