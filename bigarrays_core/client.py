"""The REST client of a bigarrays server: ``Client(url)["em"]`` indexes like a BigArray.

Owns: :class:`Client` and :class:`RemoteArray`. A remote array takes the same indices as a
:class:`~bigarrays_core.BigArray` (absolute coordinates, ``:`` for the bounds, integers
drop axes, ``...``) and returns the same arrays: Fortran-ordered ``(x, y, z, c)`` of the
dataset's dtype. Large reads are split into chunk-aligned pieces fetched concurrently,
cut across z first so that each piece's body is one contiguous run of the output array:
a body is read from the socket straight into its place (``recv_into`` on kept-alive
connections, the answer's head parsed by httptools; no intermediate ``bytes``; a zstd or
gzip body is decoded into it), and the pieces of one read go to different server workers
where the connections reach several. Anything but a clean 200 is asked
again through ``httpx``, where 429/503/504 and dropped connections are retried with
backoff (honouring ``Retry-After``) and a 413 is followed by fetching the server's
``detail.split``. An error answer becomes the core error whose ``code`` it names, so
the server's errors arrive as themselves (:class:`ReadOnlyError`, :class:`AlignmentError`
with ``nearest``, ...); HTTP-level answers map by status (401/403 ->
:class:`StoragePermissionError`, 413 -> :class:`TooLargeError`, ...).

Needs ``httpx`` and ``httptools`` (dependencies of bigarrays), imported when used. Nothing is
cached on the client: every read asks the server.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit
from urllib.request import getproxies, proxy_bypass

import numpy as np

from bigarrays_core.array import buffers, whole
from bigarrays_core.array.indexing import Selection, parse_selection
from bigarrays_core.array.scale_io import ChunkRef
from bigarrays_core.array.values import write_array
from bigarrays_core.errors import (
    AlignmentError,
    BigArraysError,
    DatasetNotFoundError,
    SelectionError,
    StorageError,
    StoragePermissionError,
    StorageTimeoutError,
    TooLargeError,
    error_class,
)
from bigarrays_core.geometry import Box, ChunkGrid, split_box
from bigarrays_core.kvstore.failures import FATAL, TRANSIENT, Failure
from bigarrays_core.kvstore.retry import RetryPolicy

__all__ = ["Client", "RemoteArray"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class _RetryableStatus(Exception):
    """An answer with one of :data:`RETRY_STATUSES`: a transient failure for the retry policy."""

    def __init__(self, response: Any) -> None:
        super().__init__(response.status_code)
        self.response = response
_DEFAULT_PIECE_BYTES = 64 * 2**20
#: Reads are split into about ``max_workers`` pieces, but none smaller than this.
_MIN_PIECE_BYTES = 32 * 2**20
#: The error of an answer whose code names no class of the error tree (HTTP-level answers
#: such as ``unauthorized`` or ``unsupported_format``, or a server that is not bigarrays').
_ERROR_OF_STATUS: dict[int, type[BigArraysError]] = {
    400: SelectionError, 401: StoragePermissionError, 403: StoragePermissionError, 404: DatasetNotFoundError,
    406: SelectionError, 413: TooLargeError, 504: StorageTimeoutError,
}


def _parse_box(text: str) -> tuple[Box, tuple[int, int] | None]:
    parts = text.split(",")
    if len(parts) == 4:
        c0, _, c1 = parts[3].partition(":")
        return Box.parse(",".join(parts[:3])), (int(c0), int(c1))
    return Box.parse(text), None


class _Answer:
    """httptools callbacks of one answer: its headers and, for a coded body, the chunks."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.parts: list[bytes] = []
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value.strip()

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class _Wire:
    """One kept-alive HTTP/1.1 connection that reads an answer's head with httptools and its
    body straight into a caller's buffer (plain bodies are received into it, no copy)."""

    def __init__(self, host: str, port: int, netloc: str, timeout: float, ssl_context: Any) -> None:
        self._address = (host, port)
        self._netloc = netloc.encode("idna" if not netloc.isascii() else "ascii")
        self._timeout = timeout
        self._ssl = ssl_context
        self._sock: socket.socket | None = None
        self._buf = bytearray(65536)
        #: The server process answering on this connection (its ``X-Bigarrays-Worker``),
        #: once an answer named it; None before, without the header, and after a reconnect.
        self.worker: bytes | None = None
        #: The worker a read counts this connection as busy with, while the read holds it.
        self.counted: bytes | None = None

    def close(self) -> None:
        self.worker = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection(self._address, timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=self._address[0])
            self._sock = sock
        return self._sock

    def get(self, target: str, headers: dict[str, str]) -> tuple[Any, _Answer, memoryview]:
        """Send a GET; return the response parser, the answer's head and the body bytes
        received with it. Raises OSError (or httptools' errors) when the exchange fails."""
        import httptools

        sock = self._socket()
        lines = [b"GET ", target.encode("ascii"), b" HTTP/1.1\r\nHost: ", self._netloc, b"\r\n"]
        for name, value in headers.items():
            lines += [name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n"]
        sock.sendall(b"".join([*lines, b"\r\n"]))
        view = memoryview(self._buf)
        got = 0
        while True:
            n = sock.recv_into(view[got:])
            if not n:
                raise ConnectionResetError("the server closed the connection")
            got += n
            end = self._buf.find(b"\r\n\r\n", 0, got)
            if end >= 0:
                break
            if got == len(self._buf):
                raise ValueError("the answer's head is too large")
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        parser.feed_data(bytes(view[:end + 4]))
        return parser, answer, view[end + 4:got]

    def recv_into(self, into: memoryview) -> int:
        return self._socket().recv_into(into)

    def recv(self) -> bytes:
        return self._socket().recv(1 << 20)


class _Spread:
    """How many of one read's pieces are being fetched from each server worker."""

    __slots__ = ("busy",)

    def __init__(self) -> None:
        self.busy: dict[bytes, int] = {}


class _BodyReader:
    """GETs whose 200 body is read straight into a caller's buffer, over kept-alive connections.

    Only the happy path lives here: :meth:`get_into` says False for anything else (an error
    status, a length that is not the buffer's, a broken connection) and the caller asks
    again through httpx, which retries and reports errors.

    Idle connections wait in a pool; a request takes one (a new one when none is idle) and
    gives it back. A bigarrays server names the worker process of each answer
    (``X-Bigarrays-Worker``), and a server's workers share its listening socket, so which
    worker a connection reaches is the kernel's pick. The pieces of one read (a
    :class:`_Spread`) take connections to as many different workers as the pool knows of,
    opening a few more to find them: two 32 MiB pieces sent by one worker's event loop take
    about 1.5 times as long as one piece each from two.
    """

    #: Connections a read may open beyond ``connections`` to reach other workers.
    SPARE_CONNECTIONS = 4

    def __init__(self, url: str, timeout: float, coding: str | None = None, connections: int = 4) -> None:
        self._coding = coding
        parts = urlsplit(url)
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._ssl: Any = None
        if parts.scheme == "https":  # the trust store httpx uses, so both paths accept the same servers
            import httpx

            self._ssl = httpx.create_ssl_context()
        self._headers = {"Accept": "application/octet-stream", "Accept-Encoding": coding or "identity"}
        self._lock = threading.Lock()
        self._idle: list[_Wire] = []  # most recently used last
        self._all: list[_Wire] = []
        self._limit = max(1, connections) + self.SPARE_CONNECTIONS

    @classmethod
    def for_url(cls, url: str, timeout: float, coding: str | None = None, connections: int = 4) -> _BodyReader | None:
        """A reader for ``url`` (asking for bodies in content coding ``coding``, if given),
        or None when httpx would go through a proxy (from the environment) that plain
        connections would bypass."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        if parts.scheme in getproxies() and not proxy_bypass(parts.hostname):
            return None
        return cls(url, timeout, coding, connections)

    def _new_wire(self) -> _Wire:  # under self._lock
        wire = _Wire(self._host, self._port, self._netloc, self._timeout, self._ssl)
        self._all.append(wire)
        return wire

    def take(self, n: int = 1, spread: _Spread | None = None) -> list[_Wire]:
        """``n`` connections, for pieces of the read ``spread`` (biggest piece first). Each is an
        idle connection to the worker the read fetches the fewest pieces from (a known worker it
        does not use yet, else one not named yet, else a new connection while fewer than
        ``connections`` + :attr:`SPARE_CONNECTIONS` are open, else the least used); among equals
        the worker of the lowest name, so that a read made again sends each piece where it went
        before (where its chunks are cached). A new connection when none is idle. Give each
        back with :meth:`release`."""
        busy = spread.busy if spread is not None else {}
        wires: list[_Wire] = []
        with self._lock:
            for _ in range(n):
                best, key = None, (0.0, b"", 0)
                for i, wire in enumerate(self._idle):
                    # Pieces of this read on its worker (an unnamed one ranks between 0 and 1).
                    k = (0.5 if wire.worker is None else float(busy.get(wire.worker, 0)), wire.worker or b"", -i)
                    if best is None or k < key:
                        best, key = i, k
                # Below 1: no piece of this read is on that worker yet, as far as is known.
                if best is not None and (key[0] < 1 or len(self._all) >= self._limit):
                    wire = self._idle.pop(best)
                else:
                    wire = self._new_wire()
                if spread is not None and wire.worker is not None:
                    busy[wire.worker] = busy.get(wire.worker, 0) + 1
                    wire.counted = wire.worker
                wires.append(wire)
        return wires

    def release(self, wire: _Wire, spread: _Spread | None = None) -> None:
        """Give back a connection from :meth:`take` (closed ones too: they reconnect when used)."""
        with self._lock:
            if spread is not None and wire.counted is not None:
                spread.busy[wire.counted] -= 1
            wire.counted = None
            if wire in self._all:
                self._idle.append(wire)

    def get_into(self, path: str, into: memoryview, wire: _Wire | None = None) -> bool:
        """GET ``path`` and read its body into ``into`` (a flat byte view), on ``wire`` (one of
        :meth:`take`'s, which the caller releases) or on an idle connection.

        True when the answer was a 200 of exactly ``len(into)`` bytes, all of them read.
        """
        if wire is None:
            (own,) = self.take()
            try:
                return self.get_into(path, into, own)
            finally:
                self.release(own)
        for attempt in range(2):  # the server may have closed a kept-alive connection meanwhile
            try:
                parser, answer, first = wire.get(self._prefix + path, self._headers)
                break
            except Exception:  # noqa: BLE001 - any failure: the caller asks again through httpx
                wire.close()  # the next request reconnects
                if attempt:
                    return False
        wire.worker = answer.headers.get(b"x-bigarrays-worker")
        coding = answer.headers.get(b"content-encoding", b"").decode("latin-1") or None
        try:
            if parser.get_status_code() != 200 or coding not in (None, self._coding):
                wire.close()
                return False
            if coding is None:
                if answer.headers.get(b"content-length") != str(len(into)).encode():
                    wire.close()
                    return False
                got = min(len(first), len(into))
                into[:got] = first[:got]
                if len(first) > len(into):
                    wire.close()
                    return False
                while got < len(into):
                    n = wire.recv_into(into[got:])
                    if not n:
                        break
                    got += n
            else:
                got = _decode_into(coding, _decoded_body(wire, parser, answer, first), into)
        except Exception:  # noqa: BLE001 - any failure: the caller asks again through httpx
            wire.close()
            return False
        if got != len(into) or answer.headers.get(b"connection", b"").lower() == b"close":
            wire.close()
            return got == len(into)
        return True

    def close(self) -> None:
        with self._lock:
            wires, self._all, self._idle = self._all, [], []
        for wire in wires:
            wire.close()


def _decoded_body(wire: _Wire, parser: Any, answer: _Answer, first: memoryview) -> Iterator[bytes]:
    """The body's bytes as sent (chunked framing undone by httptools), part by part, up to
    the end of the answer."""
    parser.feed_data(bytes(first))
    while True:
        yield from answer.parts
        answer.parts.clear()
        if answer.complete:
            return
        data = wire.recv()
        if not data:
            raise ConnectionResetError("the server closed the connection mid-body")
        parser.feed_data(data)


def _decode_into(coding: str, parts: Iterator[bytes], into: memoryview) -> int:
    """Undo ``coding`` (zstd, gzip) of the body's ``parts`` into ``into``; the bytes decoded,
    or -1 when the body decodes to more than ``into`` holds. Raises ValueError when it does
    not decode."""
    got = 0
    if coding == "zstd":
        import zstandard

        inflater: Any = zstandard.ZstdDecompressor().decompressobj()
        error: type[Exception] = zstandard.ZstdError
    elif coding == "gzip":
        from isal import isal_zlib

        inflater = isal_zlib.decompressobj(16 + 15)
        error = isal_zlib.error  # type: ignore[assignment]  # isal's stub: error an instance, not a class
    else:
        raise ValueError(f"content coding {coding!r} was not asked for")
    try:
        for part in parts:
            plain = inflater.decompress(part)
            if got + len(plain) > len(into):
                return -1
            into[got:got + len(plain)] = plain
            got += len(plain)
        if coding == "gzip":
            tail = inflater.flush()
            if got + len(tail) > len(into):
                return -1
            into[got:got + len(tail)] = tail
            got += len(tail)
    except error as exc:
        raise ValueError(str(exc)) from exc
    if not inflater.eof or inflater.unused_data:
        raise ValueError(f"the {coding} stream does not end where the body does")
    return got


def _contiguous_part(out: np.ndarray, outer: Box, piece: Box) -> memoryview | None:
    """The bytes of the Fortran-ordered ``out`` (the read of ``outer``) that ``piece`` fills,
    as one flat view, or None when they are not one contiguous run."""
    x, y, z, c = out.shape
    if piece.start[:2] != outer.start[:2] or piece.stop[:2] != outer.stop[:2]:
        return None
    if c > 1 and (piece.start[2], piece.stop[2]) != (outer.start[2], outer.stop[2]):
        return None
    plane = x * y * out.dtype.itemsize
    a = (piece.start[2] - outer.start[2]) * plane
    return out.T.data.cast("B")[a:a + plane * piece.shape[2] * c]


class Client:
    """A connection to a bigarrays server.

    Parameters
    ----------
    url:
        The server's base URL, e.g. ``http://127.0.0.1:8000``.
    token:
        The server's write token, sent as ``Authorization: Bearer`` on writes.
    timeout:
        Seconds per request (connect, read between bytes).
    max_workers:
        Pieces fetched at once.
    piece_bytes:
        Largest piece one request asks for; bigger reads are split on the chunk grid.
    retries:
        Attempts after the first for 429/502/503/504 and broken connections.
    transport_compression:
        ``"zstd"`` or ``"gzip"``: ask the server to compress cutouts on the wire (it does so
        at a fast level, costing its CPU and this one's). Worth it on links slower than the
        server's compression (a few hundred MB/s per core) for data that compresses
        (segmentations above all); on fast links or for noisy images plain bytes are faster.
        Default: plain bytes.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, max_workers: int = 4,
                 piece_bytes: int = _DEFAULT_PIECE_BYTES, retries: int = 5, backoff: float = 0.2,
                 transport: Any = None, transport_compression: str | None = None) -> None:
        import httpx

        if transport_compression not in (None, "zstd", "gzip"):
            raise ValueError(f"transport_compression must be None, 'zstd' or 'gzip', not {transport_compression!r}")
        self.transport_compression = transport_compression
        self.url = url.rstrip("/")
        self.token = token
        self.piece_bytes = max(1, int(piece_bytes))
        self.max_workers = max(1, int(max_workers))
        self.retries = retries
        self.backoff = backoff
        self._retry = RetryPolicy(retries=int(retries), backoff=float(backoff), max_backoff=10.0, max_retry_after=30.0)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                  limits=httpx.Limits(max_connections=max_workers + 2),
                                  headers={"Accept-Encoding": transport_compression or "identity"})
        # Bodies go straight into the output over plain sockets; a custom transport (tests)
        # or a proxy means every request goes through httpx instead.
        self._bodies = (_BodyReader.for_url(self.url, timeout, transport_compression, self.max_workers)
                        if transport is None else None)
        self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="bigarrays-client")
        self._infos: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request, retrying transient failures (429/502/503/504, honouring a
        ``Retry-After`` in seconds, and broken connections) with the stores' retry policy
        (:mod:`bigarrays_core.kvstore.retry`); raise the core's error for an error status."""
        import httpx

        def attempt() -> Any:
            response = self._http.request(method, path, **kwargs)
            if response.status_code in RETRY_STATUSES:
                raise _RetryableStatus(response)
            return response

        def classify(exc: Exception) -> Failure:
            if isinstance(exc, _RetryableStatus):
                wait = exc.response.headers.get("retry-after")
                after = float(wait) if wait is not None and wait.isdigit() else None
                return Failure(TRANSIENT, f"HTTP {exc.response.status_code}", retry_after=after)
            if isinstance(exc, httpx.TransportError):
                return Failure(TRANSIENT, repr(exc), timed_out=isinstance(exc, httpx.TimeoutException))
            return Failure(FATAL, repr(exc))

        def give_up(exc: Exception, failure: Failure, attempts: int) -> Any:
            if isinstance(exc, _RetryableStatus):
                raise self._error(method, path, exc.response) from None
            if isinstance(exc, httpx.TransportError):
                kind = StorageTimeoutError if failure.timed_out else StorageError
                raise kind(f"{method} {self.url}{path} failed after {attempts} attempts: {exc!r}") from exc
            raise exc

        response = self._retry.call(attempt, classify, give_up)
        if response.status_code >= 400:
            raise self._error(method, path, response)
        return response

    def _error(self, method: str, path: str, response: Any) -> BigArraysError:
        """The core error an error answer stands for: the class whose ``code`` the body names
        (see :func:`~bigarrays_core.errors.error_class`), else one chosen by the status.

        The error keeps the answer's ``status`` and ``detail``; ``key``/``field`` and an
        AlignmentError's ``box``/``nearest``/``reason`` are filled in from the detail.
        """
        try:
            body = response.json()
            code, message, detail = body.get("error", ""), body.get("message", ""), body.get("detail") or {}
        except (ValueError, AttributeError):
            code, message, detail = "", response.text[:200], {}
        if not isinstance(detail, dict):
            detail = {}
        status = response.status_code
        cls = error_class(code) if isinstance(code, str) else None
        if cls is None:
            cls = _ERROR_OF_STATUS.get(status, StorageError)
        exc = cls(f"{method} {self.url}{path}: {status} {code}: {message}")
        if isinstance(exc, AlignmentError):
            exc.box = _parse_box(detail["bbox"])[0] if detail.get("bbox") else None
            exc.nearest = _parse_box(detail["nearest"])[0] if detail.get("nearest") else None
            exc.reason = detail.get("reason")
        for attr in ("key", "field"):
            if detail.get(attr) is not None:
                setattr(exc, attr, detail[attr])
        exc.status = status  # type: ignore[attr-defined]
        exc.detail = detail  # type: ignore[attr-defined]
        return exc

    # -- public API ------------------------------------------------------------------
    def datasets(self) -> list[dict[str, Any]]:
        """The server's datasets: ``[{"name", "url", "shape", "dtype", ...}]``."""
        result: list[dict[str, Any]] = self.request("GET", "/v1/datasets").json()
        return result

    def info(self, name: str) -> dict[str, Any]:
        """The server's ``/v1/{name}/info`` (cached per client)."""
        with self._lock:
            cached = self._infos.get(name)
        if cached is None:
            cached = self.request("GET", f"/v1/{quote(name, safe='')}/info").json()
            with self._lock:
                self._infos[name] = cached
        return cached

    def __getitem__(self, name: str) -> RemoteArray:
        return RemoteArray(self, name, 0)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()
        if self._bodies is not None:
            self._bodies.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


