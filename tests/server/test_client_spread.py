"""How the client's body reader hands out its connections (no server: the connections are
never opened; which worker each reaches is set as an answer would have set it)."""

from __future__ import annotations

import os
import subprocess
import sys

from bigarrays_core.client import _BodyReader, _Spread, _Wire


def reader_with(*workers: bytes | None, connections: int = 4) -> tuple[_BodyReader, list[_Wire]]:
    reader = _BodyReader("http://127.0.0.1:9", 1.0, connections=connections)
    wires = []
    for worker in workers:
        wire = reader._new_wire()
        wire.worker = worker
        wires.append(wire)
        reader.release(wire)
    return reader, wires


def test_the_pieces_of_a_read_get_connections_to_different_workers() -> None:
    reader, (a1, a2, b1) = reader_with(b"A", b"A", b"B")
    read = _Spread()
    got = reader.take(2, read)
    assert sorted(w.worker for w in got) == [b"A", b"B"]  # type: ignore[type-var]
    assert read.busy == {b"A": 1, b"B": 1}
    (third,) = reader.take(1, read)  # both known workers busy: a new connection, to find another
    assert third not in (a1, a2, b1) and third.worker is None and len(reader._all) == 4
    for wire in (*got, third):
        reader.release(wire, read)
    assert read.busy == {b"A": 0, b"B": 0}
    reader, (a1, a2, b1) = reader_with(b"A", b"A", b"B", connections=1)
    reader._limit = 3  # no room for a new one: the third piece shares a worker
    got = reader.take(3, _Spread())
    assert sorted(w.worker or b"" for w in got) == [b"A", b"A", b"B"] and set(got) == {a1, a2, b1}


def test_a_piece_that_starts_later_avoids_the_workers_still_busy_with_its_read() -> None:
    reader, (a, b, a2) = reader_with(b"A", b"B", b"A")
    read = _Spread()
    first = reader.take(2, read)
    reader.release(first[0], read)  # the piece on A ended; the one on B still runs
    (later,) = reader.take(1, read)
    assert later.worker == b"A"


def test_a_connection_to_an_unnamed_worker_before_a_new_one_and_new_ones_up_to_the_limit() -> None:
    reader, (a, unknown) = reader_with(b"A", None)
    assert set(reader.take(2, _Spread())) == {a, unknown}  # the one not named yet may reach another worker
    reader, (a1, a2) = reader_with(b"A", b"A")
    got = reader.take(2, _Spread())
    assert got[0] in (a1, a2) and got[1] not in (a1, a2) and got[1].worker is None  # a new connection
    reader, wires = reader_with(*[b"A"] * (2 + _BodyReader.SPARE_CONNECTIONS), connections=2)
    got = reader.take(2, _Spread())  # enough connections open: no new one, though all reach one worker
    assert all(w in wires for w in got) and len(reader._all) == len(wires)


def test_a_read_takes_new_connections_when_none_is_idle_and_closed_ones_come_back() -> None:
    reader, (a,) = reader_with(b"A")
    got = reader.take(3)
    assert got[0] is a and len(reader._all) == 3
    for wire in got:
        wire.close()  # closing forgets the worker: a reconnect may reach another
        assert wire.worker is None
        reader.release(wire)
    assert len(reader._idle) == 3
    reader.close()
    assert reader._idle == [] and reader._all == []
    reader.release(a)  # a connection given back after close is not kept
    assert reader._idle == []


def test_a_read_made_again_sends_each_piece_to_the_same_worker() -> None:
    reader, (b, a, a2, b2) = reader_with(b"B", b"A", b"A", b"B")
    for _ in range(3):  # whichever connection was given back last
        read = _Spread()
        got = reader.take(3, read)
        assert [w.worker for w in got[:2]] == [b"A", b"B"], [w.worker for w in got]
        for wire in reversed(got):
            reader.release(wire, read)


def test_each_server_process_has_its_own_name_forked_ones_too() -> None:
    code = """if True:
        import os
        from bigarrays_server import routes_cutout
        before = routes_cutout.WORKER
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, routes_cutout.WORKER.encode()); os._exit(0)
        os.waitpid(pid, 0)
        child = os.read(r, 64).decode()
        assert routes_cutout.WORKER == before and child != before and len(child) == 12, (before, child)
        print("ok")
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "ok", out.stderr

