"""Reading sharded scales: every spec variant, request counts, missing and corrupt shards.

Datasets are written by bigarrays here (TensorStore- and CloudVolume-written shards are
read in ``tests/interop/test_sharded_interop.py``); corrupt shards are made by editing the
stored shard files directly.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.array import executor
from bigarrays_core.geometry import Box
from bigarrays_core.kvstore import MemoryStore, open_store
from bigarrays_core.kvstore.sharding import ShardedStore

from .counting import CountingStore

#: 70 x 45 x 23 voxels from (-37, 5, -4) in 16 x 16 x 8 chunks: a 5 x 3 x 3 grid (Morton bits
#: 3 + 2 + 2), every upper edge clipped.
GEOMETRY: dict[str, Any] = {"size": (70, 45, 23), "chunk_size": (16, 16, 8), "voxel_offset": (-37, 5, -4)}
BOUNDS = Box((-37, 5, -4), (33, 50, 19))
CUTOUTS = [
    BOUNDS,
    Box((-30, 10, -1), (5, 40, 12)),  # crosses chunk (and shard) borders on every axis
    Box((20, 40, 10), (60, 70, 40)),  # through the clipped edge chunks, past the bounds
    Box((-50, 0, -10), (-36, 6, -3)),  # mostly outside: zeros there
]
ENCODINGS = {"raw": "uint16", "compressed_segmentation": "uint64", "png": "uint8", "jpeg": "uint8"}


def spec(preshift: int = 1, hash: str = "identity", minishard: int = 2, shard: int = 4,
         index: str = "gzip", data: str = "gzip") -> dict[str, Any]:
    return {"@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": preshift, "hash": hash,
            "minishard_bits": minishard, "shard_bits": shard, "minishard_index_encoding": index,
            "data_encoding": data}


SPECS = {
    "identity-gzip-gzip": spec(),
    "identity-raw-raw": spec(index="raw", data="raw"),
    "murmur-gzip-raw": spec(2, "murmurhash3_x86_128", 1, 3, "gzip", "raw"),
    "murmur-raw-gzip": spec(0, "murmurhash3_x86_128", 3, 2, "raw", "gzip"),
    "one-shard": spec(0, "identity", 0, 0),
    "preshift-only": spec(7, "identity", 0, 0),
    "too-few-bits": spec(1, "identity", 1, 1),  # shards are not boxes: several regions per shard
    "wide": spec(0, "identity", 9, 7, "raw", "raw"),  # 512 minishards, mostly empty
}


def sample(rng: np.random.Generator, encoding: str, shape: tuple[int, int, int]) -> np.ndarray:
    full = shape + (1,)
    if encoding == "jpeg":
        x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
        return np.clip(100 + 60 * np.sin(x / 6.0) * np.cos(y / 5.0) + 3 * z, 0, 255).astype(np.uint8).reshape(full)
    if encoding == "compressed_segmentation":
        labels = np.array([0, 1, 7, 2**40 + 3, 2**64 - 1], dtype=np.uint64)
        return labels[rng.integers(0, len(labels), size=full)]
    info = np.iinfo(np.dtype(ENCODINGS[encoding]))
    return rng.integers(info.min, info.max, size=full, dtype=ENCODINGS[encoding], endpoint=True)


def window(data: np.ndarray, box: Box) -> np.ndarray:
    out = np.zeros(box.shape + data.shape[3:], dtype=data.dtype)
    inner = box.intersect(BOUNDS)
    if not inner.is_empty:
        out[inner.slices_in(box)] = data[inner.slices_in(BOUNDS)]
    return out


def make(url: str | bc.kvstore.KVStore, sharding: Any = None, **kwargs: Any) -> bc.BigArray:
    args: dict[str, Any] = {"dtype": "uint16", **GEOMETRY, "sharding": sharding or spec()}
    args.update(kwargs)
    return bc.create(url, **args)


def shard_files(store: bc.kvstore.KVStore) -> list[str]:
    return sorted(k for k in store.list() if k.endswith(".shard"))


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("name", list(SPECS))
def test_round_trip_every_spec_variant(dataset_url: str, name: str, encoding: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, SPECS[name], dtype=ENCODINGS[encoding], encoding=encoding)
    data = sample(rng, encoding, BOUNDS.shape)
    ba[:, :, :] = data
    reopened = bc.open(dataset_url, fill_missing=False)
    assert reopened.sharding == bc.kvstore.sharding.ShardingSpec.from_json(SPECS[name])
    whole = reopened[:, :, :]
    if encoding == "jpeg":
        assert np.abs(whole.astype(int) - data).max() <= 24
        data = whole  # compare cutouts with the decoded volume
    else:
        np.testing.assert_array_equal(whole, data)
    for box in CUTOUTS:
        np.testing.assert_array_equal(bc.open(dataset_url).read(box), window(data, box))
    assert not any(k.endswith((".gz", ".zstd")) for k in reopened.store.list())
    assert len(reopened.missing_chunks()) == 0


def test_opening_and_reading_one_chunk_costs_three_requests() -> None:
    store = CountingStore(MemoryStore())
    ba = make(store, spec(1, "identity", 2, 4))
    ba[:, :, :] = np.ones(BOUNDS.shape, dtype=np.uint16)
    store.reset()
    fresh = bc.open(store)
    assert store.calls == {"get_many": 1}  # the info; nothing of the shards yet
    store.reset()
    chunk = fresh.chunks()[7]
    fresh.read(chunk.box)
    # The shard index, the minishard index and the chunk's data: one ranged read each.
    assert store.requests == 3 and store.calls == {"get_ranges": 3}
    store.reset()
    neighbour = next(r for r in fresh.chunks() if r.key != chunk.key
                     and fresh.scale_io.store.shard_key_of(r.key) == fresh.scale_io.store.shard_key_of(chunk.key))
    fresh.read(neighbour.box)
    assert store.requests <= 2  # the shard index is cached (and its minishard too, if the same)
    store.reset()
    fresh.read(chunk.box)
    assert store.requests == 1  # only the data now


def test_many_shards_are_read_in_one_batch_per_round_and_runs_coalesce() -> None:
    store = CountingStore(MemoryStore())
    ba = make(store, spec(1, "identity", 2, 4, "raw", "raw"))
    ba[:, :, :] = np.arange(np.prod(BOUNDS.shape), dtype=np.uint16).reshape(BOUNDS.shape)
    fresh = bc.open(store)
    chunks = fresh.scale_io.store
    assert isinstance(chunks, ShardedStore)
    keys = [r.key for r in fresh.chunks()]
    shards = {chunks.shard_key_of(k) for k in keys}
    assert len(shards) > 1
    store.reset()
    values = list(chunks.iter_values(keys))
    assert all(v is not None for v in values)
    assert store.calls == {"get_ranges": 3}
    # Every chunk of a shard is read: one range per shard (the minishard indexes between
    # minishards' data are read through).
    data_round = store.ranges[-len(shards):]
    assert sorted(r.key for r in data_round) == sorted(shards)


def test_reads_run_in_worker_threads_consistently(rng: np.random.Generator) -> None:
    store = MemoryStore()
    ba = make(store, spec(0, "murmurhash3_x86_128", 2, 3))
    data = sample(rng, "raw", BOUNDS.shape)
    ba[:, :, :] = data
    executor.set_num_threads(4)
    try:
        fresh = bc.open(store)
        for box in CUTOUTS * 3:
            np.testing.assert_array_equal(fresh.read(box), window(data, box))
    finally:
        executor.set_num_threads(executor.num_threads())


def test_partial_reads_of_raw_shards_read_only_the_span() -> None:
    store = CountingStore(MemoryStore())
    ba = make(store, spec(index="raw", data="raw"))
    data = np.arange(np.prod(BOUNDS.shape), dtype=np.uint16).reshape(BOUNDS.shape + (1,))
    ba[:, :, :] = data
    fresh = bc.open(store)
    chunk = fresh.chunks()[0]
    fresh.read(chunk.box)  # caches the indexes
    store.reset()
    one_row = Box(chunk.box.start, (chunk.box.stop[0], chunk.box.start[1] + 1, chunk.box.start[2] + 1))
    np.testing.assert_array_equal(fresh.read(one_row), data[one_row.slices_in(BOUNDS)])
    assert [r.stop - r.start for r in store.ranges] == [16 * 2]  # 16 uint16 voxels, not the 4 KiB chunk


# -- missing data -----------------------------------------------------------------------------
def test_missing_shards_and_chunks_read_as_zeros_or_name_the_chunk_and_shard(dataset_url: str) -> None:
    ba = make(dataset_url, spec(1, "identity", 2, 4))
    first = ba.chunks()[0]
    ba.write(first.box, np.full(first.box.shape, 9, dtype=np.uint16))  # one chunk: one shard exists
    assert len(shard_files(ba.store)) == 1
    chunks = ba.scale_io.store
    assert isinstance(chunks, ShardedStore)
    same_shard = [r for r in ba.chunks()[1:] if chunks.shard_key_of(r.key) == chunks.shard_key_of(first.key)]
    other_shard = [r for r in ba.chunks() if chunks.shard_key_of(r.key) != chunks.shard_key_of(first.key)]
    assert same_shard and other_shard
    out = bc.open(dataset_url)[:, :, :]
    assert (out[first.box.slices_in(BOUNDS)] == 9).all()
    assert int(out.sum()) == 9 * first.box.size
    strict = bc.open(dataset_url, fill_missing=False)
    strict.read(first.box)
    for ref in (same_shard[0], other_shard[0]):
        with pytest.raises(bc.ChunkNotFoundError) as err:
            strict.read(ref.box)
        cid = int(chunks.chunk_ids([ref.key])[0])
        assert err.value.key == ref.key
        assert f"id {cid}" in str(err.value) and chunks.shard_key_of(ref.key) in str(err.value)
    assert [r.key for r in strict.missing_chunks()] == [r.key for r in ba.chunks()[1:]]


def test_missing_shards_are_remembered_by_the_open_array() -> None:
    store = CountingStore(MemoryStore())
    make(store)
    ba = bc.open(store)
    ref = ba.chunks()[0]
    store.reset()
    assert ba.read(ref.box).sum() == 0
    assert store.requests == 1  # the shard index of a shard that does not exist
    store.reset()
    assert ba.read(ref.box).sum() == 0
    assert store.requests == 0


# -- corrupt shards: errors that name the shard and the chunk, never zeros -----------------------
def corrupt(store: bc.kvstore.KVStore, how: str) -> None:
    """Damage the (only) shard file in ``store``."""
    (key,) = shard_files(store)
    data = bytearray(store.get(key) or b"")
    index = np.frombuffer(bytes(data[:64]), dtype="<u8").reshape(-1, 2).copy()  # minishard_bits 2
    first = int(np.flatnonzero(index[:, 1] > index[:, 0])[0])
    if how == "truncated-in-index":
        data = data[:40]
    elif how == "truncated-in-data":
        data = data[:64 + 10]
    elif how == "truncated-at-end":
        data = data[:-1]
    elif how == "index-past-end":
        index[first, 1] = len(data) + 1000
        data[:64] = index.tobytes()
    elif how == "index-reversed":
        index[first] = index[first, ::-1].copy()
        data[:64] = index.tobytes()
    elif how == "minishard-not-gzip":
        start = 64 + int(index[first, 0])
        data[start:start + 2] = b"xx"
    elif how == "chunk-not-gzip":
        data[64:66] = b"xx"  # the first chunk's gzip header (chunks come first)
    else:
        raise ValueError(how)
    store.set(key, bytes(data))


HOWS = ["truncated-in-index", "truncated-in-data", "truncated-at-end", "index-past-end", "index-reversed",
        "minishard-not-gzip", "chunk-not-gzip"]


@pytest.mark.parametrize("how", HOWS)
def test_corrupt_shards_are_errors_naming_shard_and_chunk(dataset_url: str, how: str, rng: np.random.Generator
                                                           ) -> None:
    ba = make(dataset_url, spec(0, "identity", 2, 0))  # one shard of 4 minishards
    ba[:, :, :] = sample(rng, "raw", BOUNDS.shape)
    corrupt(ba.store, how)
    for fill_missing in (True, False):
        fresh = bc.open(dataset_url, fill_missing=fill_missing)
        with pytest.raises(bc.ChunkDecodeError) as err:
            fresh[:, :, :]
        message = str(err.value)
        assert "1_1_1/0.shard" in message and "id " in message, message
        assert err.value.key is not None and err.value.key.startswith(fresh.key + "/")
    if how not in ("chunk-not-gzip", "truncated-at-end"):  # these break one chunk, not the indexes
        with pytest.raises(bc.ChunkDecodeError):
            bc.open(dataset_url).missing_chunks()


@pytest.mark.parametrize("how", HOWS)
def test_a_write_refuses_to_rewrite_a_corrupt_shard(dataset_url: str, how: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, spec(0, "identity", 2, 0))
    ba[:, :, :] = sample(rng, "raw", BOUNDS.shape)
    corrupt(ba.store, how)
    (key,) = shard_files(ba.store)
    before = ba.store.get(key)
    ref = ba.chunks()[0]
    if how == "chunk-not-gzip":
        return  # the shard's indexes are intact: rewriting it keeps the damaged chunk's bytes as they are
    with pytest.raises(bc.ChunkDecodeError, match="0.shard"):
        bc.open(dataset_url).write(ref.box, np.zeros(ref.box.shape, dtype=np.uint16))
    assert ba.store.get(key) == before


# -- caches, views and listings -----------------------------------------------------------------
def test_an_array_sees_its_own_writes_and_others_after_clear_cache(rng: np.random.Generator) -> None:
    store = MemoryStore()
    writer = make(store, spec(0, "identity", 2, 0, "raw", "raw"))
    first = sample(rng, "raw", BOUNDS.shape)
    writer[:, :, :] = first
    reader = bc.open(store)
    np.testing.assert_array_equal(reader[:, :, :], first)
    second = first // 2
    writer[:, :, :] = second
    np.testing.assert_array_equal(writer[:, :, :], second)
    reader.clear_cache()
    np.testing.assert_array_equal(reader[:, :, :], second)


def test_a_shard_rewritten_elsewhere_shorter_is_read_afresh(rng: np.random.Generator) -> None:
    """Cached indexes that point past the end of a shard another writer rewrote make the
    adapter read that shard's indexes again, rather than fail or return wrong bytes."""
    store = MemoryStore()
    writer = make(store, spec(0, "identity", 2, 0))
    noisy = sample(rng, "raw", BOUNDS.shape)
    writer[:, :, :] = noisy
    reader = bc.open(store)
    np.testing.assert_array_equal(reader[:, :, :], noisy)  # caches the long shard's indexes
    bc.open(store)[:, :, :] = np.ones(BOUNDS.shape, dtype=np.uint16)  # compresses to almost nothing
    assert (reader[:, :, :] == 1).all()
    (key,) = shard_files(store)
    store.set(key, (store.get(key) or b"")[:64])  # now only the index is left: truly truncated
    with pytest.raises(bc.ChunkDecodeError, match="truncated"):
        reader[:, :, :]


