"""Object metadata made into stamps (``bigarrays_core/kvstore/stamps.py``), one protocol at a time.

The stores' stats against the stand-ins are checked in ``test_stat_many.py`` (every kind) and
``test_faults.py`` (one metadata request per key, through faults); here the translation itself,
with the headers and resources the SDKs return.
"""

from __future__ import annotations

import datetime
import time
from email.utils import formatdate

from bigarrays_core.kvstore.base import Stamp
from bigarrays_core.kvstore.stamps import (
    RACY_S,
    gcs_stamp,
    http_stamp,
    info_stamp,
    object_stamp,
    s3_stamp,
    variant_stamp,
)

UTC = datetime.timezone.utc
SECOND = 1_000_000_000


def test_s3_head_object() -> None:
    when = datetime.datetime(2026, 5, 1, 12, 0, 7, tzinfo=UTC)
    head = {"ETag": '"9f4c"', "LastModified": when, "ContentLength": 29, "ContentEncoding": "aws-chunked,gzip"}
    assert s3_stamp(head) == Stamp(size=29, mtime_ns=int(when.timestamp()) * SECOND, version='etag "9f4c"',
                                   encoding="gzip")
    versioned = s3_stamp({**head, "VersionId": "v2"})
    assert versioned is not None and versioned.version == 'etag "9f4c" version-id v2'
    assert s3_stamp({"ContentLength": 3}) is None  # names no version: the value is digested instead


def test_gcs_object_resource_agrees_with_a_head_of_the_same_object() -> None:
    """The JSON API's ``updated`` has microseconds, Last-Modified (what obstore's HEAD reads)
    whole seconds: both give the same stamp."""
    resource = {"size": "29", "updated": "2026-12-02T23:06:58.838339Z", "generation": "1796252818838352",
                "contentEncoding": "gzip", "etag": "IJ1sFNXwFXNm6RzqUH59XQ=="}
    from_head = object_stamp(size=29, modified=datetime.datetime(2026, 12, 2, 23, 6, 58, tzinfo=UTC),
                             version="generation 1796252818838352", encoding_header="gzip")
    assert gcs_stamp(resource) == from_head
    assert from_head.mtime_ns is not None and from_head.mtime_ns % SECOND == 0
    assert gcs_stamp({**resource, "generation": "1796252818838353"}) != from_head
    assert gcs_stamp({"size": "1"}) is None


def test_http_head_with_an_etag() -> None:
    headers = {"ETag": 'W/"5e-1a"', "Content-Length": "12", "Content-Encoding": "gzip",
               "Last-Modified": formatdate(time.time(), usegmt=True)}
    stamp = http_stamp(headers)
    assert stamp is not None and stamp.version == 'etag W/"5e-1a"' and (stamp.size, stamp.encoding) == (12, "gzip")


def test_http_head_without_an_etag_is_trusted_once_its_time_has_settled() -> None:
    modified = 1_800_000_000
    headers = {"Content-Length": "5", "Last-Modified": formatdate(modified, usegmt=True)}
    settled = {**headers, "Date": formatdate(modified + RACY_S, usegmt=True)}
    assert http_stamp(settled) == Stamp(size=5, mtime_ns=modified * SECOND)
    assert http_stamp({**headers, "Date": formatdate(modified + RACY_S - 1, usegmt=True)}) is None  # racy
    assert http_stamp({"Content-Length": "5"}) is None  # no version, no time
    now = {"Content-Length": "5", "Last-Modified": formatdate(time.time(), usegmt=True)}
    assert http_stamp(now) is None  # no Date: this machine's clock says it is too recent


def test_fsspec_info() -> None:
    assert info_stamp({"size": 3, "ETag": '"x"'}) == Stamp(size=3, version='ETag "x"')
    old = time.time() - 60
    assert info_stamp({"size": 3, "mtime": old}) == Stamp(size=3, mtime_ns=int(old) * SECOND)
    assert info_stamp({"size": 3, "mtime": time.time()}) is None  # too recent to tell writes apart
    assert info_stamp({"size": 3, "created": old}) is None  # a creation time is no modification time


def test_a_suffixed_variant_reads_with_its_suffixes_encoding() -> None:
    stamp = Stamp(size=9, mtime_ns=SECOND, version='etag "a"', encoding="br")
    assert variant_stamp(stamp, "") is stamp
    assert variant_stamp(stamp, ".gz") == Stamp(size=9, mtime_ns=SECOND, version='.gz etag "a"', encoding="gzip")
    assert variant_stamp(Stamp(size=9), ".zstd") == Stamp(size=9, version=".zstd", encoding="zstd")
