"""Whole raw chunks written from one packed, recycled buffer (bigarrays_core/array/write.py,
``_packed``) for stores that take buffers: the same stored bytes as encoding chunk by chunk,
and only for stores that say they take buffers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
import bigarrays_core.array.write as write
from bigarrays_core.codecs.raw import RawCodec
from bigarrays_core.kvstore import MemoryStore, WriteOptions

DTYPES = ["uint8", "int16", "uint32", "uint64", "float32", "float64"]
OFFSET = (-37, 5, -64)
SIZE = (70, 45, 30)
CHUNK = (16, 8, 8)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and not p.name.startswith(".")}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_packed_chunks_are_the_bytes_chunk_by_chunk_encoding_stores(
        tmp_path: Path, dtype: str, channels: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    data = (rng.random(SIZE + (channels,)) * 1000).astype(dtype)
    packed_calls: list[int] = []
    real = write._packed

    def counting(*args: Any) -> Iterator[tuple[str, memoryview]]:
        packed_calls.append(1)
        return real(*args)
    monkeypatch.setattr(write, "_packed", counting)
    roots = []
    for name, packs in (("packed", True), ("encoded", False)):
        root = tmp_path / name
        ba = bc.create(str(root), dtype=dtype, size=SIZE, chunk_size=CHUNK, voxel_offset=OFFSET,
                       num_channels=channels, compression=None)
        if not packs:
            monkeypatch.setattr(type(ba.scale_io.store), "takes_buffers", False)
        ba[...] = data
        np.testing.assert_array_equal(ba[...], data)
        # A box on the chunk grid that starts inside the volume: whole chunks, the last ones clipped.
        ba[-5:33, 13:50, -56:-34] = data[32:70, 8:45, 8:30] + 1
        roots.append(root)
        monkeypatch.setattr(type(ba.scale_io.store), "takes_buffers", True)
    assert packed_calls  # the packed path ran for the first volume
    assert _files(roots[0]) == _files(roots[1])


class _Recorder(MemoryStore):
    """A memory store that keeps the type of every chunk value it was given."""

    takes_buffers = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.types: set[type] = set()

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        self.types |= {type(v) for k, v in items.items() if "/" in k}  # chunks, not the info
        super().set_many(items, options)


@pytest.mark.parametrize("takes", [False, True])
def test_only_stores_that_take_buffers_get_views(takes: bool) -> None:
    store = _Recorder(f"memory://packed-{takes}")
    store.takes_buffers = takes
    ba = bc.create(store, dtype="uint16", size=(64, 64, 64), chunk_size=(32, 32, 32), compression=None)
    data = np.arange(64**3, dtype=np.uint16).reshape((64, 64, 64), order="F")
    ba[...] = data
    assert store.types == ({memoryview} if takes else {bytes})
    np.testing.assert_array_equal(ba[...][..., 0] if ba[...].ndim == 4 else ba[...], data)
    # The memory store kept copies: writing other voxels through the reused buffer changes nothing stored.
    ba[...] = np.zeros_like(data)
    ba2 = bc.open(store)
    assert not ba2[...].any()


def test_gzip_and_bool_scales_encode_chunk_by_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[Sequence[Any]] = []
    monkeypatch.setattr(write, "_packed", lambda *args: called.append(args) or iter(()))
    zipped = bc.create(str(tmp_path / "gz"), dtype="uint8", size=(32, 32, 32), chunk_size=(16, 16, 16),
                       compression="gzip")
    zipped[...] = 3
    flags = bc.create(str(tmp_path / "flags"), dtype="bool", size=(32, 32, 32), chunk_size=(16, 16, 16),
                      compression=None)
    flags[...] = True
    assert not called
    assert (zipped[...] == 3).all() and flags[...].all()


@pytest.mark.parametrize("dtype", ["bool", "uint8", "uint16", "float32", "uint64"])
def test_encode_into_lays_out_the_bytes_of_encode(dtype: str) -> None:
    codec = RawCodec(np.dtype(dtype), 2)
    rng = np.random.default_rng(2)
    chunk = np.asarray(rng.integers(0, 2 if dtype == "bool" else 200, size=(64, 32, 16, 2))).astype(dtype)
    out = np.full(codec.expected_nbytes(chunk.shape) + 8, 0xAB, dtype=np.uint8)
    codec.encode_into(chunk, out[:-8])
    assert out[:-8].tobytes() == codec.encode(chunk)
    assert (out[-8:] == 0xAB).all()  # nothing past its bytes
