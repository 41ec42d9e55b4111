"""The compressed_segmentation region decoder (kernels/cseg.py) against the package's decoder.

Properties: for random uint32/uint64 volumes (few labels, many labels, one label, labels
around 2**32, patches), chunk shapes that are not multiples of the block size, any block
size and channel count, and random regions, ``decode_into`` writes exactly the package's
``decompress`` result, sliced, into a strided view and nothing outside it; ``decode``
equals the volume. Streams other encoders may write (short lookup tables at the end,
shared tables, tables before values) decode; corrupt streams raise ``ValueError`` naming
what is wrong. A fuzzing run with numba's bounds checking on proves no corruption makes
the kernel index outside the stream or the output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import compressed_segmentation as cseg
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import types

import bigarrays_core as bc
from bigarrays_core.codecs.compressed_segmentation import CompressedSegmentationCodec
from bigarrays_core.kernels.jit import kernel

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = 0xDEADBEEF


def labels(kind: str, dtype: type, shape: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A label volume of one kind (see the module docstring)."""
    top = 2**32 if dtype == np.uint32 else 2**64
    if kind == "few":
        vol = rng.integers(0, 3, size=shape, dtype=np.uint64)
    elif kind == "many":
        vol = rng.integers(0, top, size=shape, dtype=np.uint64)
    elif kind == "one":
        vol = np.full(shape, rng.integers(0, top, dtype=np.uint64), dtype=np.uint64)
    elif kind == "around-2**32":
        base = 2**32 - 2 if dtype == np.uint64 else 2**32 - 4
        vol = base + rng.integers(0, 4, size=shape, dtype=np.uint64)
    else:  # patches: few labels per block, like segmentation
        coarse = rng.integers(0, top, size=tuple(-(-n // 3) for n in shape), dtype=np.uint64)
        x, y, z, c = np.meshgrid(*[np.arange(n) // 3 for n in shape], indexing="ij")
        vol = coarse[x, y, z, c]
    return np.asfortranarray(vol.astype(dtype))


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(st.sampled_from([np.uint32, np.uint64]))
    spatial = tuple(draw(st.integers(1, 19)) for _ in range(3))
    channels = draw(st.integers(1, 3))
    block = tuple(draw(st.integers(1, 9)) for _ in range(3))
    kind = draw(st.sampled_from(["few", "many", "one", "around-2**32", "patches"]))
    shape = spatial + (channels,)
    region = []
    for n in shape:
        start = draw(st.integers(0, n - 1))
        region.append(slice(start, draw(st.integers(start + 1, n))))
    pad = tuple(draw(st.integers(0, 3)) for _ in range(4))
    return {"dtype": dtype, "shape": shape, "block": block, "kind": kind, "region": tuple(region), "pad": pad,
            "seed": draw(st.integers(0, 2**32 - 1))}


def package_decode(vol: np.ndarray, block: tuple[int, int, int]) -> np.ndarray:
    """Encode and decode every channel with the compressed-segmentation package."""
    out = np.empty(vol.shape, dtype=vol.dtype, order="F")
    for c in range(vol.shape[3]):
        stream = cseg.compress(np.asfortranarray(vol[..., c]), block_size=block, order="F")
        out[..., c] = cseg.decompress(bytes(stream), vol.shape[:3], vol.dtype, block_size=block, order="F")
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_decode_into_a_region_equals_the_package_decode_sliced(case: dict[str, Any]) -> None:
    dtype, shape, block, region = case["dtype"], case["shape"], case["block"], case["region"]
    vol = labels(case["kind"], dtype, shape, np.random.default_rng(case["seed"]))
    reference = package_decode(vol, block)
    np.testing.assert_array_equal(reference, vol)  # the package round-trips: it is a fair reference
    codec = CompressedSegmentationCodec(np.dtype(dtype), shape[3], block)
    data = codec.encode(vol)

    extent = tuple(s.stop - s.start for s in region)
    pad = case["pad"]
    parent = np.full(tuple(e + 2 * p for e, p in zip(extent, pad)), SENTINEL, dtype=dtype, order="F")
    inside = tuple(slice(p, p + e) for p, e in zip(pad, extent))
    codec.decode_into(data, shape, region, parent[inside])

    np.testing.assert_array_equal(parent[inside], reference[region])
    untouched = np.ones(parent.shape, dtype=bool)
    untouched[inside] = False
    assert (parent[untouched] == SENTINEL).all()
    np.testing.assert_array_equal(codec.decode(data, shape), vol)


def one_block_chunk(vol: np.ndarray, bits: int) -> bytes:
    """A one-channel chunk holding ``vol`` (3-D) as one block with ``bits`` encoded bits.

    Written here from the format's description (docs/format.md; the package's encoder is too
    slow for blocks with tens of thousands of labels): header, values, then the sorted table.
    """
    table, idx = np.unique(vol.ravel(order="F"), return_inverse=True)
    assert len(table) <= 2**bits
    nvalues = -(-bits * vol.size // 32)
    values = np.zeros(nvalues, dtype=np.uint64)
    if bits:
        bit = np.arange(vol.size, dtype=np.uint64) * np.uint64(bits)
        np.bitwise_or.at(values, (bit // np.uint64(32)).astype(np.intp),
                         idx.astype(np.uint64) << (bit % np.uint64(32)))
    entries = np.frombuffer(table.astype(vol.dtype.newbyteorder("<")).tobytes(), "<u4")
    header = [2 + nvalues | (bits << 24), 2]
    return np.concatenate([[1], header, values.astype("<u4"), entries]).astype("<u4").tobytes()


def test_every_encoded_bits_width_decodes(rng: np.random.Generator) -> None:
    # 1, 2, 4, 16, 256, 65536, 65537 distinct labels in one block: bits 0, 1, 2, 4, 8, 16, 32.
    block = (64, 32, 33)
    for dtype in (np.uint32, np.uint64):
        codec = CompressedSegmentationCodec(np.dtype(dtype), 1, block)
        for bits, distinct in ((0, 1), (1, 2), (2, 4), (4, 16), (8, 256), (16, 65536), (32, 65537)):
            flat = rng.permutation(np.arange(64 * 32 * 33) % distinct).astype(np.uint64) * np.uint64(2**33 + 1)
            vol = np.asfortranarray(flat.astype(dtype).reshape(block, order="F"))
            data = one_block_chunk(vol, bits)
            np.testing.assert_array_equal(codec.decode(data, block + (1,))[..., 0], vol)
            out = np.zeros((20, 7, 3, 1), dtype=dtype, order="F")
            codec.decode_into(data, block + (1,), (slice(30, 50), slice(1, 8), slice(29, 32), slice(0, 1)), out)
            np.testing.assert_array_equal(out[..., 0], vol[30:50, 1:8, 29:32])


# -- streams other encoders write ----------------------------------------------------------


def stream(blocks: list[tuple[int, int, int]], body: list[int]) -> bytes:
    """A one-channel chunk: block headers ``(table, bits, values)`` then ``body`` words."""
    words = [1]
    for table, bits, values in blocks:
        words += [table | (bits << 24), values]
    return np.array(words + body, dtype="<u4").tobytes()


def test_a_short_lookup_table_at_the_end_of_the_stream_decodes() -> None:
    # Block 2x2x1 with 3 distinct labels: bits 2, but only 3 table entries are stored, last in the stream.
    codec = CompressedSegmentationCodec(np.dtype(np.uint32), 1, (2, 2, 1))
    data = stream([(3, 2, 2)], [0b10_01_00_01, 7, 8, 9])
    expected = np.array([8, 7, 8, 9], dtype=np.uint32).reshape((2, 2, 1, 1), order="F")
    np.testing.assert_array_equal(codec.decode(data, (2, 2, 1, 1)), expected)


def test_an_index_past_a_short_lookup_table_is_refused() -> None:
    codec = CompressedSegmentationCodec(np.dtype(np.uint32), 1, (2, 2, 1))
    data = stream([(3, 2, 2)], [0b11_01_00_01, 7, 8, 9])  # index 3 of a 3-entry table
    with pytest.raises(ValueError, match=r"block \(0, 0, 0\): lookup-table index 3 but only 3 entries"):
        codec.decode(data, (2, 2, 1, 1))
    out = np.zeros((1, 1, 1, 1), dtype=np.uint32)
    with pytest.raises(ValueError, match="lookup-table index 3"):  # even when the region avoids that voxel
        codec.decode_into(data, (2, 2, 1, 1), (slice(0, 1), slice(0, 1), slice(0, 1), slice(0, 1)), out)


def test_padding_voxels_of_a_partial_block_may_hold_any_index() -> None:
    # Chunk 1x2x1 in a 2x2x1 block: voxels x=1 are padding; their index 3 is past the table but unused.
    codec = CompressedSegmentationCodec(np.dtype(np.uint64), 1, (2, 2, 1))
    data = stream([(3, 2, 2)], [0b11_01_11_00, 5, 0, 6, 0])
    np.testing.assert_array_equal(codec.decode(data, (1, 2, 1, 1))[:, :, 0, 0], [[5, 6]])


def test_shared_tables_and_tables_before_values_decode() -> None:
    # Two 2x1x1 blocks share one uint64 table [2**40 + 1, 2**32 + 3] stored before the values;
    # block 1 is constant (bits 0: the table's first entry).
    codec = CompressedSegmentationCodec(np.dtype(np.uint64), 1, (2, 1, 1))
    data = stream([(4, 1, 8), (4, 0, 9)], [1, 256, 3, 1, 0b10, 0])
    out = codec.decode(data, (4, 1, 1, 1))
    np.testing.assert_array_equal(out[:, 0, 0, 0], [2**40 + 1, 2**32 + 3, 2**40 + 1, 2**40 + 1])


def test_a_lookup_table_must_lie_in_its_own_channel_stream() -> None:
    # Each channel's table is the last word of its stream.
    codec = CompressedSegmentationCodec(np.dtype(np.uint32), 2, (1, 1, 1))
    ch = [2 | (0 << 24), 0, 4]  # header: table at word 2, bits 0; then the table [4]
    words = [2, 2 + len(ch)] + ch + [2 | (0 << 24), 0, 5]
    data = np.array(words, dtype="<u4").tobytes()
    np.testing.assert_array_equal(codec.decode(data, (1, 1, 1, 2)).ravel(), [4, 5])
    # Channel 0 without its table: the word after it belongs to channel 1 (TensorStore would read it).
    bad = np.array([2, 2 + 2, 2 | (0 << 24), 0] + [2 | (0 << 24), 0, 5], dtype="<u4").tobytes()
    with pytest.raises(ValueError, match="channel 0, block"):
        codec.decode(bad, (1, 1, 1, 2))


# -- corrupt streams -----------------------------------------------------------------------


@pytest.fixture
def valid() -> tuple[CompressedSegmentationCodec, bytes, tuple[int, int, int, int]]:
    shape = (13, 10, 9, 2)
    codec = CompressedSegmentationCodec(np.dtype(np.uint64), 2, (4, 4, 4))
    vol = labels("patches", np.uint64, shape, np.random.default_rng(5))
    return codec, codec.encode(vol), shape


def spoil(data: bytes, word: int, value: int) -> bytes:
    words = np.frombuffer(data, "<u4").copy()
    words[word] = value
    return words.tobytes()


def test_corrupt_streams_raise_value_error_naming_what_is_wrong(valid: Any) -> None:
    codec, data, shape = valid
    words = np.frombuffer(data, "<u4")
    ch1 = int(words[1])
    n1 = len(words) - ch1
    head = int(words[ch1 + 2])  # channel 1, block (1, 0, 0)
    cases = [
        (data[:-2], "is not a compressed_segmentation chunk"),
        (spoil(data, 0, 3), "bad channel offsets"),
        (spoil(data, 1, len(words) + 1), "bad channel offsets"),
        (data[:4 * (ch1 + 20)], r"channel 1: a stream of 20 words is too short for 36 block headers"),
        (spoil(data, ch1 + 2, (head & 0xFFFFFF) | (3 << 24)), r"channel 1, block \(1, 0, 0\): invalid encoded bits 3"),
        (spoil(data, ch1 + 3, n1 - 1) if head >> 24 else spoil(spoil(data, ch1 + 2, (head & 0xFFFFFF) | (1 << 24)),
                                                                  ch1 + 3, n1 - 1),
         r"channel 1, block \(1, 0, 0\): encoded values at words"),
        (spoil(data, ch1 + 2, (head & 0xFF000000) | (n1 - 1)), r"channel 1, block \(1, 0, 0\): lookup table at word"),
    ]
    region = (slice(0, 2), slice(0, 2), slice(0, 2), slice(0, 1))  # channel 0 only: channel 1 is checked too
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            codec.decode(bad, shape)
        with pytest.raises(ValueError, match=message):
            codec.decode_into(bad, shape, region, np.zeros((2, 2, 2, 1), dtype=np.uint64))


def test_a_corrupt_chunk_in_a_threaded_read_names_its_key(local_url: str) -> None:
    ba = bc.create(local_url, dtype="uint64", size=(64, 64, 32), chunk_size=(16, 16, 16),
                   encoding="compressed_segmentation", compressed_segmentation_block_size=(8, 8, 8))
    vol = labels("patches", np.uint64, (64, 64, 32, 1), np.random.default_rng(9))
    ba[:, :, :] = vol
    np.testing.assert_array_equal(ba[3:61, 5:60, 1:31], vol[3:61, 5:60, 1:31])  # 32 chunks: the thread pool
    key = f"{ba.key}/32-48_16-32_16-32"
    good = ba.store.get(key)
    assert good is not None
    ba.store.set(key, good[:40])
    with pytest.raises(bc.ChunkDecodeError, match="32-48_16-32_16-32"):
        ba[3:61, 5:60, 1:31]


FUZZ = textwrap.dedent("""
    import sys
    import numba
    import numpy as np
    assert numba.config.BOUNDSCHECK, "bounds checking is off"
    from bigarrays_core.codecs.compressed_segmentation import CompressedSegmentationCodec
    from bigarrays_core.kernels import cseg

    # The harness catches an out-of-bounds index: the kernel itself, handed too small an output.
    chunk = np.array([1, 2, 0, 5], dtype="<u4").tobytes()
    try:
        cseg.decode_region(chunk, (1, 1, 1, 1), (1, 1, 1), (0, 1, 0, 1, 0, 1, 0),
                                  np.zeros((0, 1, 1, 1), dtype=np.uint32))
    except IndexError:
        pass
    else:
        sys.exit("bounds checking did not catch an out-of-bounds write")

    rng = np.random.default_rng(int(sys.argv[1]))
    outcomes = {"ok": 0, "ValueError": 0}
    for trial in range(int(sys.argv[2])):
        dtype = np.dtype(rng.choice(["uint32", "uint64"]))
        shape = tuple(int(n) for n in rng.integers(1, 12, 3)) + (int(rng.integers(1, 3)),)
        block = tuple(int(b) for b in rng.integers(1, 6, 3))
        vol = np.asfortranarray(rng.integers(0, int(rng.choice([1, 3, 40, 2**31])), shape).astype(dtype))
        codec = CompressedSegmentationCodec(dtype, shape[3], block)
        words = np.frombuffer(codec.encode(vol), "<u4").copy()
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, len(words)))
            kind = rng.integers(0, 4)
            if kind == 0:
                words[at] = rng.integers(0, 2**32)
            elif kind == 1:
                words[at] = rng.integers(0, len(words) + 8)
            elif kind == 2:
                words[at] = (int(words[at]) & 0xFFFFFF) | (int(rng.choice([0, 1, 2, 4, 8, 16, 32])) << 24)
            else:
                words[at] = (int(words[at]) & 0xFF000000) | int(rng.integers(0, len(words) + 8))
        data = words.tobytes()
        if rng.random() < 0.3:
            data = data[: int(rng.integers(0, len(data)))]
        region = []
        for n in shape:
            a = int(rng.integers(0, n))
            region.append(slice(a, int(rng.integers(a + 1, n + 1))))
        try:
            codec.decode(data, shape)
            codec.decode_into(data, shape, tuple(region),
                              np.zeros([s.stop - s.start for s in region], dtype=dtype, order="F"))
            outcomes["ok"] += 1
        except ValueError:
            outcomes["ValueError"] += 1
    print(outcomes)
    assert outcomes["ok"] and outcomes["ValueError"], outcomes
""")


def test_fuzzed_streams_never_index_outside_the_stream_or_the_output(tmp_path: Path) -> None:
    # numba does not check bounds by default: recompile with checks (in a fresh cache) and fuzz.
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", FUZZ, "20260224", "3000"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


# -- how the kernel is loaded --------------------------------------------------------------


def test_importing_the_library_does_not_import_numba() -> None:
    code = ("import sys, bigarrays_core, bigarrays_core.codecs.compressed_segmentation\n"
            "assert 'numba' not in sys.modules, 'numba was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_kernel_that_cannot_be_cached_on_disk_is_compiled_in_memory() -> None:
    # No file behind the function: numba has nowhere to cache it (as for a read-only install
    # with no writable cache directory) and must still compile.
    namespace: dict[str, Any] = {}
    exec(compile("def plus_one(a):\n    return a + 1\n", "<generated>", "exec"), namespace)
    with pytest.raises(RuntimeError, match="cannot cache"):
        numba.njit(cache=True)(namespace["plus_one"])(1)
    compiled = kernel([types.int64(types.int64)])(namespace["plus_one"])
    assert compiled(41) == 42
    lazy = kernel()(namespace["plus_one"])  # compiled per argument types on first call
    assert lazy(41) == 42 and lazy(0.5) == 1.5
