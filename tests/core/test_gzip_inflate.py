"""gzip decoding picks its one-member inflater (ISA-L or libdeflate) by timing both on
the first large member of each kind; whichever is chosen, a decode returns exactly the
content of the members that make up the data, or raises."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Callable

import numpy as np
import pytest

from bigarrays_core.codecs import gzip as gz

RNG = np.random.default_rng(11)
# EM-like bytes: smooth values plus noise (compresses ~0.8, like the image volumes).
CONTENT = (np.cumsum(RNG.integers(-3, 4, 300_000)) % 256 ^ RNG.integers(0, 8, 300_000)).astype(np.uint8).tobytes()


@pytest.fixture(params=sorted(gz.INFLATERS))
def chosen(request, monkeypatch) -> str:
    """Every XFL kind decoded by one inflater, as if the probe had chosen it."""
    monkeypatch.setattr(gz, "_chosen", {x: request.param for x in range(256)})
    return request.param


@pytest.mark.parametrize("level", [1, 6, 9])
def test_one_member_round_trips(chosen, level) -> None:
    for content in (CONTENT, CONTENT[:100], bytes(70_000)):
        assert gz.GzipCodec(level).decode(gz.GzipCodec(level).encode(content)) == content
        assert gz.GzipCodec().decode(gzip.compress(content, level)) == content  # zlib's, CloudVolume's fallback
        assert bytes(gz.GzipCodec().decode_transient(gzip.compress(content, level))) == content


def test_several_members_are_all_decoded(chosen) -> None:
    one = gzip.compress(CONTENT, 9)
    # A member repeated: its trailer also ends the data, and libdeflate stops after the first.
    assert gz.GzipCodec().decode(one + one) == CONTENT + CONTENT
    halves = gzip.compress(CONTENT[:150_000]) + gzip.compress(CONTENT[150_000:])
    assert gz.GzipCodec().decode(halves) == CONTENT
    zeros = gzip.compress(bytes(100_000)) + gzip.compress(bytes(100_000))  # same CRC and length
    assert gz.GzipCodec().decode(zeros) == bytes(200_000)
    for data, content in ((one + one, CONTENT + CONTENT), (halves, CONTENT), (zeros, bytes(200_000))):
        assert bytes(gz.GzipCodec().decode_transient(data)) == content


@pytest.mark.parametrize("damage", ["trailing", "padding", "truncated", "crc", "length", "body"])
def test_damaged_data_raises(chosen, damage) -> None:
    data = bytearray(gzip.compress(CONTENT, 9))
    if damage == "trailing":
        data += data[-8:]  # bytes after the member that repeat its trailer
    elif damage == "padding":
        data += bytes(4)
    elif damage == "truncated":
        del data[-5:]
    elif damage == "crc":
        data[-6] ^= 1
    elif damage == "length":
        data[-2] ^= 1
    else:
        data[len(data) // 2] ^= 0x55
    with pytest.raises((ValueError, zlib.error, Exception)) as info:
        gz.GzipCodec().decode(bytes(data))
    assert not isinstance(info.value, AssertionError)
    with pytest.raises((ValueError, zlib.error, Exception)) as info:
        gz.GzipCodec().decode_transient(bytes(data))
    assert not isinstance(info.value, AssertionError)


def test_transient_content_is_the_threads_own_buffer_reused_at_its_next_call(monkeypatch) -> None:
    if "libdeflate" not in gz.INFLATERS:
        pytest.skip("libdeflate is not available here")
    monkeypatch.setattr(gz, "_chosen", {x: "libdeflate" for x in range(256)})
    codec = gz.GzipCodec()
    first = codec.decode_transient(gzip.compress(CONTENT, 9))
    assert isinstance(first, memoryview) and bytes(first) == CONTENT
    address = np.frombuffer(first, np.uint8).ctypes.data
    second = codec.decode_transient(gzip.compress(CONTENT[::-1], 9))
    assert np.frombuffer(second, np.uint8).ctypes.data == address and bytes(second) == CONTENT[::-1]
    # decode gives bytes of their own: the transient content stays
    assert codec.decode(gzip.compress(CONTENT, 9)) == CONTENT and bytes(second) == CONTENT[::-1]
    addresses = []

    def other_thread() -> None:
        addresses.append(np.frombuffer(codec.decode_transient(gzip.compress(CONTENT, 9)), np.uint8).ctypes.data)

    import threading
    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert addresses and addresses[0] != address and bytes(second) == CONTENT[::-1]


def test_transient_decoding_needs_the_probe_to_have_chosen_libdeflate(unprobed) -> None:
    # Until a kind is probed (and where ISA-L won) the content is a bytes object of its own.
    assert type(gz.GzipCodec().decode_transient(gzip.compress(CONTENT[:1000], 9))) is bytes


@pytest.fixture
def unprobed(monkeypatch) -> None:
    monkeypatch.setattr(gz, "_chosen", {})
    monkeypatch.setattr(gz, "_timings", {})


def test_probe_chooses_once_per_kind_and_agrees(unprobed) -> None:
    level9 = gz.GzipCodec(9).encode(CONTENT)  # libdeflate: XFL 2
    for _ in range(gz.PROBE_MEMBERS - 1):
        assert gz.GzipCodec().decode(level9) == CONTENT
        assert gz.inflater(level9[8]) is None
    assert gz.GzipCodec().decode(level9) == CONTENT
    first = gz.inflater(level9[8])
    assert first in gz.INFLATERS
    assert gz.GzipCodec().decode(level9) == CONTENT and gz.inflater(level9[8]) == first
    # Small or background members are not timed: nothing is chosen for their kind.
    level1 = gz.GzipCodec(1).encode(bytes(1 << 20))
    assert gz.GzipCodec().decode(level1) == bytes(1 << 20)
    small = gz.GzipCodec(1).encode(CONTENT[:1000])
    assert gz.GzipCodec().decode(small) == CONTENT[:1000]
    assert set(gz._chosen) == {level9[8]}


def test_probe_chooses_nothing_for_data_that_is_not_one_member(unprobed) -> None:
    one = gzip.compress(CONTENT, 9)
    for _ in range(gz.PROBE_MEMBERS):
        assert gz.GzipCodec().decode(one + one) == CONTENT + CONTENT
    assert gz._chosen == {} and gz._timings == {}


def _burning(ms: Callable[[int], float]) -> gz.OneMember:
    """ISA-L's inflater, after burning ``ms(n)`` ms of this thread's CPU time on its n-th call."""
    real = gz.INFLATERS["isal"]
    calls = 0

    def inflate(data: bytes | memoryview, size: int) -> bytes | None:
        nonlocal calls
        calls += 1
        end = time.thread_time() + ms(calls) / 1000
        while time.thread_time() < end:
            pass
        return real(data, size)
    return inflate


def test_one_slow_member_does_not_decide_the_probe(unprobed, monkeypatch) -> None:
    """The inflater that is faster over the probed members is chosen, even when it was the
    slower one on the first member (a probe sharing the cores with a read's other threads
    once chose ISA-L, ~30 % slower there, for a whole process)."""
    monkeypatch.setattr(gz, "INFLATERS", {
        "steady": _burning(lambda n: 2.0),
        "faster": _burning(lambda n: 5.0 if n <= 2 else 0.5),  # both runs of member 1 slow
    })
    data = gzip.compress(CONTENT, 9)
    for _ in range(gz.PROBE_MEMBERS):
        assert gz.GzipCodec().decode(data) == CONTENT
    assert gz.inflater(data[8]) == "faster"


@pytest.mark.parametrize(("isal_ms", "chosen_name"), [(1.9, "libdeflate"), (1.0, "isal")])
def test_a_close_probe_keeps_libdeflate(unprobed, monkeypatch, isal_ms, chosen_name) -> None:
    """ISA-L is chosen only when it takes less than SWITCH of libdeflate's time on the probed
    members: within a few percent (noise, or members unlike the rest of the volume) libdeflate
    stays, as it was ~25 % faster over a whole CloudVolume volume where a probe saw 3 %."""
    monkeypatch.setattr(gz, "INFLATERS", {"isal": _burning(lambda n: isal_ms), "libdeflate": _burning(lambda n: 2.0)})
    data = gzip.compress(CONTENT, 9)
    for _ in range(gz.PROBE_MEMBERS):
        assert gz.GzipCodec().decode(data) == CONTENT
    assert gz.inflater(data[8]) == chosen_name


_FAULTS_OF_A_READ = """
import resource, sys
import numpy as np
import bigarrays_core as bc
from bigarrays_core.codecs import gzip as gz

