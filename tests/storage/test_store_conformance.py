"""One conformance suite for every key-value store kind.

Each test runs once per kind through the ``case`` fixture (memory, local, fsspec-memory,
s3 on moto, gcs on fake-gcs-server, http read-only over a static server that ignores ``Range``
and http-range over one that honours it): the same assertions, no per-backend copies. Data
goes in through ``case.writer`` and is read back through ``case.store``; for the read-only
http stores the writer is a local store over the served directory.
"""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Callable

import pytest

from bigarrays_core.errors import InvalidKeyError, ReadOnlyError
from bigarrays_core.kvstore import WriteOptions, open_store
from bigarrays_core.kvstore.base import ByteRange
from tests.services import Service

from .cases import ALL_KINDS, HTTP_KINDS, IGNORE_LARGE_BODY_WARNING, StoreCase, gcsfs_client, kinds, s3_client

pytestmark = pytest.mark.filterwarnings(IGNORE_LARGE_BODY_WARNING)

WRITABLE = kinds(*(k for k in ALL_KINDS if k not in HTTP_KINDS))
WITH_SUFFIX_FALLBACK = kinds(*(k for k in ALL_KINDS if k != "memory"))
OBJECT_STORES = kinds("s3", "gcs")

NEGATIVE_KEYS = ["8_8_40/-64-0_-128--64_0-64", "8_8_40/-64-0_-64-0_-40--20", "1_1_1/0-64_0-64_0-64"]
BAD_KEYS = ["../escape", "/abs/key", "a/../b", "a//b", "a/./b", "", "a\\b"]


def _rng_bytes(n: int, seed: int = 0) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def test_get_set_overwrite(case: StoreCase) -> None:
    case.writer.set("info", b'{"type": "image"}')
    assert case.store.get("info") == b'{"type": "image"}'
    case.writer.set("info", b"second")
    assert case.store.get("info") == b"second"
    case.writer.set("empty", b"")
    assert case.store.get("empty") == b""


def test_missing_keys_are_none(case: StoreCase) -> None:
    assert case.store.get("nope") is None
    assert case.store.get("no/such/dir/key") is None
    assert not case.store.exists("nope")


def test_get_many_and_exists_many_with_gaps(case: StoreCase) -> None:
    present = {f"1_1_1/{i}-{i + 1}_0-1_0-1": bytes([i]) * (i + 1) for i in range(0, 40, 2)}
    case.writer.set_many(present)
    keys = [f"1_1_1/{i}-{i + 1}_0-1_0-1" for i in range(40)]
    got = case.store.get_many(keys)
    assert got == [present.get(k) for k in keys]
    assert case.store.exists_many(keys) == [k in present for k in keys]
    assert case.store.get_many([]) == []


def test_many_threads_at_once(case: StoreCase) -> None:
    values = {f"t/{i}": _rng_bytes(1000, i) for i in range(64)}
    case.writer.set_many(values)
    keys = list(values)
    results: list[object] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            results.append(case.store.get_many(keys))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert results == [[values[k] for k in keys]] * 6


def test_large_values_and_trailing_bytes(case: StoreCase) -> None:
    big = _rng_bytes(8 << 20, 1)
    tails = {"cr": b"data\r", "lf": b"data\n", "crlf": b"data\r\n", "nul": b"data\x00"}
    case.writer.set_many({"big": big, **tails})
    case.writer.set("big-cr", big + b"\r")
    assert case.store.get("big") == big
    assert case.store.get("big-cr") == big + b"\r"
    assert case.store.get_many(list(tails)) == list(tails.values())


def test_negative_coordinate_keys(case: StoreCase) -> None:
    case.writer.set_many({k: k.encode() for k in NEGATIVE_KEYS})
    assert case.store.get_many(NEGATIVE_KEYS) == [k.encode() for k in NEGATIVE_KEYS]
    assert sorted(case.store.list("8_8_40/")) == sorted(NEGATIVE_KEYS[:2])
    assert sorted(case.store.list("8_8_40/-64-0_-128")) == [NEGATIVE_KEYS[0]]


