"""The write counter workers share: a write through one worker is seen by every other one."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from bigarrays_server.generation import WriteGeneration, create_generation_file


@pytest.fixture
def path() -> Iterator[str]:
    p = create_generation_file()
    yield p
    os.unlink(p)


def test_a_write_is_seen_once_by_every_other_worker(path: str) -> None:
    a, b, c = WriteGeneration(path), WriteGeneration(path), WriteGeneration(path)
    assert not any(w.others_wrote() for w in (a, b, c))
    a.bump()
    assert not a.others_wrote()  # its own write: it invalidated what it wrote itself
    assert b.others_wrote() and c.others_wrote()
    assert not b.others_wrote() and not c.others_wrote()  # once
    for w in (a, b, c):
        w.close()


def test_a_writer_still_sees_a_write_that_came_before_its_own(path: str) -> None:
    a, b = WriteGeneration(path), WriteGeneration(path)
    b.bump()  # unseen by a so far
    a.bump()
    assert a.others_wrote()  # b's write is not skipped by a's own
    assert b.others_wrote()
    a.close()
    b.close()


def test_concurrent_writers_count_every_write(path: str) -> None:
    workers = [WriteGeneration(path) for _ in range(4)]
    threads = [threading.Thread(target=lambda w=w: [w.bump() for _ in range(200)]) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = WriteGeneration(path)
    assert reader._read() == 800
    for w in workers + [reader]:
        w.close()


def test_a_short_file_is_refused_naming_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    short = tmp_path / "gen"
    short.write_bytes(b"\0\0")
    with pytest.raises(ValueError, match=str(short)):
        WriteGeneration(str(short))