gz._chosen.update({x: "libdeflate" for x in range(256)})  # as the probe chooses for EM data here
bc.set_num_threads(1)
ba = bc.create(sys.argv[1], dtype="uint8", size=(256, 256, 128), chunk_size=(64, 64, 64),
               compression={"id": "gzip", "level": 9})
ba[...] = np.random.default_rng(3).integers(0, 16, size=(256, 256, 128, 1), dtype=np.uint8)
for _ in range(3):
    ba[...]  # the output's memory recycled
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    ba[...]
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


def test_reading_gzip_chunks_faults_in_no_fresh_memory_where_the_allocator_keeps_none(tmp_path) -> None:
    # As in a Dask worker (MALLOC_TRIM_THRESHOLD_ set: every allocation of 128 KiB or more
    # is a fresh mapping), each chunk inflated into a new bytes object faulted its pages in
    # (before: 2,048 faults per read of these 32 chunks, 8 % of a gzip read's time); chunks
    # pasted into a cutout are inflated into the thread's scratch buffer instead.
    import os
    import subprocess
    import sys

    if "libdeflate" not in gz.INFLATERS:
        pytest.skip("libdeflate is not available here")
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    done = subprocess.run([sys.executable, "-c", _FAULTS_OF_A_READ, f"file://{tmp_path / 'ds'}"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) < 200, done.stdout
