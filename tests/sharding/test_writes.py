"""Writing sharded scales: whole shards without reading, partial shards read-modify-written
under the shard's lock, concurrent writers losing nothing, and the write units."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from bigarrays_core.kvstore import MemoryStore
from bigarrays_core.kvstore.base import WriteOptions
from bigarrays_core.kvstore.sharding import ShardedStore

from .counting import CountingStore
from .test_reads import BOUNDS, GEOMETRY, make, sample, shard_files, spec


def chunk_store(ba: bc.BigArray) -> ShardedStore:
    store = ba.scale_io.store
    assert isinstance(store, ShardedStore)
    return store


def test_write_units_are_the_shards(dataset_url: str) -> None:
    ba = make(dataset_url, spec(1, "identity", 2, 4))  # 8 chunks of 16 x 16 x 8 per shard: x, y, z
    assert ba.write_chunk_size == (32, 32, 16)
    boxes = ba.write_boxes()
    assert boxes[0] == Box((-37, 5, -4), (-5, 37, 12)) and boxes[-1].stop == BOUNDS.stop
    assert len(boxes) == 3 * 2 * 2
    chunks = chunk_store(ba)
    seen = set()
    for box in boxes:
        keys = {chunks.shard_key_of(r.key) for r in ba.chunks(box)}
        assert len(keys) == 1 and not keys & seen  # one shard per box, each shard once
        seen |= keys
    assert ba.write_boxes(Box((0, 6, 0), (1, 7, 1))) == [Box((-5, 5, -4), (27, 37, 12))]
    murmur = make(MemoryStore(), spec(1, "murmurhash3_x86_128", 2, 4))
    assert murmur.write_chunk_size == GEOMETRY["size"] and murmur.write_boxes() == [BOUNDS]
    unsharded = bc.create(MemoryStore(), dtype="uint8", **GEOMETRY)
    assert unsharded.write_chunk_size == (16, 16, 8) and len(unsharded.write_boxes()) == 5 * 3 * 3


def test_whole_shards_are_written_without_reading(rng: np.random.Generator) -> None:
    store = CountingStore(MemoryStore())
    ba = make(store, spec(1, "identity", 2, 4))
    box = ba.write_boxes()[4]
    data = sample(rng, "raw", box.shape)
    store.reset()
    ba.write(box, data)
    assert store.calls == {"set_many": 1} and len(store.written) == 1
    np.testing.assert_array_equal(bc.open(store).read(box), data)
    # The edge shards are clipped; covering what exists of them is a whole shard too.
    edge = ba.write_boxes()[-1]
    store.reset()
    ba.write(edge, sample(rng, "raw", edge.shape))
    assert store.calls == {"set_many": 1}


def test_partial_shard_writes_keep_the_other_chunks(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, spec(1, "identity", 2, 4))
    data = sample(rng, "raw", BOUNDS.shape)
    ba[:, :, :] = data
    store = CountingStore(ba.store)
    writer = bc.open(store)
    ref = writer.chunks()[6]
    new = sample(rng, "raw", ref.box.shape)
    store.reset()
    writer.write(ref.box, new)
    # The shard is read for the update, read again to check that it is unchanged (the default
    # conditional write of a store wrapper), and written once.
    assert store.calls == {"iter_values": 2, "set_many": 1}
    data[ref.box.slices_in(BOUNDS)] = new
    np.testing.assert_array_equal(bc.open(dataset_url)[:, :, :], data)


def test_unaligned_and_partial_channel_writes(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, spec(0, "identity", 1, 6), num_channels=3)
    with pytest.raises(bc.AlignmentError):
        ba[0:10, 10:20, 0:5] = 1
    with pytest.raises(bc.AlignmentError):
        ba[:, :, :, 1] = 1
    data = sample(rng, "raw", BOUNDS.shape + (3,))[..., 0]
    ba[:, :, :] = data
    lenient = bc.open(dataset_url, non_aligned_writes=True)
    box = Box((-30, 10, -1), (5, 40, 12))
    patch = sample(rng, "raw", box.shape)
    lenient.write(box, np.concatenate([patch] * 3, axis=3))
    data[box.slices_in(BOUNDS)] = np.concatenate([patch] * 3, axis=3)
    lenient[-37:33, 5:50, -4:19, 1] = 7
    data[..., 1] = 7
    np.testing.assert_array_equal(bc.open(dataset_url)[:, :, :], data)


def test_zero_chunks_are_stored_and_overwrites_replace(dataset_url: str) -> None:
    ba = make(dataset_url)
    ba[:, :, :] = 5
    ba[:, :, :] = 0
    strict = bc.open(dataset_url, fill_missing=False)
    assert not strict.missing_chunks()  # all-zero chunks are stored, as for unsharded scales
    assert int(strict[:, :, :].sum()) == 0


def test_deleting_chunks_and_empty_shards(dataset_url: str) -> None:
    ba = make(dataset_url, spec(0, "identity", 0, 20))  # one chunk per shard
    ba[:, :, :] = 1
    chunks = chunk_store(ba)
    refs = ba.chunks()
    assert len(shard_files(ba.store)) == len(refs)
    chunks.delete_many([refs[0].key, refs[1].key])
    assert len(shard_files(ba.store)) == len(refs) - 2
    assert [r.key for r in bc.open(dataset_url).missing_chunks()] == [refs[0].key, refs[1].key]
    shared = make(MemoryStore(), spec(0, "identity", 2, 0))
    shared[:, :, :] = 1
    keys = [r.key for r in shared.chunks()]
    chunk_store(shared).delete_many(keys[:-1])
    assert len(shard_files(shared.store)) == 1
    chunk_store(shared).delete_many(keys[-1:])
    assert shard_files(shared.store) == []


def test_read_only_stores_refuse_writes_and_change_nothing(tmp_path: Any) -> None:
    url = (tmp_path / "ds").as_uri()
    make(url)[:, :, :] = 3
    before = {k: (tmp_path / "ds" / k).read_bytes() for k in shard_files(bc.open(url).store)}
    ro = bc.open(url, read_only=True)
    with pytest.raises(bc.ReadOnlyError):
        ro[:, :, :] = 4
    with pytest.raises(bc.ReadOnlyError):
        chunk_store(ro).delete_many([ro.chunks()[0].key])
    assert {k: (tmp_path / "ds" / k).read_bytes() for k in before} == before


def test_chunk_store_writes_follow_the_data_encoding() -> None:
    gz = make(MemoryStore(), spec(data="gzip"))
    raw = make(MemoryStore(), spec(data="raw"))
    ref = gz.chunks()[0]
    plain = np.full(ref.box.shape, 4, dtype=np.uint16).tobytes(order="F")
    chunk_store(gz).set(ref.key, plain)  # no content encoding given: gzip'd by the store
    value = next(chunk_store(gz).iter_values([ref.key]))
    assert value is not None and value.encoding == "gzip" and bytes(value.data[:2]) == b"\x1f\x8b"
    assert (gz.read(ref.box) == 4).all()
    with pytest.raises(ValueError, match="data_encoding gzip"):
        chunk_store(gz).set(ref.key, b"\x28\xb5\x2f\xfd", WriteOptions(content_encoding="zstd"))
    chunk_store(raw).set(ref.key, b"as given", WriteOptions(content_encoding="gzip"))
    assert chunk_store(raw).get(ref.key) == b"as given"


@pytest.mark.parametrize("compression", ["zstd", "gzip", "blosc"])
def test_a_compression_inside_raw_shard_data_reads_and_writes(compression: str, rng: np.random.Generator) -> None:
    """Another writer's info may combine raw chunk data with a bigarrays ``compression``."""
    info = make(MemoryStore(), spec(data="raw")).info
    info["scales"][0]["compression"] = {"id": compression}
    store = MemoryStore()
    bc.format.write_info(store, bc.format.Info(info))
    ba = bc.open(store)
    data = sample(rng, "raw", BOUNDS.shape)
    ba[:, :, :] = data
    np.testing.assert_array_equal(bc.open(store, fill_missing=False)[:, :, :], data)


