"""Plain raw chunks on local disk read in place by the span kernel (bigarrays_core/kernels/spans.py,
through StoredChunks): the same voxels as the chunk-by-chunk path for every dtype, channel
selection and edge; whatever the kernel cannot read goes the ordinary way, with the same errors."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
import bigarrays_core.array.source as source
from bigarrays_core.errors import ChunkDecodeError, ChunkNotFoundError
from bigarrays_core.geometry.grid import parse_chunk_name
from bigarrays_core.kernels import paste, spans
from bigarrays_core.kvstore import at_hand_only

DTYPES = ["uint8", "int16", "uint32", "uint64", "float32", "float64"]
OFFSET = (-37, 5, -64)
SIZE = (70, 45, 30)
CHUNK = (16, 8, 8)


class KernelCalls:
    """Counts the span kernel's calls and the chunks it filled."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.chunks = 0
        real = source.reader

        def counting(dtype: np.dtype) -> Callable[..., None] | None:
            kernel = real(dtype)
            if kernel is None:
                return None

            def run(jobs: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> None:
                self.calls += 1
                kernel(jobs, scratch, out)
                self.chunks += int((jobs[:, spans.GOT] == jobs[:, spans.NBYTES]).sum())
            return run
        monkeypatch.setattr(source, "reader", counting)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> KernelCalls:
    paste.precompile(("uint8",))
    return KernelCalls(monkeypatch)


def _volume(tmp_path: Path, dtype: str, channels: int = 1) -> tuple[bc.BigArray, np.ndarray]:
    paste.precompile((dtype,))
    ba = bc.create(str(tmp_path / f"v_{dtype}_{channels}"), dtype=dtype, size=SIZE, chunk_size=CHUNK,
                   voxel_offset=OFFSET, num_channels=channels, compression=None, layer_type="image")
    rng = np.random.default_rng(7)
    data = (rng.random(SIZE + (channels,)) * 1000).astype(dtype)
    ba[...] = data
    return ba, data


def _ordinary(ba: bc.BigArray, key: Any, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """``ba[key]`` read chunk by chunk, without the span kernel."""
    with monkeypatch.context() as m:
        m.setattr(source, "reader", lambda dtype: None)
        return ba[key]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_boxes_read_in_place_equal_the_data_and_the_chunk_by_chunk_read(
        tmp_path: Path, dtype: str, channels: int, calls: KernelCalls, monkeypatch: pytest.MonkeyPatch) -> None:
    ba, data = _volume(tmp_path, dtype, channels)
    rng = np.random.default_rng(3)
    lo, hi = np.array(OFFSET), np.array(OFFSET) + np.array(SIZE)
    for _ in range(25):
        start = rng.integers(lo - 6, hi - 1)
        stop = start + rng.integers(1, 40, 3)
        c0 = int(rng.integers(0, channels))
        c1 = int(rng.integers(c0 + 1, channels + 1))
        key = (*(slice(int(a), int(b)) for a, b in zip(start, stop)), slice(c0, c1))
        got = ba[key]
        want = np.zeros(tuple(int(b - a) for a, b in zip(start, stop)) + (c1 - c0,), dtype=dtype)
        a, b = np.maximum(start, lo), np.minimum(stop, hi)
        if (a < b).all():  # the part inside the volume; outside it stays zero
            want[tuple(slice(int(x - s), int(y - s)) for x, y, s in zip(a, b, start))] = \
                data[tuple(slice(int(x - o), int(y - o)) for x, y, o in zip(a, b, lo))][..., c0:c1]
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, _ordinary(ba, key, monkeypatch))
    assert calls.calls > 0 and calls.chunks > 0


def test_missing_compressed_and_wrong_size_chunks_go_the_ordinary_way(
        tmp_path: Path, calls: KernelCalls, monkeypatch: pytest.MonkeyPatch) -> None:
    ba, data = _volume(tmp_path, "uint8")
    root = Path(ba.url.removeprefix("file://")) / ba.scale_io.scale.key
    names = sorted(p.name for p in root.iterdir())
    gone, zipped = root / names[0], root / names[1]
    gone.unlink()  # missing: zeros
    zipped.with_name(zipped.name + ".gz").write_bytes(gzip.compress(zipped.read_bytes()))
    zipped.unlink()  # only a .gz variant: inflated by the ordinary path
    box = bc.Box(OFFSET, tuple(o + s for o, s in zip(OFFSET, SIZE)))
    got = ba.read(box)
    missing = parse_chunk_name(gone.name)
    want = data.copy()
    want[tuple(slice(a - o, b - o) for a, b, o in zip(missing.start, missing.stop, OFFSET))] = 0
    np.testing.assert_array_equal(got, want)
    with monkeypatch.context() as m:
        m.setattr(source, "reader", lambda dtype: None)
        np.testing.assert_array_equal(got, ba.read(box))
    assert calls.chunks == len(names) - 2
    # A plain file of another size is the ordinary path's error, naming the chunk.
    third = root / names[2]
    whole = third.read_bytes()
    third.write_bytes(whole[:-1])
    with pytest.raises(ChunkDecodeError, match=names[2]):
        ba.read(box)
    third.write_bytes(whole)
    # ... and a missing chunk without fill_missing is its ChunkNotFoundError.
    strict = bc.open(ba.url, fill_missing=False)
    with pytest.raises(ChunkNotFoundError, match=names[0]):
        strict.read(box)


def test_a_chunk_the_kernel_reads_short_is_read_again_the_ordinary_way(
        tmp_path: Path, calls: KernelCalls, monkeypatch: pytest.MonkeyPatch) -> None:
    ba, data = _volume(tmp_path, "uint8")
    store = ba.scale_io.store
    real = store.plain_files
    short = tmp_path / "short"
    short.write_bytes(b"\x01" * 5)

    def cut_short(keys: Any, sizes: Any) -> list[int | None] | None:
        fds = real(keys, sizes)
        assert fds is not None and fds[0] is not None
        os.close(fds[0])
        fds[0] = os.open(short, os.O_RDONLY)  # as if the file had been cut short after it was opened
        return fds
    monkeypatch.setattr(store, "plain_files", cut_short)
    np.testing.assert_array_equal(ba[...], data)
    assert calls.calls > 0


def test_every_descriptor_is_closed(tmp_path: Path, calls: KernelCalls, monkeypatch: pytest.MonkeyPatch) -> None:
    ba, _ = _volume(tmp_path, "uint8")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        ba[...]
    root = Path(ba.url.removeprefix("file://")) / ba.scale_io.scale.key
    name = sorted(p.name for p in root.iterdir())[5]
    (root / name).write_bytes(b"\x00")  # the ordinary path's decode error, after the kernel ran
    with pytest.raises(ChunkDecodeError):
        ba[...]
    assert len(os.listdir("/proc/self/fd")) == before
    assert calls.calls > 0


def test_not_used_at_hand_for_bool_or_for_stores_without_files(tmp_path: Path, calls: KernelCalls) -> None:
    ba, data = _volume(tmp_path, "uint8")
    assert ba.scale_io.store.plain_files([], []) == []
    with at_hand_only():
        assert ba.scale_io.store.plain_files([ba.chunks()[0].key], [1]) is None
    paste.precompile(("bool",))
    flags = bc.create(str(tmp_path / "flags"), dtype="bool", size=SIZE, chunk_size=CHUNK, compression=None)
    flags[...] = data > 500
    np.testing.assert_array_equal(flags[...], data > 500)
    memory = bc.create("memory://in-place", dtype="uint8", size=SIZE, chunk_size=CHUNK, compression=None)
    memory[...] = data
    assert memory.scale_io.store.plain_files([memory.chunks()[0].key], [1]) is None
    np.testing.assert_array_equal(memory[...], data)
    assert calls.calls == 0