def test_list(case: StoreCase) -> None:
    keys = ["info", "a/1", "a/2", "a/b/3", "ab/4", "provenance"]
    case.writer.set_many({k: b"x" for k in keys})
    assert sorted(case.store.list()) == sorted(keys)
    assert sorted(case.store.list("a/")) == ["a/1", "a/2", "a/b/3"]
    assert sorted(case.store.list("a")) == ["a/1", "a/2", "a/b/3", "ab/4"]
    assert sorted(case.store.list("a/b/")) == ["a/b/3"]
    assert sorted(case.store.list("in")) == ["info"]
    assert list(case.store.list("zzz/")) == []
    assert list(case.store.list("zzz")) == []


def test_list_prefix_cannot_escape_the_root(case: StoreCase) -> None:
    case.writer.set("inside", b"x")
    if case.kind in ("local", *HTTP_KINDS):  # something beside the root that must stay invisible
        parent = os.path.dirname(case.writer.root)  # type: ignore[attr-defined]
        with open(os.path.join(parent, "outside"), "wb") as f:
            f.write(b"secret")
    for prefix in ("../", "a/../../"):
        try:
            listed = list(case.store.list(prefix))
        except InvalidKeyError:
            continue
        assert listed == []


@pytest.mark.parametrize("case", WRITABLE, indirect=True)
def test_delete(case: StoreCase) -> None:
    case.store.set_many({"a/1": b"1", "a/2": b"2"})
    case.store.delete("a/1")
    case.store.delete_many(["a/2", "never-there"])
    assert case.store.get_many(["a/1", "a/2"]) == [None, None]
    assert list(case.store.list()) == []


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused(case: StoreCase, key: str) -> None:
    writable = case.writer
    with pytest.raises(InvalidKeyError):
        case.store.get(key)
    with pytest.raises(InvalidKeyError):
        case.store.get_many(["fine", key])
    with pytest.raises(InvalidKeyError):
        case.store.exists_many(["fine", key])
    with pytest.raises(InvalidKeyError):
        writable.set_many({"fine": b"x", key: b"y"})
    with pytest.raises(InvalidKeyError):
        writable.delete_many(["fine", key])
    assert case.store.get("fine") is None  # nothing of a refused batch was written


def test_read_only_refuses_and_changes_nothing(case: StoreCase) -> None:
    case.writer.set_many({"keep": b"old", "gone": b"x"})
    ro = case.store if case.kind in HTTP_KINDS else case.reopen(read_only=True)
    assert ro.read_only
    with pytest.raises(ReadOnlyError) as info:
        ro.set("keep", b"new")
    assert ro.url in str(info.value)
    with pytest.raises(ReadOnlyError):
        ro.set_many({"keep": b"new"}, WriteOptions(content_encoding="gzip"))
    with pytest.raises(ReadOnlyError):
        ro.delete("gone")
    with pytest.raises(ReadOnlyError):
        ro.delete_many([])
    assert case.store.get_many(["keep", "gone"]) == [b"old", b"x"]
    assert ro.get("keep") == b"old"


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_content_encoding_round_trip(case: StoreCase, encoding: str) -> None:
    payload = b"chunk bytes " * 500
    if encoding == "gzip":
        stored = gzip.compress(payload)
    else:  # the store treats the bytes as opaque: a zstd frame magic and some bytes will do
        stored = b"\x28\xb5\x2f\xfd" + _rng_bytes(200, 2)
    options = WriteOptions(content_encoding=encoding, content_type="application/octet-stream", cache_control="no-cache")
    key = "8_8_40/0-64_0-64_0-64"
    case.writer.set(key, stored, options)

    got = case.store.get(key)
    assert got == stored
    assert case.store.exists(key)
    assert list(case.store.list("8_8_40/")) == [key]

    raw = case.raw()
    suffix = {"gzip": ".gz", "zstd": ".zstd"}[encoding]
    if case.encoding_convention in ("metadata", "memory"):
        assert raw == {key: encoding}  # plain key, the encoding recorded beside it, no aws-chunked
    else:
        assert raw == {key + suffix: None}

    # Rewriting without an encoding leaves exactly the plain value visible.
    case.writer.set(key, payload)
    assert case.store.get(key) == payload
    assert list(case.store.list("8_8_40/")) == [key]


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_iter_values_reports_the_recorded_encoding(case: StoreCase, encoding: str) -> None:
    """Whatever the store's convention (a suffix, a header, a note beside the value), the
    readers say which encoding it recorded, so nothing depends on guessing from the bytes."""
    stored = gzip.compress(b"payload " * 300) if encoding == "gzip" else b"\x28\xb5\x2f\xfd" + _rng_bytes(300, 3)
    case.writer.set("enc/a", stored, WriteOptions(content_encoding=encoding))
    case.writer.set("enc/plain", b"plain bytes")
    keys = ["enc/a", "enc/plain", "enc/missing"]
    # A value may be a view of a buffer the store reuses: copy each before the next.
    got = [None if v is None else (bytes(v.data), v.encoding, v.partial) for v in case.store.iter_values(keys)]
    assert got == [(stored, encoding, False), (b"plain bytes", None, False), None]
    # Rewritten without an encoding, the value reports none.
    case.writer.set("enc/a", b"now plain")
    (value,) = case.store.iter_values(["enc/a"])
    assert value is not None and (bytes(value.data), value.encoding) == (b"now plain", None)