@pytest.mark.parametrize("hash", ["identity", "murmurhash3_x86_128"])
def test_concurrent_partial_shard_writers_lose_no_voxel(dataset_url: str, hash: str) -> None:
    """Threads write different chunks of the same shards at once, each through its own
    BigArray; every shard write is a read-modify-write, so without the shard lock a writer
    would put back a shard without the others' chunks."""
    make(dataset_url, spec(0, hash, 1, 1))  # 2 shards of 2 minishards for 45 chunks
    refs = bc.open(dataset_url).chunks()
    rounds = 3
    errors: list[BaseException] = []

    def writer(worker: int, n_workers: int) -> None:
        try:
            ba = bc.open(dataset_url)
            for r in range(rounds):
                for i in range(worker, len(refs), n_workers):
                    ref = refs[i]
                    ba.write(ref.box, np.full(ref.box.shape, 100 * r + i + 1, dtype=np.uint16))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w, 6)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    out = bc.open(dataset_url, fill_missing=False)
    lost = 0
    for i, ref in enumerate(refs):
        lost += int(np.count_nonzero(out.read(ref.box) != 100 * (rounds - 1) + i + 1))
    assert lost == 0


def test_concurrent_unaligned_writers_in_one_shard_lose_no_voxel() -> None:
    """Unaligned writers patch chunks (and so shards) under the same locks."""
    store = MemoryStore()
    make(store, spec(0, "identity", 2, 0))  # everything in one shard
    errors: list[BaseException] = []

    def writer(z: int) -> None:
        try:
            ba = bc.open(store, non_aligned_writes=True)
            for x in range(-37, 33, 7):
                ba[x:x + 7, 5:50, z:z + 1] = z + 10
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(z,)) for z in range(-4, 19)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    out = bc.open(store)[:, :, :]
    expected = np.broadcast_to((np.arange(-4, 19) + 10).astype(np.uint16).reshape(1, 1, -1, 1), out.shape)
    np.testing.assert_array_equal(out, expected)