def test_listing_exists_and_chunk_level_access(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, spec(1, "murmurhash3_x86_128", 2, 2))
    refs = ba.chunks()
    some = refs[::3]
    for ref in some:
        ba.write(ref.box, sample(rng, "raw", ref.box.shape))
    chunks = ba.scale_io.store
    assert sorted(chunks.list()) == sorted(r.key for r in some)
    assert sorted(chunks.list(some[1].key)) == [some[1].key]
    assert chunks.exists_many([r.key for r in refs]) == [r in some for r in refs]
    assert [r.key for r in ba.missing_chunks()] == [r.key for r in refs if r not in some]
    loaded = ba.load_chunks(refs[:4])
    assert loaded[0] is not None and loaded[1] is None
    value = next(chunks.iter_values([some[0].key]))
    assert value is not None and value.encoding == "gzip"
    np.testing.assert_array_equal(ba.decode_chunk(some[0], value.data, value.encoding), loaded[0])
    assert ba.decode_chunk(refs[1], None) is None
    with pytest.raises(bc.InvalidKeyError, match="not a chunk key"):
        chunks.get("1_1_1/0-15_5-21_-4-4")  # off the grid
    with pytest.raises(bc.InvalidKeyError):
        chunks.get("other/0-16_5-21_-4-4")
    description = chunks.describe(some[0].key)
    assert ".shard (chunk " in description and some[0].key in description


