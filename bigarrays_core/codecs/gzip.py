"""``gzip`` byte compression (RFC 1952), CloudVolume-compatible.

Levels follow zlib's 1..9 scale: 1..3 are encoded with ISA-L (``isal``, several times
faster than zlib), 4..9 with libdeflate (``deflate``). Decoding is strict: the members must
end the data exactly (each checked against its CRC-32 and length trailer), so bytes after
the last member, zero padding included, raise instead of being ignored as
``gzip.decompress`` ignores them. The header's modification time is 0 (as libdeflate writes
it): the same chunk is stored as the same bytes whenever and wherever it is written.

Data that is one member (what every writer of chunks makes) is inflated in one call into a
buffer sized from its trailer, by ISA-L or libdeflate, whichever is faster here: which one
wins depends on the CPU and on how the data were compressed (libdeflate measured ~30 %
faster than ISA-L on this project's machines for CloudVolume's level 9 and for level 1;
ISA-L wins on others), so the first :data:`PROBE_MEMBERS` members of at least
:data:`PROBE_BYTES` decoded bytes (compressed at most 16:1) with each header ``XFL`` value
(2: slowest compression, 4: fastest, 0: other) are inflated by both, twice each, and the
one that took less CPU time over all of them (the faster of its two runs per member)
decodes that kind for the rest of the process; libdeflate, unless ISA-L took less than
:data:`SWITCH` (90 %) of its time. One member is not enough: a probe that shares the cores
with the read's other threads can misjudge a 30 % difference; and the members probed can
show the two within a few percent where the volume as a whole shows libdeflate 13-30 %
faster, so a close probe keeps libdeflate.

Both inflaters check the member's CRC-32 and length and report where it ended (for
libdeflate through its ``libdeflate_gzip_decompress_ex``, in the library the ``deflate``
package ships; without it, ISA-L alone); anything but one member ending the data (several
members, corruption) is decoded member by member by ISA-L. Both release the GIL.

A chunk pasted into a cutout as soon as it is inflated (:meth:`GzipCodec.decode_transient`)
goes, when libdeflate decodes its kind, into the calling thread's scratch buffer instead of
a new bytes object: where the allocator maps every allocation of 128 KiB or more afresh (a
Dask worker) that spared 2,080 page faults per 8 MiB read, 8 % of its time.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any

import deflate
import deflate._deflate
import numpy as np
from isal import igzip, igzip_lib

from bigarrays_core.codecs.base import ByteCodec
from bigarrays_core.kernels.scratch import ThreadScratch

__all__ = ["PREFERRED", "PROBE_BYTES", "PROBE_MEMBERS", "SWITCH", "GzipCodec", "inflater"]

DEFAULT_LEVEL = 1
MAGIC = b"\x1f\x8b"
#: DEFLATE cannot expand data more than this; caps a buffer sized from a corrupt trailer.
_MAX_RATIO = 1032
#: Members that decode to fewer bytes are not probed (too quick to time); they use the
#: choice made for their kind, or ISA-L before one is made.
PROBE_BYTES = 1 << 16
#: Nor are members compressed more than this (background: any inflater is quick on them).
_PROBE_RATIO = 16
#: How many members of a kind are timed before an inflater is chosen for it.
PROBE_MEMBERS = 6
#: The inflater kept unless another takes less than ``SWITCH`` of its time on the probed members.
PREFERRED = "libdeflate"
SWITCH = 0.9

#: One-member inflaters: the content of ``data`` if it is one gzip member of ``size``
#: content bytes ending the data exactly (checked against its trailer), else None.
OneMember = Callable[[bytes | memoryview, int], "bytes | None"]


def _isal_one(data: bytes | memoryview, size: int) -> bytes | None:
    one = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
    try:
        out = one.decompress(data, size + 1)
    except (igzip_lib.IsalError, EOFError):  # type: ignore[misc]  # isal's stub: IsalError an instance
        return None
    # One member that ends the data (checked against its trailer by ISA-L).
    return out if one.eof and not one.unused_data and len(out) == size else None


_new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize  # (NULL, n): n uninitialised bytes
_new_bytes.restype = ctypes.py_object
_new_bytes.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]


def _libdeflate_entry() -> OneMember | None:
    """libdeflate's ``libdeflate_gzip_decompress_ex`` from the library the ``deflate``
    package ships (its Python API does not say where a member ends), or None."""
    try:
        lib = ctypes.CDLL(deflate._deflate.__file__)
        fn = lib.libdeflate_gzip_decompress_ex
        alloc = lib.libdeflate_alloc_decompressor
        free = lib.libdeflate_free_decompressor
    except (OSError, AttributeError):
        return None
    alloc.restype = ctypes.c_void_p
    alloc.argtypes = []
    free.restype = None
    free.argtypes = [ctypes.c_void_p]

    class Decompressor:
        """One thread's decompressor (~32 KiB), freed with the thread's locals."""

        def __init__(self) -> None:
            self.ptr = alloc()
            if not self.ptr:
                raise MemoryError("libdeflate could not allocate a decompressor")

        def __del__(self) -> None:
            free(self.ptr)
    size_p = ctypes.POINTER(ctypes.c_size_t)
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                   size_p, size_p]
    local = threading.local()

    def inflate_to(data: bytes | memoryview, size: int, address: int) -> bool:
        """Whether ``data`` is one gzip member of ``size`` content bytes that ends the data
        (CRC-32 and length checked), inflated to ``size`` bytes at ``address``. The GIL is
        released."""
        decompressor = getattr(local, "d", None)
        if decompressor is None:
            decompressor = local.d = Decompressor()
        src = np.frombuffer(data, dtype=np.uint8)
        got_in, got_out = ctypes.c_size_t(), ctypes.c_size_t()
        result = fn(decompressor.ptr, src.ctypes.data, len(src), address, size,
                    ctypes.byref(got_in), ctypes.byref(got_out))
        return result == 0 and got_in.value == len(src) and got_out.value == size  # 0: LIBDEFLATE_SUCCESS

    def inflate(data: bytes | memoryview, size: int) -> bytes | None:
        """The content of ``data`` if it is one gzip member of ``size`` content bytes that
        ends the data, else None."""
        # A new bytes object filled before anyone else sees it (no zeroing, no copy).
        out: bytes = _new_bytes(None, size)
        address = ctypes.cast(out, ctypes.c_void_p).value  # type: ignore[arg-type]  # bytes are accepted
        return out if address is not None and inflate_to(data, size, address) else None

    scratch = ThreadScratch()

    def inflate_transient(data: bytes | memoryview, size: int) -> memoryview | None:
        """As ``inflate``, into this thread's scratch buffer (overwritten at its next call)."""
        buf = scratch.get(size)
        return buf.data[:size] if inflate_to(data, size, buf.ctypes.data) else None

    global _libdeflate_transient
    _libdeflate_transient = inflate_transient
    return inflate


