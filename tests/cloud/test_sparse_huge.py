"""A petabyte-sized, sparsely written volume on S3: every operation costs what it touches.

The volume is declared uint8 100000³ (10¹⁵ voxels, 1 PB; 64³ chunks, 1563³ ≈ 3.8·10⁹ chunk
cells) with a few chunks written. bigarrays reaches the S3 stand-in through a
:class:`~tests.cloud.recording_proxy.RecordingProxy`, and the tests assert on the requests it
forwards rather than on time: opening is one GET of ``info``, a cutout touching ``k`` chunks is
``k`` GETs of exactly those keys (plus CloudVolume's ``.gz`` / ``.zstd`` fallbacks for the missing
ones unless ``suffix_fallback=False``), and the same cutout costs the same requests whether the
volume is declared 1 GB or 1 PB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.geometry import Box
from tests.cloud.recording_proxy import RecordedRequest, RecordingProxy
from tests.services import Service

pytestmark = pytest.mark.cloud

PETABYTE = (100_000, 100_000, 100_000)
OFFSET = (-50_000, -50_000, -50_000)
CHUNK = (64, 64, 64)
#: Chunks written before the tests look: the first one, two neighbours spanning the origin,
#: and the last one, clipped to 32³ by the volume's end at 50000.
FIRST = Box((-50_000,) * 3, (-49_936,) * 3)
MIDDLE = Box((-16, -16, -16), (48, 48, 48))
NEXT_TO_MIDDLE = Box((48, -16, -16), (112, 48, 48))
LAST = Box((49_968,) * 3, (50_000,) * 3)
WRITTEN = (FIRST, MIDDLE, NEXT_TO_MIDDLE, LAST)


@pytest.fixture
def proxy(s3_server: Service) -> Iterator[RecordingProxy]:
    p = RecordingProxy(s3_server.endpoint)
    p.start()
    try:
        yield p
    finally:
        p.stop()


def through(proxy: RecordingProxy, **store_options: Any) -> dict[str, Any]:
    """``bc.open`` / ``bc.create`` options that send the S3 requests through ``proxy``."""
    return {"storage_options": {"endpoint_url": proxy.endpoint}, **store_options}


def gets(url: str, boxes: list[Box], suffixes: tuple[str, ...] = ("",)) -> list[RecordedRequest]:
    """The GETs (sorted) of the chunks at ``boxes`` of the dataset at ``s3://`` ``url``."""
    root = "/" + url[len("s3://"):]
    return sorted(RecordedRequest("GET", f"{root}/1_1_1/{b.to_chunk_name()}{s}") for b in boxes for s in suffixes)


def chunk_values(box: Box, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 256, size=box.shape + (1,), dtype=np.uint8)


@pytest.fixture
def sparse_url(fresh_url: Callable[[str], str], proxy: RecordingProxy) -> str:
    """A 1 PB volume on S3 with only the :data:`WRITTEN` chunks stored (written through ``proxy``)."""
    url = fresh_url("s3")
    ba = bc.create(url, dtype="uint8", size=PETABYTE, voxel_offset=OFFSET, chunk_size=CHUNK, **through(proxy))
    proxy.take()
    for i, box in enumerate(WRITTEN):
        ba.write(box, chunk_values(box, i))
    root = "/" + url[len("s3://"):]
    # Each chunk is one PUT of its own key: no listing, no read-back, nothing else.
    assert sorted(proxy.take()) == sorted(
        RecordedRequest("PUT", f"{root}/1_1_1/{b.to_chunk_name()}") for b in WRITTEN
    )
    return url


def expected(box: Box) -> np.ndarray:
    out = np.zeros(box.shape + (1,), dtype=np.uint8)
    for i, written in enumerate(WRITTEN):
        inter = written.intersect(box)
        if not inter.is_empty:
            out[inter.slices_in(box)] = chunk_values(written, i)[inter.slices_in(written)]
    return out


def test_open_is_one_request(sparse_url: str, proxy: RecordingProxy) -> None:
    ba = bc.open(sparse_url, **through(proxy))
    assert proxy.take() == [RecordedRequest("GET", "/" + sparse_url[len("s3://"):] + "/info")]
    assert ba.shape == PETABYTE + (1,) and ba.voxel_offset == OFFSET
    assert ba.bounds.shape == PETABYTE
    assert len(ba.chunks(MIDDLE)) == 1  # planning is pure: no request
    assert proxy.take() == []


