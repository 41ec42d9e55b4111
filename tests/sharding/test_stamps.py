"""Stamps of the chunks of a sharded scale (``ShardedStore.stat_many``), and shards rewritten out
of band: by another process or tool, behind the back of an open array's cached indexes.

A chunk's stamp is made of its shard file's stamp (one base stat per distinct shard); a shard
whose stamp changed since the adapter last stamped it has its cached indexes dropped, so what
is read after the stat is the shard as it is now. Shard files are replaced here the way another
tool would: a file copied over the old one (``os.replace``), never through this process's
sharded adapters (whose writes the process-wide change counters already announce).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

import bigarrays_core as bc
from bigarrays_core.kvstore import LocalStore, Stamp
from bigarrays_core.kvstore.sharding import ShardedStore

from .counting import CountingStore
from .test_reads import BOUNDS, make, sample, shard_files, spec

#: Several shards (shard bits 2) of several minishards, chunks gzip'd: rewrites move chunks.
SPEC = spec(1, "identity", 1, 2)


def chunk_store(ba: bc.BigArray) -> ShardedStore:
    store = ba.scale_io.store
    assert isinstance(store, ShardedStore)
    return store


def twin(root: Path, name: str, data: np.ndarray) -> bc.BigArray:
    """A dataset at ``root / name`` with the same geometry and spec, holding ``data``."""
    ba = make((root / name).as_uri(), SPEC)
    ba[:, :, :] = data
    return ba


def replace_shard(src: Path, dst: Path, key: str) -> None:
    """Copy shard ``key`` of the dataset at ``src`` over the one at ``dst``, atomically (as
    another tool would replace a file)."""
    tmp = dst / (key + ".incoming")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / key, tmp)
    os.replace(tmp, dst / key)


def test_a_chunk_stamp_comes_from_its_shard_file(tmp_path: Path, rng: np.random.Generator) -> None:
    data = sample(rng, "raw", BOUNDS.shape)
    base = CountingStore(LocalStore(str(tmp_path / "a")))
    ba = make(base, SPEC)
    ba[:, :, :] = data
    refs = ba.chunks()
    missing = refs[-1]
    ba.scale_io.store.delete_many([missing.key])
    store = chunk_store(bc.open(base))
    keys = [r.key for r in refs]
    shards = {store.shard_key_of(k) for k in keys}
    assert len(shards) > 1

    base.reset()
    stamps = store.stat_many(keys)
    assert base.calls["stat_many"] == 1 and sorted(base.stats) == sorted(shards)  # one stat per shard
    assert all(r.start < store.spec.index_nbytes or r.stop is not None for r in base.ranges)
    values = list(store.iter_values(keys))
    for key, stamp, value in zip(keys, stamps, values):
        if key == missing.key:
            assert stamp is None and value is None
            continue
        assert isinstance(stamp, Stamp) and value is not None
        assert (stamp.size, stamp.encoding) == (len(value.data), value.encoding) == (stamp.size, "gzip")
        shard_stamp = base.inner.stat(store.shard_key_of(key))
        assert shard_stamp is not None and stamp.mtime_ns == shard_stamp.mtime_ns
    present = [s for s in stamps if s is not None]
    assert len({s.token() for s in present}) == len(present)  # chunks of one shard differ too

    base.reset()
    assert store.stat_many(keys) == stamps  # nothing written: the same stamps ...
    assert "get_ranges" not in base.calls  # ... and the cached indexes still serve (nothing read)
    assert store.local_stat is False


def test_a_chunk_stamp_changes_with_any_rewrite_of_its_shard(tmp_path: Path, rng: np.random.Generator) -> None:
    ba = twin(tmp_path, "a", sample(rng, "raw", BOUNDS.shape))
    store = chunk_store(ba)
    ref = ba.chunks()[0]
    before = store.stat_many([ref.key])[0]
    others = [r for r in ba.chunks() if store.shard_key_of(r.key) == store.shard_key_of(ref.key) and r != ref]
    ba.write(others[0].box, np.zeros(others[0].box.shape + (1,), dtype=np.uint16))  # another chunk of the shard
    after = store.stat_many([ref.key])[0]
    assert before is not None and after is not None and after != before


def test_a_shard_rewritten_out_of_band_is_read_afresh_after_a_stat(tmp_path: Path, rng: np.random.Generator) -> None:
    """Raw indexes and raw chunks: the rewritten shards lack their first chunk, so every other
    chunk moved. Before, the adapter's cached indexes pointed into the old layout and a stat
    (the default, reading through them) neither noticed nor dropped them: the array then read
    other chunks' bytes in place of the ones asked for, silently."""
    raw = spec(1, "identity", 1, 2, "raw", "raw")
    first = sample(rng, "raw", BOUNDS.shape)
    second = sample(rng, "raw", BOUNDS.shape)
    ba = make((tmp_path / "a").as_uri(), raw)
    ba[:, :, :] = first
    other = make((tmp_path / "b").as_uri(), raw)
    other[:, :, :] = second
    store, moved = chunk_store(ba), chunk_store(other)
    gone = {}
    for ref in other.chunks():
        gone.setdefault(moved.shard_key_of(ref.key), ref)  # the first chunk of each shard
    other.scale_io.store.delete_many([r.key for r in gone.values()])
    for ref in gone.values():
        second[ref.box.slices_in(BOUNDS)] = 0

    reader = bc.open((tmp_path / "a").as_uri())
    store = chunk_store(reader)
    keys = [r.key for r in reader.chunks()]
    np.testing.assert_array_equal(reader[:, :, :], first)  # caches every shard's indexes
    old = store.stat_many(keys)
    for key in shard_files(ba.store):
        replace_shard(tmp_path / "b", tmp_path / "a", key)
    for ref in gone.values():  # alone: where the chunk was, the old indexes now find the next one
        assert store.stat_many([ref.key]) == [None]
        assert next(store.iter_values([ref.key])) is None
        assert not reader.read(ref.box).any()
    new = store.stat_many(keys)
    assert all(a is not None and a != b for a, b in zip(old, new))
    assert [s is None for s in new] == [k in {r.key for r in gone.values()} for k in keys]
    np.testing.assert_array_equal(reader[:, :, :], second)
    assert [v and bytes(v.data) for v in store.iter_values(keys)] == \
        [v and bytes(v.data) for v in moved.iter_values(keys)]


