"""``KVStore.stat_many``: which version of each value is stored, for every store kind.

A stamp must change whenever a value is replaced by different bytes (through the store, or
beside it as another process or tool would write), stay equal while nothing is written, and
be the same for every store opened on the same data (another worker, another machine).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from bigarrays_core.errors import InvalidKeyError
from bigarrays_core.kvstore import KVStore, LocalStore, MemoryStore, Stamp, WriteOptions, local

from .cases import ALL_KINDS, IGNORE_LARGE_BODY_WARNING, StoreCase, kinds

pytestmark = pytest.mark.filterwarnings(IGNORE_LARGE_BODY_WARNING)

KEY = "8_8_40/0-64_0-64_0-64"


def test_missing_and_present(case: StoreCase) -> None:
    case.writer.set_many({KEY: b"a" * 100, "info": b"{}"})
    stamps = case.store.stat_many([KEY, "nope", "no/such/dir/key", "info"])
    assert stamps[1] is None and stamps[2] is None
    assert isinstance(stamps[0], Stamp) and isinstance(stamps[3], Stamp)
    assert stamps[0] != stamps[3]
    assert case.store.stat(KEY) == stamps[0]  # nothing written: the same stamp
    assert case.store.stat(KEY).token() == stamps[0].token()


def test_a_rewrite_changes_the_stamp(case: StoreCase) -> None:
    case.writer.set(KEY, b"a" * 4096)
    before = case.store.stat(KEY)
    case.writer.set(KEY, b"b" * 4096)  # same size, other bytes
    after = case.store.stat(KEY)
    assert after is not None and after != before
    assert after.token() != before.token()
    case.writer.delete(KEY)
    assert case.store.stat(KEY) is None


def test_a_write_beside_the_store_changes_the_stamp(case: StoreCase) -> None:
    """What another process or tool writes (bypassing this store object) is seen too."""
    name = "8_8_40/64-128_0-64_0-64"
    case.put_raw(name, b"x" * 512)
    before = case.store.stat(name)
    assert before is not None
    case.put_raw(name, b"y" * 512)
    assert case.store.stat(name) not in (None, before)


def test_stamps_agree_between_stores_on_the_same_data(case: StoreCase) -> None:
    case.writer.set(KEY, b"c" * 300)
    other = case.reopen()
    assert other.stat(KEY) == case.store.stat(KEY)


def test_a_compressed_variant_is_stamped(case: StoreCase) -> None:
    import gzip

    case.writer.set(KEY, gzip.compress(b"z" * 1000), WriteOptions(content_encoding="gzip"))
    stamp = case.store.stat(KEY)
    assert stamp is not None
    case.writer.set(KEY, b"plain now")
    assert case.store.stat(KEY) not in (None, stamp)


@pytest.mark.parametrize("kind", [k for k in ALL_KINDS if k in ("memory", "local")])
def test_unsafe_keys_are_refused(store_url, kind: str) -> None:  # type: ignore[no-untyped-def]
    from bigarrays_core.kvstore import open_store

    store = open_store(store_url(kind))
    with pytest.raises(InvalidKeyError):
        store.stat_many(["../escape"])


def test_local_stamp_sees_an_in_place_rewrite_by_its_times(tmp_path: object) -> None:
    """A tool that rewrites a file in place keeps its inode: size and times tell."""
    store = LocalStore(str(tmp_path))
    store.set(KEY, b"q" * 64)
    path = os.path.join(store.root, KEY)
    before = store.stat(KEY)
    with open(path, "r+b") as f:
        f.write(b"r" * 64)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, before.mtime_ns + 1_000_000_000))  # type: ignore[union-attr]
    after = store.stat(KEY)
    assert after is not None and after != before and after.size == 64


def test_local_stamp_is_of_the_variant_a_read_returns(tmp_path: object) -> None:
    store = LocalStore(str(tmp_path))
    store.set(KEY, b"plain")
    plain = store.stat(KEY)
    assert plain is not None and plain.size == 5 and plain.version is not None
    assert plain.version.startswith("plain:")
    store.set(KEY, b"\x1f\x8bgzipped", WriteOptions(content_encoding="gzip"))
    gz = store.stat(KEY)
    assert gz is not None and gz.version is not None and gz.version.startswith(".gz:") and gz.size == 9
    os.makedirs(os.path.join(store.root, "8_8_40", "dir-not-a-chunk"))
    assert store.stat("8_8_40/dir-not-a-chunk") is None


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Directories count as settled at once (not 5 s after their last change); calling the
    fixture waits out the file system's coarse clock, so the next change has new times."""
    monkeypatch.setattr(local, "_SETTLED_NS", 0)
    return lambda: time.sleep(0.05)


