"""LocalStore remembers where a directory's keys are stored (which variant, or none) while
the directory keeps its entries, found by probing each key or by listing a directory read in
bulk. Whatever changes in the directory afterwards, by this store or another (another
process), a read returns what is stored now. Every test runs both ways."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.kvstore import local
from bigarrays_core.kvstore.local import LocalStore


@pytest.fixture(autouse=True, params=["probed", "listed"])
def how(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Locations found key by key (never listing), or by listing at the first key looked for."""
    monkeypatch.setattr(local, "_LIST_AFTER", -1.0 if request.param == "probed" else 0.0)
    return str(request.param)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch):
    """Directories vouch for remembered locations at once (instead of after a few seconds);
    ``age(dir)`` sets a directory's modification time a minute back, so its next change gives
    it other times whatever the clock's tick."""
    monkeypatch.setattr(local, "_SETTLED_NS", 0)

    def age(path: Path) -> None:
        old = time.time_ns() - 60_000_000_000
        os.utime(path, ns=(old, old))
    return age


def _values(store: LocalStore, keys: list[str]) -> list[bytes | None]:
    return [None if v is None else bytes(v.data) for v in store.iter_values(keys)]


def test_remembered_locations_skip_the_variant_probes(tmp_path, settled, monkeypatch) -> None:
    store = LocalStore(str(tmp_path))
    store.set_many({"s/a": b"A", "s/b": b"B"})
    settled(tmp_path / "s")
    assert _values(store, ["s/a", "s/b", "s/missing"]) == [b"A", b"B", None]

    def no_probe(*args: object, **kwargs: object) -> bool:
        raise AssertionError("the variants of a remembered key were probed again")
    monkeypatch.setattr(local.os, "access", no_probe)
    assert _values(store, ["s/a", "s/b", "s/missing"]) == [b"A", b"B", None]
    assert store.get_ranges([local.ByteRange("s/a", 0, 1)]) == [b"A"]


@pytest.mark.parametrize("change", ["create", "recompress", "delete", "rewrite_in_place", "rename_over"])
def test_reads_see_every_change_after_locations_were_remembered(tmp_path, settled, change) -> None:
    mine, other = LocalStore(str(tmp_path)), LocalStore(str(tmp_path))  # other: another process
    if change != "create":
        mine.set_many({"s/k": b"old"})
    mine.set_many({"s/neighbour": b"n"})
    settled(tmp_path / "s")
    assert _values(mine, ["s/k", "s/neighbour"]) == [None if change == "create" else b"old", b"n"]
    path = tmp_path / "s" / "k"
    if change == "create":
        other.set_many({"s/k": b"new"})
        expected: bytes | None = b"new"
    elif change == "recompress":  # CloudVolume style: k.gz replaces k
        other.set_many({"s/k": gzip.compress(b"new")}, local.WriteOptions(content_encoding="gzip"))
        expected = gzip.compress(b"new")
        assert not path.exists() and (tmp_path / "s" / "k.gz").exists()
    elif change == "delete":
        other.delete_many(["s/k"])
        expected = None
    elif change == "rewrite_in_place":  # the directory does not change: the same file is read
        with open(path, "r+b") as f:
            f.write(b"NEW")
        expected = b"NEW"
    else:
        (tmp_path / "s" / "tmp").write_bytes(b"renamed")
        os.replace(tmp_path / "s" / "tmp", path)
        expected = b"renamed"
    assert _values(mine, ["s/k", "s/neighbour"]) == [expected, b"n"]
    got = [v for v in mine.iter_values(["s/k"])]
    if expected is not None:
        assert got[0] is not None and got[0].encoding == ("gzip" if change == "recompress" else None)


def test_newest_of_several_variants_is_never_remembered(tmp_path, settled) -> None:
    """With k and k.gz both present the newer wins by modification time, which rewriting one
    in place changes without touching the directory."""
    store = LocalStore(str(tmp_path))
    d = tmp_path / "s"
    d.mkdir()
    (d / "k").write_bytes(b"plain")
    (d / "k.gz").write_bytes(gzip.compress(b"zipped"))
    os.utime(d / "k", ns=(1, 1_000_000_000))
    settled(d)
    assert _values(store, ["s/k"]) == [gzip.compress(b"zipped")]
    with open(d / "k", "r+b") as f:  # now the newest
        f.write(b"PLAIN")
    assert _values(store, ["s/k"]) == [b"PLAIN"]