def test_a_shard_that_appears_out_of_band_is_seen_after_a_stat(tmp_path: Path, rng: np.random.Generator) -> None:
    data = sample(rng, "raw", BOUNDS.shape)
    ba = make((tmp_path / "a").as_uri(), SPEC)
    twin(tmp_path, "b", data)
    store = chunk_store(ba)
    keys = [r.key for r in ba.chunks()]
    assert store.stat_many(keys) == [None] * len(keys)
    assert not ba[:, :, :].any()  # caches every shard as missing
    for key in shard_files(bc.open((tmp_path / "b").as_uri()).store):
        replace_shard(tmp_path / "b", tmp_path / "a", key)
    assert all(s is not None for s in store.stat_many(keys))
    np.testing.assert_array_equal(ba[:, :, :], data)


def test_a_shard_deleted_out_of_band_reads_as_missing_after_a_stat(tmp_path: Path, rng: np.random.Generator) -> None:
    ba = twin(tmp_path, "a", sample(rng, "raw", BOUNDS.shape))
    store = chunk_store(ba)
    ref = ba.chunks()[0]
    assert store.stat_many([ref.key])[0] is not None and next(store.iter_values([ref.key])) is not None
    os.remove(tmp_path / "a" / store.shard_key_of(ref.key))
    assert store.stat_many([ref.key]) == [None]
    assert next(store.iter_values([ref.key])) is None