def test_local_stamps_of_a_settled_directory_take_one_stat_per_key(
        tmp_path: object, settled: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """Revalidating a cutout's chunks stats each file once, where their directory vouches for
    where they are (three ``access`` calls and two ``stat`` calls each before)."""
    store = LocalStore(str(tmp_path))
    keys = [f"8_8_40/{i * 64}-{i * 64 + 64}_0-64_0-64" for i in range(20)]
    store.set_many({k: b"v" * 64 for k in keys})
    settled()
    first = store.stat_many(keys)
    calls: list[str] = []
    real_stat, real_access = os.stat, os.access
    monkeypatch.setattr(os, "stat", lambda *a, **k: calls.append("stat") or real_stat(*a, **k))
    monkeypatch.setattr(os, "access", lambda *a, **k: calls.append("access") or real_access(*a, **k))
    assert store.stat_many(keys) == first
    assert calls.count("access") == 0 and calls.count("stat") <= len(keys) + 1, calls
    for bad in ("8_8_40/..", "8_8_40/.", "8_8_40/a\\b", "8_8_40/"):  # in a directory it remembers
        with pytest.raises(InvalidKeyError):
            store.stat_many([keys[0], bad])


def test_local_stamps_follow_a_variant_swapped_in_a_settled_directory(tmp_path: object,
                                                                     settled: Callable[[], None]) -> None:
    """CloudVolume rewriting a chunk with another compression removes the plain file and
    writes ``.gz``: a remembered location is not trusted once the directory changed."""
    store = LocalStore(str(tmp_path))
    store.set_many({KEY: b"plain", "8_8_40/other": b"x"})
    settled()
    plain = store.stat_many([KEY])[0]
    assert plain is not None and plain.encoding is None and store.stat_many([KEY]) == [plain]
    settled()
    os.remove(os.path.join(store.root, KEY))
    with open(os.path.join(store.root, KEY + ".gz"), "wb") as f:
        f.write(b"\x1f\x8bgzipped")
    gz = store.stat_many([KEY])[0]
    assert gz is not None and gz.encoding == "gzip" and gz.size == 9
    assert store.stat_many([KEY]) == [gz]
    settled()
    os.remove(os.path.join(store.root, KEY + ".gz"))
    assert store.stat_many([KEY]) == [None]


def test_memory_versions_are_shared_by_name_and_new_after_delete() -> None:
    a = MemoryStore("memory://stamps-shared")
    b = MemoryStore("memory://stamps-shared")
    a.set(KEY, b"1")
    assert a.stat(KEY) == b.stat(KEY)
    first = a.stat(KEY)
    a.delete(KEY)
    assert b.stat(KEY) is None
    a.set(KEY, b"1")  # the same bytes again: still a new version
    assert b.stat(KEY) not in (None, first)


def test_the_default_reads_and_digests() -> None:
    """A store without its own stat: correct stamps from the values themselves."""

    class Minimal(KVStore):
        url = "minimal://"

        def __init__(self) -> None:
            self.data: dict[str, bytes] = {}
            self.reads = 0

        def get_many(self, keys):  # type: ignore[no-untyped-def]
            self.reads += len(keys)
            return [self.data.get(k) for k in keys]

        def set_many(self, items, options=None):  # type: ignore[no-untyped-def]
            self.data.update(items)

        def delete_many(self, keys):  # type: ignore[no-untyped-def]
            for k in keys:
                self.data.pop(k, None)

        def exists_many(self, keys):  # type: ignore[no-untyped-def]
            return [k in self.data for k in keys]

        def list(self, prefix=""):  # type: ignore[no-untyped-def]
            return iter([k for k in self.data if k.startswith(prefix)])

    store = Minimal()
    store.set(KEY, b"abc")
    s1 = store.stat(KEY)
    store.set(KEY, b"abd")
    s2 = store.stat(KEY)
    assert s1 is not None and s2 is not None and s1 != s2 and s1.size == s2.size == 3
    assert store.stat("nope") is None


def test_the_stamp_records_the_content_encoding_a_read_reports(case: StoreCase) -> None:
    import gzip

    data = gzip.compress(b"e" * 1000)
    case.writer.set(KEY, data, WriteOptions(content_encoding="gzip"))
    stamp = case.store.stat(KEY)
    value = next(case.store.iter_values([KEY]))
    assert stamp is not None and value is not None
    assert stamp.encoding == value.encoding
    if stamp.size is not None:
        assert stamp.size == len(value.data)


def test_a_key_too_long_for_the_file_system_is_not_stored(tmp_path: object) -> None:
    store = LocalStore(str(tmp_path))
    assert store.stat("8_8_40/" + "9" * 5000) is None


def test_only_local_stores_say_their_stat_is_local(case: StoreCase) -> None:
    """``local_stat`` lets a server stat on its event loop: only where no request is made."""
    assert case.store.local_stat == (case.kind in ("memory", "local"))


def test_every_stamp_describes_the_value_a_read_returns(case: StoreCase) -> None:
    """Whatever recorded the encoding (this store's write, another tool's Content-Encoding or
    suffix) and whichever variant a read finds, the stamp's size and encoding are the read's."""
    import gzip

    import zstandard

    gz = gzip.compress(b"g" * 2000)
    zs = zstandard.ZstdCompressor().compress(b"z" * 3000)
    case.writer.set("a/plain", b"p" * 100)
    case.writer.set("a/written", gz, WriteOptions(content_encoding="gzip"))
    case.put_raw("a/recorded", gz, content_encoding="gzip")  # Content-Encoding where objects have metadata
    case.put_raw("a/foreign", b"not really brotli", content_encoding="br")
    case.put_raw("a/suffixed.gz", gz)  # CloudVolume's suffix, found by the fallback
    case.put_raw("a/suffixed2.zstd", zs)
    keys = ["a/plain", "a/written", "a/recorded", "a/foreign", "a/suffixed", "a/suffixed2", "a/missing"]
    stamps = case.store.stat_many(keys)
    for key, stamp, value in zip(keys, stamps, case.store.iter_values(keys)):
        assert (stamp is None) == (value is None), key
        if stamp is not None and value is not None:
            assert (stamp.size, stamp.encoding) == (len(value.data), value.encoding), key
    assert stamps[-1] is None and stamps[0] is not None and stamps[1] is not None


@pytest.mark.parametrize("kind", kinds("s3", "gcs"))
def test_both_read_paths_give_equal_stamps(store_url, kind: str) -> None:  # type: ignore[no-untyped-def]
    """obstore's HEAD and fsspec's HeadObject / object resource: the same stamp for the same
    object, so replicas configured either way agree on versions (and entity tags)."""
    import gzip

    from bigarrays_core.kvstore import open_store

    url = store_url(kind)
    through_obstore, through_fsspec = open_store(url), open_store(url, obstore_reads=False)
    assert through_obstore._obstore is not None and through_fsspec._obstore is None  # type: ignore[attr-defined]
    through_fsspec.set_many({"k/plain": b"p" * 10, "k/suffixed.zstd": b"\x28\xb5\x2f\xfd-ish"})
    through_fsspec.set("k/gz", gzip.compress(b"x" * 500), WriteOptions(content_encoding="gzip"))
    keys = ["k/plain", "k/gz", "k/suffixed", "k/missing"]
    stamps = through_obstore.stat_many(keys)
    assert stamps == through_fsspec.stat_many(keys)
    assert [s and s.encoding for s in stamps] == [None, "gzip", "zstd", None]
    assert all(s.mtime_ns is not None and s.mtime_ns % 1_000_000_000 == 0 for s in stamps if s)  # whole seconds


def test_http_modification_times_are_trusted_only_once_settled(store_url, http_server) -> None:  # type: ignore[no-untyped-def]
    """A server without ETags (Python's http.server): Last-Modified has whole seconds, so a
    value modified within the last seconds is read and digested; an older one is stamped by its
    time and size alone (a HEAD, no read)."""
    import time

    from bigarrays_core.kvstore import open_store

    url = store_url("http")
    root = os.path.join(http_server.root, url.rsplit("/", 1)[1])
    LocalStore(root).set(KEY, b"a" * 64)
    store = open_store(url)
    fresh = store.stat(KEY)
    assert fresh is not None and fresh.version is not None and fresh.version.startswith("blake2b:")
    path = os.path.join(root, KEY)
    settled = int(time.time()) - 100
    os.utime(path, (settled, settled))
    old = store.stat(KEY)
    assert old == Stamp(size=64, mtime_ns=settled * 1_000_000_000, version=None, encoding=None)
    with open(path, "r+b") as f:  # the same size, rewritten in place: its time tells
        f.write(b"b" * 64)
    os.utime(path, (settled + 1, settled + 1))
    assert store.stat(KEY) not in (None, old)
    assert store.stat(KEY) == store.stat(KEY)
