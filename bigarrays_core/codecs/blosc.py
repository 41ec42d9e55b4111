"""``blosc`` byte compression (c-blosc 1 via python-blosc), as BigArrays.jl used it.

``cname`` picks the inner compressor (``blosclz`` by default; ``lz4``, ``lz4hc``,
``zlib``, ``zstd``), ``shuffle`` the filter (0 none, 1 byte, 2 bit). The typesize for
shuffling is the volume's dtype size. Blosc frames are self-describing, so decoding needs
none of these.

python-blosc holds the GIL while it works, so chunks on several of bigarrays' threads take
turns; blosc's own threads (its default: one per core) split each chunk's blocks instead.
bigarrays leaves that setting alone (importing this module changes no state of blosc's); on
the project's benchmark machine its default measured no slower than one thread per call.
"""

from __future__ import annotations

from typing import Any, cast

import blosc

from bigarrays_core.codecs.base import ByteCodec

__all__ = ["BloscCodec"]

CNAMES = tuple(blosc.compressor_list())
DEFAULT_CNAME = "blosclz"
DEFAULT_LEVEL = 5
_HEADER = 16


class BloscCodec(ByteCodec):
    name = "blosc"
    content_encoding = None

    def __init__(self, level: int = DEFAULT_LEVEL, cname: str = DEFAULT_CNAME, shuffle: int = 1,
                 typesize: int = 1) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
            raise ValueError(f"blosc level must be an integer 0..9, got {level!r}")
        if cname not in CNAMES:
            raise ValueError(f"blosc cname {cname!r} is not one of {list(CNAMES)}")
        if shuffle not in (0, 1, 2):
            raise ValueError(f"blosc shuffle must be 0 (none), 1 (byte) or 2 (bit), got {shuffle!r}")
        self.level = level
        self.cname = cname
        self.shuffle = shuffle
        self.typesize = max(1, int(typesize))

    def encode(self, data: bytes) -> bytes:
        return cast(bytes, blosc.compress(data, typesize=self.typesize, clevel=self.level, shuffle=self.shuffle,
                                          cname=self.cname))

    def decode(self, data: bytes | memoryview) -> bytes:
        if len(data) < _HEADER or int.from_bytes(data[12:16], "little") != len(data):
            raise ValueError(f"not a blosc frame of {len(data)} bytes (header says otherwise)")
        return cast(bytes, blosc.decompress(data))

    def config(self) -> dict[str, Any]:
        return {"id": self.name, "level": self.level, "cname": self.cname, "shuffle": self.shuffle}
