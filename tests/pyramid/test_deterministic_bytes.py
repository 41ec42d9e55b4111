"""A chunk is stored as the same bytes whenever it is written: what lets tests (and users)
compare the output of a job run on one thread, several, or a cluster, byte for byte."""

from __future__ import annotations

import numpy as np
import pytest
from isal import igzip

from bigarrays_core.codecs.gzip import GzipCodec


@pytest.mark.parametrize("level", [1, 3, 6, 9])
def test_gzip_bytes_do_not_depend_on_the_clock(monkeypatch: pytest.MonkeyPatch, level: int) -> None:
    data = np.random.default_rng(0).integers(0, 255, size=4096, dtype=np.uint8).tobytes()
    codec = GzipCodec(level)
    monkeypatch.setattr(igzip.time, "time", lambda: 1_000_000_000.0)
    first = codec.encode(data)
    monkeypatch.setattr(igzip.time, "time", lambda: 1_900_000_000.0)  # written years later
    assert codec.encode(data) == first and first[4:8] == b"\0\0\0\0"  # header mtime 0
    assert codec.decode(first) == data