def test_every_combination_of_small_grids_reads_back(rng: np.random.Generator) -> None:
    """Grids of 1..3 chunks per axis (0..2 Morton bits each) with specs of every bit budget."""
    for shape in itertools.product((1, 2, 3), repeat=3):
        size = tuple(8 * n - 3 for n in shape)
        for bits in [(0, 0, 0), (1, 1, 1), (3, 0, 3), (0, 2, 0)]:
            store = MemoryStore()
            ba = bc.create(store, dtype="uint8", size=size, chunk_size=(8, 8, 8),
                           sharding=spec(bits[0], "identity", bits[1], bits[2], "raw", "gzip"))
            data = rng.integers(0, 255, size=size + (1,), dtype=np.uint8)
            ba[:, :, :] = data
            np.testing.assert_array_equal(bc.open(store, fill_missing=False)[:, :, :], data)


def test_a_sharded_scale_opened_through_open_store_shares_nothing_across_arrays(tmp_path: Any) -> None:
    url = (tmp_path / "ds").as_uri()
    ba = make(url)
    ba[:, :, :] = np.full(BOUNDS.shape, 3, dtype=np.uint16)
    a, b = bc.open(url), bc.open(open_store(url))
    assert a.scale_io.store is not b.scale_io.store
    assert (a[:, :, :] == 3).all() and (b[:, :, :] == 3).all()