@pytest.mark.parametrize("case", WITH_SUFFIX_FALLBACK, indirect=True)
def test_cloudvolume_suffixed_objects(case: StoreCase) -> None:
    """Objects stored as ``key.gz`` / ``key.zstd`` (CloudVolume's names) read as ``key``."""
    gz = gzip.compress(b"gz payload")
    zs = b"\x28\xb5\x2f\xfd" + b"zstd payload"
    case.put_raw("1_1_1/0-1_0-1_0-1.gz", gz)
    case.put_raw("1_1_1/1-2_0-1_0-1.zstd", zs)
    keys = ["1_1_1/0-1_0-1_0-1", "1_1_1/1-2_0-1_0-1", "1_1_1/2-3_0-1_0-1"]
    assert case.store.get_many(keys) == [gz, zs, None]
    assert case.store.exists_many(keys) == [True, True, False]
    assert sorted(case.store.list("1_1_1/")) == keys[:2]
    if not case.store.read_only:
        case.store.delete_many(keys[:2])
        assert case.store.get_many(keys[:2]) == [None, None]
        assert case.raw() == {}


@pytest.mark.parametrize("case", OBJECT_STORES, indirect=True)
@pytest.mark.parametrize(("header", "reported"), [("gzip", "gzip"), ("br", "br"), ("xz", "xz"), ("bzip2", "bz2"),
                                                  ("bz2", "bz2"), ("identity", None)])
def test_cloudvolume_content_encoding_objects(case: StoreCase, header: str, reported: str | None) -> None:
    """An object with a Content-Encoding and no suffix, written by the SDK as CloudVolume does
    (``bzip2`` on S3, ``bz2`` on GCS), reads back as the stored bytes with the encoding
    reported by its one name, through obstore and through fsspec alike."""
    stored = gzip.compress(os.urandom(3000) + b"\r") if header == "gzip" else _rng_bytes(3000, 4)
    case.put_raw("1_1_1/0-1_0-1_0-1", stored, content_encoding=header)
    for store in (case.store, case.reopen(obstore_reads=False)):
        assert store.get("1_1_1/0-1_0-1_0-1") == stored  # stored bytes, never decoded on the way
        got = [None if v is None else (bytes(v.data), v.encoding) for v in store.iter_values(["1_1_1/0-1_0-1_0-1"])]
        assert got == [(stored, reported)]


@pytest.mark.parametrize("case", OBJECT_STORES, indirect=True)
def test_object_metadata_visible_to_sdk(case: StoreCase) -> None:
    options = WriteOptions(content_encoding="gzip", content_type="application/x-test", cache_control="max-age=60")
    case.store.set("k", gzip.compress(b"v"), options)
    if case.kind == "s3":
        bucket, prefix = case.url[len("s3://"):].split("/", 1)
        head = s3_client().head_object(Bucket=bucket, Key=f"{prefix}/k")
        meta = (head.get("ContentEncoding"), head.get("ContentType"), head.get("CacheControl"))
    else:
        info = gcsfs_client().info(case.url[len("gs://"):] + "/k")
        meta = (info.get("contentEncoding"), info.get("contentType"), info.get("cacheControl"))
    assert meta == ("gzip", "application/x-test", "max-age=60")