class RemoteArray:
    """One mip of a dataset on a server, indexed like a :class:`~bigarrays_core.BigArray`.

    As with a BigArray, ``np.asarray(remote)`` reads the whole volume (up to
    :attr:`max_array_bytes`) and iterating is a ``TypeError``.
    """

    #: The largest ``np.asarray(remote)`` read without complaint (bytes).
    max_array_bytes: int = whole.MAX_ARRAY_BYTES

    def __init__(self, client: Client, name: str, mip: int = 0) -> None:
        self.client = client
        self.name = name
        self._meta = client.info(name)
        scales = self._meta["scales"]
        if not 0 <= mip < len(scales):
            raise DatasetNotFoundError(f"dataset {name!r} on {client.url} has no mip {mip} (it has {len(scales)})")
        self._scale = scales[mip]
        self.mip = mip
        self.dtype = np.dtype(self._meta["dtype"])

    # -- description, as BigArray ----------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        return dict(self._meta["info"])

    @property
    def num_channels(self) -> int:
        return int(self._meta["num_channels"])

    @property
    def num_mips(self) -> int:
        return len(self._meta["scales"])

    @property
    def voxel_offset(self) -> tuple[int, int, int]:
        x, y, z = self._scale["voxel_offset"]
        return (int(x), int(y), int(z))

    @property
    def chunk_size(self) -> tuple[int, int, int]:
        x, y, z = self._scale["chunk_size"]
        return (int(x), int(y), int(z))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        x, y, z = self._scale["size"]
        return (int(x), int(y), int(z), self.num_channels)

    @property
    def resolution(self) -> tuple[float, float, float]:
        """Voxel size in nm, (x, y, z)."""
        x, y, z = self._scale["resolution"]
        return (float(x), float(y), float(z))

    @property
    def bounds(self) -> Box:
        return Box.from_shape(self.voxel_offset, self.shape[:3])

    @property
    def grid(self) -> ChunkGrid:
        return ChunkGrid(self.voxel_offset, self.shape[:3], self.chunk_size)

    def at_mip(self, mip: int) -> RemoteArray:
        return RemoteArray(self.client, self.name, mip)

    def __repr__(self) -> str:
        return (f"RemoteArray({self.client.url!r}, {self.name!r}, mip={self.mip}, shape={self.shape}, "
                f"dtype={self.dtype.name})")

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The whole volume, all channels, as ``(x, y, z, c)``; :class:`TooLargeError` above
        :attr:`max_array_bytes`."""
        return whole.to_numpy(self, dtype, copy)

    def __iter__(self) -> NoReturn:
        raise whole.not_iterable(self)

    # -- reading ---------------------------------------------------------------------
    def _path(self, box: Box, channels: tuple[int, int]) -> str:
        return f"/v1/{quote(self.name, safe='')}/cutout/{self.mip}/{box.to_colon()},{channels[0]}:{channels[1]}"

    def __getitem__(self, key: Any) -> np.ndarray:
        sel = parse_selection(key, self.bounds, self.num_channels)
        return sel.drop_axes(self.read(sel.box, sel.channels))

    def read(self, box: Box | str, channels: tuple[int, int] | None = None) -> np.ndarray:
        """The 4-D ``(x, y, z, c)`` voxels of ``box``, fetched in concurrent chunk-aligned pieces."""
        if isinstance(box, str):
            box = Box.parse(box)
        channels = channels or (0, self.num_channels)
        x, y, z = box.shape
        # Every piece's body fills its part of the output, or the read raises.
        out = buffers.empty((x, y, z, max(0, channels[1] - channels[0])), self.dtype)
        if out.size == 0:
            return out
        pieces = self._pieces(box, channels)
        if len(pieces) == 1:
            self._fetch_into(out, box, pieces[0], channels)
            return out
        # Biggest first, so that the big pieces get connections to different server workers:
        # the pieces that start at once take theirs now, in this order; the others as they start.
        pieces.sort(key=lambda p: -p.size)
        bodies, spread = self.client._bodies, _Spread()
        first = bodies.take(min(len(pieces), self.client.max_workers), spread) if bodies is not None else []
        wires: list[_Wire | None] = [*first, *[None] * (len(pieces) - len(first))]
        futures = [self.client._pool.submit(self._fetch_into, out, box, p, channels, w, spread)
                   for p, w in zip(pieces, wires)]
        errors = [f.exception() for f in futures]
        for exc in errors:
            if exc is not None:
                raise exc
        return out

    def _pieces(self, box: Box, channels: tuple[int, int]) -> list[Box]:
        """Pieces of ``box`` cut on the chunk grid, each of at most ``piece_bytes`` (or one chunk).

        A large read becomes about ``max_workers`` pieces (none under 32 MiB), fetched at once.
        When whole chunk-rows of the box fit in a piece, pieces are cut across z only, so each
        is one contiguous run of the Fortran-ordered output (:func:`split_box`).
        """
        bpv = self.dtype.itemsize * (channels[1] - channels[0])
        limit = min(self.client.piece_bytes, max(-(-box.size * bpv // self.client.max_workers), _MIN_PIECE_BYTES))
        pieces = split_box(box, self.grid, bpv, limit)
        assert pieces is not None  # no piece limit
        return pieces

    def _fetch_into(self, out: np.ndarray, outer: Box, piece: Box, channels: tuple[int, int],
                    wire: _Wire | None = None, spread: _Spread | None = None) -> None:
        """Fetch ``piece`` of the read of ``outer`` into its place in ``out`` (on ``wire``, a
        connection the read ``spread`` took from the client's body reader, or on one taken
        here; given back either way)."""
        bodies = self.client._bodies
        if bodies is not None:
            if wire is None:
                (wire,) = bodies.take(1, spread)
            into = _contiguous_part(out, outer, piece)
            tmp = None
            if into is None:  # not one run of the output: receive it whole, then paste
                tmp = np.empty(piece.shape + (out.shape[3],), dtype=out.dtype, order="F")
                into = tmp.T.data.cast("B")
            try:
                done = bodies.get_into(self._path(piece, channels) + "?format=raw", into, wire)
            finally:
                bodies.release(wire, spread)
            if done:
                if tmp is not None:
                    out[piece.slices_in(outer) + (slice(None),)] = tmp
                return
        response = None
        try:
            response = self.client.request("GET", self._path(piece, channels), params={"format": "raw"})
        except TooLargeError as exc:
            split = getattr(exc, "detail", {}).get("split") if getattr(exc, "status", None) == 413 else None
            if not split or split == [f"{piece.to_colon()},{channels[0]}:{channels[1]}"]:
                raise
            for text in split:
                self._fetch_into(out, outer, _parse_box(text)[0], channels)
            return
        shape = tuple(int(n) for n in response.headers["x-shape"].split(","))
        arr = np.frombuffer(response.content, dtype=self.dtype).reshape(shape, order="F")
        out[piece.slices_in(outer) + (slice(None),)] = arr

    # -- writing ---------------------------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        sel = parse_selection(key, self.bounds, self.num_channels)
        self._write(sel, value)

    def write(self, box: Box | str, data: Any) -> None:
        """Save 4-D (or 3-D for one channel) ``data`` at ``box`` through the server."""
        if isinstance(box, str):
            box = Box.parse(box)
        self._write(Selection(box, (0, self.num_channels), ()), data)

    def _write(self, sel: Selection, value: Any) -> None:
        """Coerce ``value`` as :meth:`BigArray.__setitem__` does, then PUT the 4-D box."""
        arr = write_array(value, self.dtype, sel)
        if sel.box.is_empty or sel.channels[1] <= sel.channels[0]:
            return  # an empty selection writes nothing, as BigArray (and numpy) do
        body = np.asarray(arr, order="F").tobytes(order="F")
        headers = {"Content-Type": "application/octet-stream"}
        if self.client.token:
            headers["Authorization"] = f"Bearer {self.client.token}"
        self.client.request("PUT", self._path(sel.box, sel.channels), content=body, headers=headers)

    # -- chunk utilities, as BigArray ----------------------------------------------------
    def _plan(self, box: Box | str | None) -> list[tuple[ChunkRef, bool]]:
        """The server's chunk plan of ``box`` (the whole volume by default), x fastest,
        following the server's split when the plan is over its limit."""
        if isinstance(box, str):
            box = Box.parse(box)
        box = self.bounds if box is None else box
        if box.is_empty or box.intersect(self.bounds).is_empty:
            return []
        found: dict[tuple[int, int, int], tuple[ChunkRef, bool]] = {}
        todo = [box.to_colon()]
        while todo:
            text = todo.pop()
            path = f"/v1/{quote(self.name, safe='')}/chunks/{self.mip}"
            try:
                plan = self.client.request("GET", path, params={"bbox": text}).json()
            except TooLargeError as exc:
                split = getattr(exc, "detail", {}).get("split")
                if not split or split == [text]:
                    raise
                todo.extend(split)
                continue
            for c in plan["chunks"]:
                x, y, z = (int(v) for v in c["grid"])
                found[(x, y, z)] = (ChunkRef(str(c["key"]), (x, y, z), Box.parse(c["bbox"])), bool(c["exists"]))
        return [found[g] for g in sorted(found, key=lambda g: (g[2], g[1], g[0]))]

    def chunks(self, box: Box | str | None = None) -> list[ChunkRef]:
        """The chunks a box touches (the whole volume by default), x fastest, as
        :meth:`BigArray.chunks <bigarrays_core.BigArray.chunks>` gives them."""
        return [ref for ref, _ in self._plan(box)]

    def missing_chunks(self, box: Box | str | None = None) -> list[ChunkRef]:
        """The chunks of :meth:`chunks` that are not stored."""
        return [ref for ref, exists in self._plan(box) if not exists]