# -- one process, several arrays and threads: never two versions of a shard mixed ---------------
def test_an_array_sees_shards_another_array_of_the_process_rewrote(rng: np.random.Generator) -> None:
    """Chunks of variable size (compressed_segmentation, raw chunk data): a rewrite moves the
    chunks after the one changed, so offsets cached by another array would read wrong bytes."""
    store = MemoryStore()
    writer = make(store, spec(0, "identity", 1, 0, "raw", "raw"), dtype="uint64", encoding="compressed_segmentation")
    data = sample(rng, "compressed_segmentation", BOUNDS.shape)
    writer[:, :, :] = data
    reader = bc.open(store, fill_missing=False)
    np.testing.assert_array_equal(reader[:, :, :], data)  # caches the indexes
    first = writer.chunks()[0]
    writer.write(first.box, np.full(first.box.shape, 5, dtype=np.uint64))  # a much shorter chunk
    data[first.box.slices_in(BOUNDS)] = 5
    np.testing.assert_array_equal(reader[:, :, :], data)


def test_readers_never_see_a_shard_half_rewritten_by_writer_threads() -> None:
    store = MemoryStore()
    make(store, spec(0, "identity", 2, 0, "raw", "raw"), dtype="uint64", encoding="compressed_segmentation")
    labels = [np.uint64(v) for v in (1, 2**40 + 7)]
    noisy = np.random.default_rng(1).integers(0, 4, size=BOUNDS.shape, dtype=np.uint64)
    versions = [np.full(BOUNDS.shape, labels[0], dtype=np.uint64), noisy * np.uint64(1000) + labels[1]]
    bc.open(store)[:, :, :] = versions[0]
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        ba = bc.open(store)
        try:
            for i in range(40):
                ba[:, :, :] = versions[(i + 1) % 2]  # whole shard rewritten, chunk sizes change
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def reader() -> None:
        ba = bc.open(store, fill_missing=False)
        try:
            while not stop.is_set():
                for ref in ba.chunks():
                    got = ba.read(ref.box)[..., 0]
                    if not any(np.array_equal(got, v[ref.box.slices_in(BOUNDS)]) for v in versions):
                        raise AssertionError(f"chunk {ref.key} is neither version")
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