def test_cutout_of_written_chunks_is_one_get_each(sparse_url: str, proxy: RecordingProxy) -> None:
    ba = bc.open(sparse_url, **through(proxy))
    proxy.take()
    box = Box((-10, -16, 0), (100, 40, 48))  # inside MIDDLE and NEXT_TO_MIDDLE only
    out = ba.read(box)
    assert sorted(proxy.take()) == gets(sparse_url, [MIDDLE, NEXT_TO_MIDDLE])
    np.testing.assert_array_equal(out, expected(box))
    assert out.any()


def test_cutout_with_missing_chunks_costs_requests_per_chunk(sparse_url: str, proxy: RecordingProxy) -> None:
    box = Box((-40, -20, 0), (72, 40, 60))  # 3 x 2 x 2 = 12 chunks, 2 of them stored
    default = bc.open(sparse_url, **through(proxy))
    touched = [r.box for r in default.chunks(box)]
    assert len(touched) == 12
    missing = [b for b in touched if b not in (MIDDLE, NEXT_TO_MIDDLE)]
    proxy.take()
    np.testing.assert_array_equal(default.read(box), expected(box))
    # By default a missing key is also tried as key.gz and key.zstd (the suffixes CloudVolume
    # writes; its rarer .br/.xz/.bz2 are looked for on local disk only, where a listing is free).
    assert sorted(proxy.take()) == sorted(
        gets(sparse_url, [MIDDLE, NEXT_TO_MIDDLE]) + gets(sparse_url, missing, ("", ".gz", ".zstd"))
    )
    lean = bc.open(sparse_url, **through(proxy, suffix_fallback=False))
    proxy.take()
    np.testing.assert_array_equal(lean.read(box), expected(box))
    assert sorted(proxy.take()) == gets(sparse_url, touched)
    assert [r.box for r in lean.missing_chunks(box)] == missing
    requests = proxy.take()
    assert len(requests) == 12 and {r.method for r in requests} == {"HEAD"}


def test_far_corner_reads_right_and_costs_only_its_chunks(sparse_url: str, proxy: RecordingProxy) -> None:
    ba = bc.open(sparse_url, **through(proxy, suffix_fallback=False))
    proxy.take()
    box = Box((49_900,) * 3, (50_100,) * 3)  # 27 chunks inside, the rest beyond the volume's end
    out = ba.read(box)
    touched = [r.box for r in ba.chunks(box)]
    assert len(touched) == 27 and touched[-1] == LAST
    assert sorted(proxy.take()) == gets(sparse_url, touched)
    np.testing.assert_array_equal(out, expected(box))
    assert (out[100:] == 0).all()  # beyond 50000: outside the volume
    ba.read(Box((60_000,) * 3, (61_000,) * 3))  # wholly outside: no request at all
    assert proxy.take() == []


@pytest.mark.parametrize("size", [(1000, 1000, 1000), PETABYTE, (2**40, 2**40, 2**40)],
                         ids=["1GB", "1PB", "1.3e36B"])
def test_requests_do_not_grow_with_the_declared_size(size: tuple[int, int, int], fresh_url: Callable[[str], str],
                                                     proxy: RecordingProxy) -> None:
    url = fresh_url("s3")
    ba = bc.create(url, dtype="uint8", size=size, voxel_offset=OFFSET, chunk_size=CHUNK)
    ba.write(FIRST, chunk_values(FIRST, 0))
    proxy.take()
    opened = bc.open(url, **through(proxy, suffix_fallback=False))
    box = Box((-50_000, -50_000, -50_000), (-49_900, -49_950, -49_990))  # 2 x 1 x 1 chunks
    out = opened.read(box)
    neighbour = Box((-49_936, -50_000, -50_000), (-49_872, -49_936, -49_936))
    root = "/" + url[len("s3://"):]
    assert sorted(proxy.take()) == sorted([RecordedRequest("GET", f"{root}/info"), *gets(url, [FIRST, neighbour])])
    np.testing.assert_array_equal(out[:64], chunk_values(FIRST, 0)[:, :50, :10])
    assert not out[64:].any()