@pytest.mark.cloud
def test_http_reads_an_object_served_with_content_encoding(
    gcs_server: Service, store_url: Callable[[str], str]
) -> None:
    """Over plain HTTP (fake-gcs-server's public path, as a browser would read a bucket) a
    gzip object served with ``Content-Encoding: gzip``: ``get`` returns it decoded by aiohttp
    (an ``info`` is JSON), the chunk reader the gzip body and its encoding."""
    root = store_url("gcs")[len("gs://"):]
    payload = os.urandom(5000) + b"\r"
    gz = gzip.compress(payload)
    gcsfs_client().pipe_file(f"{root}/k", gz, fixed_key_metadata={"content_encoding": "gzip"})
    store = open_store(f"{gcs_server.endpoint}/{root}")
    assert store.read_only
    got = store.get("k")
    assert got == payload
    # The chunk reader gets the body as sent, with the encoding the server recorded for it.
    assert [(bytes(v.data), v.encoding) for v in store.iter_values(["k"]) if v is not None] == [(gz, "gzip")]


# -- byte ranges -------------------------------------------------------------------------------

#: ``(key, start, stop)`` against a 100,000-byte value ``r/a``, an empty ``r/empty`` and a
#: missing ``r/missing``: adjacent, overlapping, far apart, past the end, empty, open-ended.
RANGES = [
    ("r/a", 0, 10), ("r/a", 10, 20), ("r/a", 15, 4000), ("r/a", 5000, 5100), ("r/a", 60_000, 61_000),
    ("r/a", 99_990, 100_010), ("r/a", 100_000, 100_005), ("r/a", 200_000, 200_100), ("r/a", 50, 50),
    ("r/a", 90_000, None), ("r/a", 0, None), ("r/missing", 0, 10), ("r/missing", 5, None), ("r/empty", 0, 10),
    ("r/empty", 0, None), ("r/b", 3, 7),
]


def test_get_ranges(case: StoreCase) -> None:
    value, other = _rng_bytes(100_000, 7), _rng_bytes(50, 8)
    case.writer.set_many({"r/a": value, "r/empty": b"", "r/b": other})
    whole = {"r/a": value, "r/empty": b"", "r/b": other}
    ranges = [ByteRange(*r) for r in RANGES]
    got = case.store.get_ranges(ranges)
    expected = [None if r.key not in whole else whole[r.key][r.start:r.stop] for r in ranges]
    assert [None if g is None else bytes(g) for g in got] == expected
    assert case.store.get_ranges([]) == []
    # One range at a time gives the same, in any order.
    for r, want in reversed(list(zip(ranges, expected))):
        (one,) = case.store.get_ranges([r])
        assert (None if one is None else bytes(one)) == want, r


def test_get_ranges_read_the_stored_bytes_of_an_encoded_value(case: StoreCase) -> None:
    """Ranges are of the bytes as stored (a gzip stream here), however the store records the
    encoding: a suffix, or Content-Encoding (on GCS, never a transcoded answer)."""
    stored = gzip.compress(_rng_bytes(20_000, 9) + bytes(20_000))
    case.writer.set("r/gz", stored, WriteOptions(content_encoding="gzip"))
    stores = [case.store]
    if case.kind in ("s3", "gcs"):
        stores.append(case.reopen(obstore_reads=False))
    for store in stores:
        parts = store.get_ranges([ByteRange("r/gz", 0, 100), ByteRange("r/gz", 100, 9000), ByteRange("r/gz", 9000)])
        assert b"".join(bytes(p) for p in parts if p is not None) == stored


@pytest.mark.parametrize("bad", [ByteRange("r/a", -1, 5), ByteRange("r/a", 5, 4), ByteRange("../r", 0, 1)])
def test_get_ranges_refuse_invalid_ranges(case: StoreCase, bad: ByteRange) -> None:
    with pytest.raises(ValueError, match="r"):
        case.store.get_ranges([ByteRange("r/a", 0, 1), bad])