#: libdeflate into the calling thread's scratch buffer (see GzipCodec.decode_transient).
_libdeflate_transient: Callable[[bytes | memoryview, int], memoryview | None] | None = None
_libdeflate_one: OneMember | None = _libdeflate_entry()


#: The inflaters a probe chooses from, by name.
INFLATERS: dict[str, OneMember] = {"isal": _isal_one}
if _libdeflate_one is not None:
    INFLATERS["libdeflate"] = _libdeflate_one
_chosen: dict[int, str] = {}  # header XFL byte -> name of the faster inflater
_timings: dict[int, tuple[int, dict[str, int]]] = {}  # XFL -> (members timed, CPU ns per inflater)
_probe_lock = threading.Lock()


def inflater(xfl: int) -> str | None:
    """The name of the inflater chosen for members whose header has ``xfl`` (None: not yet)."""
    return _chosen.get(xfl)


def _probe(xfl: int, data: bytes | memoryview, size: int) -> bytes | None:
    """Inflate ``data`` with each inflater, twice, alternating, and add the faster run of
    each (CPU time of this thread) to the kind's tally; after :data:`PROBE_MEMBERS` members
    of the kind, choose the inflater with the least total. Returns the content, or None
    when either inflater does not take the data as one member (nothing is tallied)."""
    best: dict[str, int] = {}
    out: bytes | None = None
    for _ in range(2):
        for name, inflate in INFLATERS.items():
            t0 = time.thread_time_ns()
            got = inflate(data, size)
            dt = time.thread_time_ns() - t0
            if got is None or (out is not None and got != out):
                return None
            out = got
            best[name] = min(dt, best.get(name, dt))
    with _probe_lock:
        count, totals = _timings.get(xfl, (0, {}))
        totals = {name: totals.get(name, 0) + ns for name, ns in best.items()}
        _timings[xfl] = (count + 1, totals)
        if count + 1 >= PROBE_MEMBERS:
            _chosen.setdefault(xfl, _faster(totals))
    return out