def test_missing_chunks_written_later_are_read(tmp_path, settled) -> None:
    """A cutout over missing chunks reads zeros; once another writer has stored them, the
    same array reads their voxels."""
    ba = bc.create(str(tmp_path / "v"), dtype="uint8", size=(128, 128, 64), chunk_size=(64, 64, 64))
    data = np.random.default_rng(3).integers(1, 256, size=(128, 128, 64, 1), dtype=np.uint8)
    ba[0:64, 0:64, :] = data[0:64, 0:64]  # one of the four chunks
    settled(tmp_path / "v" / ba.scale.key)
    box = bc.Box((30, 30, 0), (100, 100, 64))
    first = np.zeros_like(data)
    first[0:64, 0:64] = data[0:64, 0:64]
    np.testing.assert_array_equal(ba.read(box), first[30:100, 30:100])
    bc.open(str(tmp_path / "v"))[:, :, :] = data
    np.testing.assert_array_equal(ba.read(box), data[30:100, 30:100])


def test_pickled_store_starts_without_locations(tmp_path, settled) -> None:
    import pickle

    store = LocalStore(str(tmp_path))
    store.set_many({"s/a": b"A"})
    settled(tmp_path / "s")
    _values(store, ["s/a"])
    assert store._locations
    copy = pickle.loads(pickle.dumps(store))
    assert copy._locations == {} and _values(copy, ["s/a"]) == [b"A"]


def test_a_listing_locates_every_variant_as_probing_does(tmp_path, settled, how, monkeypatch) -> None:
    d = tmp_path / "s"
    d.mkdir()
    (d / "plain").write_bytes(b"P")
    (d / "zipped.gz").write_bytes(gzip.compress(b"Z"))
    (d / "both").write_bytes(b"old")
    (d / "both.gz").write_bytes(gzip.compress(b"new"))
    os.utime(d / "both", ns=(1, 1_000_000_000))  # both.gz is the newer
    (d / "brotli.br").write_bytes(b"B")
    (d / "lzma.xz").write_bytes(b"X")
    (d / "adir").mkdir()  # a directory is not a value
    (d / "a.b.gz").write_bytes(gzip.compress(b"dotted"))
    (d / ".gz").write_bytes(b"a key named .gz")
    os.symlink(d / "plain", d / "link")
    settled(d)
    store = LocalStore(str(tmp_path))
    keys = ["s/plain", "s/zipped", "s/both", "s/brotli", "s/lzma", "s/adir", "s/a.b", "s/.gz", "s/link", "s/none"]
    expected = [b"P", gzip.compress(b"Z"), gzip.compress(b"new"), b"B", b"X", None, gzip.compress(b"dotted"),
                b"a key named .gz", b"P", None]
    for _ in range(2):  # found, then remembered
        assert _values(store, keys) == expected
    encodings = [None if v is None else v.encoding for v in store.iter_values(keys)]
    assert encodings == [None, "gzip", "gzip", "br", "xz", None, "gzip", None, None, None]
    where = store._locations["s"]
    assert where.listed == (how == "listed")
    if how == "listed":  # missing keys are answered by the listing, without a probe
        def no_probe(*args: object, **kwargs: object) -> bool:
            raise AssertionError("a key of a listed directory was probed")
        monkeypatch.setattr(local.os, "access", no_probe)
        assert _values(store, ["s/none", "s/other", "s/plain"]) == [None, None, b"P"]


def test_a_bulk_read_lists_its_directory_once(tmp_path, settled, how, monkeypatch) -> None:
    monkeypatch.setattr(local, "_LIST_AFTER", 1 / 8)  # the shipped rule, in both modes
    store = LocalStore(str(tmp_path))
    keys = [f"s/{i}" for i in range(400)]
    store.set_many({k: k.encode() for k in keys[::2]})
    settled(tmp_path / "s")
    probes = 0
    real_access = os.access

    def counting(path: str, mode: int) -> bool:
        nonlocal probes
        probes += 1
        return real_access(path, mode)
    monkeypatch.setattr(local.os, "access", counting)
    assert _values(LocalStore(str(tmp_path)), keys) == [k.encode() if i % 2 == 0 else None
                                                         for i, k in enumerate(keys)]
    size = os.stat(tmp_path / "s").st_size
    assert probes <= 3 * (size // 32 // 8 + 1) < 3 * len(keys)