def _faster(totals: dict[str, int]) -> str:
    """The inflater with the least total time in ``totals`` (ns by name); :data:`PREFERRED`
    instead when that time is at least :data:`SWITCH` times :data:`PREFERRED`'s (why: the
    module docstring)."""
    best = min(totals, key=totals.__getitem__)
    preferred = totals.get(PREFERRED)
    if preferred is not None and totals[best] >= SWITCH * preferred:
        return PREFERRED
    return best


class GzipCodec(ByteCodec):
    name = "gzip"
    content_encoding = "gzip"

    def __init__(self, level: int = DEFAULT_LEVEL) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 9:
            raise ValueError(f"gzip level must be an integer 1..9, got {level!r}")
        self.level = level

    def encode(self, data: bytes) -> bytes:
        if self.level <= 3:
            return igzip.compress(data, compresslevel=self.level, mtime=0)
        return bytes(deflate.gzip_compress(data, self.level))

    def decode(self, data: bytes | memoryview) -> bytes:
        """The content of the gzip members that make up ``data`` exactly; raises
        ``ValueError`` (or ISA-L's error) for a truncated or corrupt member and for bytes
        after the last member."""
        size = _one_member_size(data)
        if size is not None:
            xfl = data[8]
            name = _chosen.get(xfl)
            if name is not None:
                out = INFLATERS[name](data, size)
            elif size >= PROBE_BYTES and len(data) * _PROBE_RATIO >= size:
                out = _probe(xfl, data, size)
            else:
                out = _isal_one(data, size)
            if out is not None:
                return out
        return _members(data)

    def decode_transient(self, data: bytes | memoryview) -> bytes | memoryview:
        """As :meth:`decode`; a member of the kind libdeflate was chosen for is inflated into
        the calling thread's scratch buffer (see :meth:`ByteCodec.decode_transient`)."""
        size = _one_member_size(data)
        if size is not None and _libdeflate_transient is not None and _chosen.get(data[8]) == "libdeflate":
            out = _libdeflate_transient(data, size)
            if out is not None:
                return out
        return self.decode(data)

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "level": self.level}


def _one_member_size(data: bytes | memoryview) -> int | None:
    """The content size the trailer of ``data`` states if ``data`` could be one member of it
    (long enough for a header and trailer; a size DEFLATE could expand it to), else None."""
    n = len(data)
    if n < 18:
        return None
    size = int.from_bytes(data[n - 4:n], "little")
    return size if 0 < size <= n * _MAX_RATIO else None


def _members(data: bytes | memoryview) -> bytes:
    """Decode ``data`` member by member; every byte must belong to a complete member."""
    out = []
    rest: bytes | memoryview = data
    while True:
        at = len(data) - len(rest)
        if bytes(rest[:2]) != MAGIC:
            if at == 0:
                raise ValueError(f"the data ({len(data)} bytes) does not start with a gzip member")
            raise ValueError(f"{len(rest)} bytes after the gzip data (which ends at byte {at}) are not a gzip member")
        member = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
        out.append(member.decompress(rest))
        if not member.eof:
            raise ValueError(f"the gzip member at byte {at} is truncated ({len(data)} bytes in all)")
        rest = member.unused_data
        if not rest:
            return b"".join(out)
