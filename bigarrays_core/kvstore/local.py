"""A store over a local directory (``file://`` URLs and plain paths).

Writes are atomic: the value goes to a file that has no name yet (``O_TMPFILE``, in the
key's directory), which is then linked under the key's name when the key is new, or linked
under a temporary name and renamed over the key when it replaces a value; so a reader (or
a crash, even SIGKILL) never sees a partial value, and a writer killed while it writes
leaves nothing behind (the kernel frees an unnamed file with its last descriptor). Where
the file system has no unnamed files (or will not link them), the value goes to a named
temporary file renamed over the key; those of killed writers are swept
(:meth:`LocalStore.sweep_stale_temporaries_once`). A new key takes one change of its
directory instead of two (measured: 672 new 256 KiB chunks from two threads in 176 ms
instead of 266 on ext4). Keys are checked with :func:`check_key`, so they can never escape
the root.

Writers of one key exclude each other across processes with a lock per key (a byte-range
``fcntl`` lock on ``.bigarrays/locks`` under the root: an open-file-description lock on
Linux, a record lock elsewhere; plus a thread lock, since the process's threads share the
file's description): every write, delete and conditional
write (:meth:`LocalStore.write_if_unchanged`: compare the stored bytes, then rename) of a
key in a directory (chunks, shards) holds it, so a read-modify-write never loses another
process's change. Keys share 65536 locks by hash. Keys at the root (``info``) and
bigarrays' own records (``.bigarrays/...``) are written without it. The lock file is one
empty file, created by the first locked write, that needs no cleaning: the kernel drops a
process's locks when it exits, however it exits (deleting it while writers run would let
two of them lock different files). Listings never show it. It works across machines where
the filesystem supports POSIX record locks (NFS with its lock manager).

Compressed values follow CloudVolume's convention on local disk: a value written with
content encoding ``gzip`` is stored as ``key.gz``, ``zstd`` as ``key.zstd``. Reads look for
the plain key and those variants (the newest wins if several exist), and as a last
resort for CloudVolume's ``.br``/``.xz``/``.bz2`` files. Reads return the stored bytes and
report the encoding the suffix records (:mod:`bigarrays_core.kvstore.encodings`); the codec
layer decodes them.

Batch reads (:meth:`LocalStore.iter_values`, :meth:`LocalStore.get_ranges`) remember where
each key of a directory is stored (which variant, or none) for as long as the directory
keeps its entries: creating, renaming or removing a file in it gives the directory new
modification and change times, which one ``stat`` of the directory per call compares. A
read of a few chunks then opens each chunk file straight away instead of first probing
for its variants. Directories whose entries changed in the last few seconds are not
trusted (file systems take those times from a coarse clock, so two changes within one tick
can leave them as they were), nor are answers that had to compare the times of several
variants (rewriting one in place does not touch the directory). A directory read in bulk
(as many keys probed as about an eighth of its entries) is listed once instead, which
answers where every key of it is stored, missing ones included; keys with several variants
are still probed one by one.

Inside :func:`~bigarrays_core.kvstore.at_hand.at_hand_only`, ``iter_values`` reads a plain file
only from the page cache (``preadv2`` with ``RWF_NOWAIT``) and raises ``NotAtHand`` rather than
wait for the disk (what a server's event loop may read itself); no directory is listed then.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from urllib.parse import unquote, urlparse

from bigarrays_core.errors import InvalidKeyError, StorageError, StoragePermissionError
from bigarrays_core.kernels.scratch import ThreadScratch
from bigarrays_core.kvstore.at_hand import NotAtHand, only_at_hand
from bigarrays_core.kvstore.base import (
    CONTENT_ENCODING_SUFFIX,
    LOCK_KEY,
    ByteRange,
    ByteSpan,
    KVStore,
    Stamp,
    Value,
    Version,
    WriteOptions,
    check_key,
    check_range,
)
from bigarrays_core.kvstore.encodings import ENCODING_OF_SUFFIX, FOREIGN_SUFFIXES

__all__ = ["LocalStore", "path_from_url"]

_TMP_PREFIX = ".bigarrays-tmp-"
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
#: Errors of linking an unnamed file that mean it cannot be done here (rather than a failed write).
_NO_LINKING = (errno.EPERM, errno.EACCES, errno.EXDEV, errno.EOPNOTSUPP, errno.EINVAL)
#: Unnamed temporary files need ``O_TMPFILE`` and, to be linked without privileges, ``/proc``.
_UNNAMED_FILES = bool(_O_TMPFILE) and os.path.isdir("/proc/self/fd")
#: The lock file under a root (see the module docstring) and its number of lock slots.
LOCK_FILE = LOCK_KEY
_LOCK_SLOTS = 1 << 16
_VARIANTS = ("", *CONTENT_ENCODING_SUFFIX.values())
_ENCODED_SUFFIXES = tuple(CONTENT_ENCODING_SUFFIX.values())
#: Every suffix a listing strips (CloudVolume's five).
_LISTED_SUFFIXES = tuple(ENCODING_OF_SUFFIX)
#: A directory whose entries changed less than this long ago (by its modification and change
#: times) does not vouch for remembered locations: file systems take those times from a coarse
#: clock (ticks of a few ms; whole seconds on some, two on FAT), so two changes within one
#: tick can leave the same times. Once they are older, any change gives the directory new ones.
_SETTLED_NS = 5_000_000_000
#: Locations remembered per directory, and directories remembered, at most (bounded memory
#: for random reads of a huge volume); the oldest directory or all of one's keys are dropped.
_MAX_LOCATIONS = 1 << 16
_MAX_DIRECTORIES = 256

#: Where a key is stored: its path and suffix, or None (no variant is a file).
_Found = tuple[str, str] | None


#: In a listed directory's locations: a key with several variants, which is located by probing.
_PROBE = ("", "")
#: A directory is listed once its keys probed one by one reach about this fraction of its
#: entries (estimated from its size at ~32 bytes per entry): the listing then costs at most
#: a few times the probes made so far, and answers the rest of a bulk read for free.
_LIST_AFTER = 1 / 8


#: What :func:`_variant_of` answers when several of a key's primary variants exist.
_SEVERAL = "*"


def _variant_of(exists: Callable[[str], bool], is_file: Callable[[str], bool]) -> str | None:
    """The suffix of the variant of a key that reads return, by the rules of
    :meth:`LocalStore._locate`, from ``exists(suffix)`` and ``is_file(suffix)`` (``""`` is
    the plain key); None when no variant is stored; :data:`_SEVERAL` when more than one of
    the plain key, ``.gz``, ``.zstd`` and ``.br`` exist (the newest wins: the caller compares)."""
    encoded = [suffix for suffix in _ENCODED_SUFFIXES if exists(suffix)]
    if not encoded:
        return "" if is_file("") else _first_foreign(is_file)
    if len(encoded) == 1 and not exists(""):
        return encoded[0]
    return _SEVERAL


def _first_foreign(is_file: Callable[[str], bool]) -> str | None:
    """The first of CloudVolume's ``.br`` / ``.xz`` / ``.bz2`` suffixes that ``is_file``."""
    return next((suffix for suffix in FOREIGN_SUFFIXES if is_file(suffix)), None)


def _files_at(base: str, listing: Mapping[str, bool] | None = None) -> Callable[[str], bool]:
    """Whether ``base + suffix`` is a regular file (following symlinks), as a function of the
    suffix: asked of the file system, or of a directory ``listing`` (name -> is a file)."""
    if listing is None:
        return lambda suffix: os.path.isfile(base + suffix)
    return lambda suffix: listing.get(base + suffix, False)


class _Locations:
    """Where keys of one directory are stored, as found while the directory had ``stamp``."""

    __slots__ = ("budget", "found", "listed", "stamp")

    def __init__(self, stamp: tuple[int, int, int, int], size: int) -> None:
        #: The directory's device, inode, and modification and change times (ns).
        self.stamp = stamp
        #: Key -> where it is stored (:data:`_PROBE`: look for it).
        self.found: dict[str, _Found] = {}
        #: ``found`` came from a listing: a key not in it is not stored.
        self.listed = False
        #: Keys still to probe one by one before the directory is listed (negative: never).
        self.budget = int(size / 32 * _LIST_AFTER) if size < 32 * _MAX_LOCATIONS else -1


def _pread(fd: int, offset: int, n: int) -> bytes:
    """``n`` bytes of ``fd`` from ``offset`` (fewer if the file ends first; none for ``n <= 0``)."""
    parts = []
    while n > 0:
        got = os.pread(fd, n, offset)
        if not got:
            break
        parts.append(got)
        offset += len(got)
        n -= len(got)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def path_from_url(url: str) -> str:
    """The absolute directory a ``file://`` URL or plain path names."""
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise StorageError(f"file URL {url!r} names host {parsed.netloc!r}; only local paths are supported")
        path = unquote(parsed.path)
    elif url.startswith("file:"):
        path = unquote(url[len("file:"):])
    else:
        path = os.path.expanduser(url)
    return os.path.abspath(path)


class _KeyLocks:
    """The key locks of one root, shared by every store of the process on that root (a
    process must never close the lock file while it holds a lock on it: closing any
    descriptor of a file drops the process's record locks on it)."""

    _roots: dict[str, _KeyLocks] = {}
    _guard = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.threads: dict[int, threading.Lock] = {}

    @classmethod
    def of(cls, root: str) -> _KeyLocks:
        with cls._guard:
            locks = cls._roots.get(root)
            if locks is None:
                locks = cls._roots[root] = cls(os.path.join(root, LOCK_FILE))
            return locks

    @classmethod
    def _after_fork(cls) -> None:
        # A thread lock held when another thread forked stays held in the child: start afresh.
        # (Record locks are not inherited; the descriptors are, and stay usable.)
        cls._guard = threading.Lock()
        for locks in cls._roots.values():
            locks.threads = {}

    def _open(self) -> int:
        if self.fd is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self.fd

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        slot = zlib.crc32(key.encode()) % _LOCK_SLOTS
        with self._guard:
            fd = self._open()
            lock = self.threads.get(slot)
            if lock is None:
                lock = self.threads[slot] = threading.Lock()
        with lock:
            _lock_range(fd, slot, fcntl.F_WRLCK)
            try:
                yield
            finally:
                _lock_range(fd, slot, fcntl.F_UNLCK)


_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", None)


def _link_open_file(fd: int, path: str) -> None:
    """Give the unnamed file open as ``fd`` the name ``path`` (``linkat`` following the
    ``/proc/self/fd`` link, as an unprivileged process may). Raises FileExistsError when
    ``path`` exists."""
    # The source path is absolute, so linkat ignores src_dir_fd; passing one makes CPython
    # call linkat (with AT_SYMLINK_FOLLOW) rather than link, which would not follow it.
    os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=0, follow_symlinks=True)


def _temporary_path(directory: str) -> str:
    """A new name for a temporary file in ``directory`` (never a key: see :meth:`LocalStore.list`)."""
    return os.path.join(directory, f"{_TMP_PREFIX}{uuid.uuid4().hex}")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _rename_over(named: str, path: str) -> None:
    """Rename the temporary ``named`` over ``path``; on failure remove it and raise."""
    try:
        os.replace(named, path)
    except OSError:
        try:
            os.unlink(named)
        except OSError:
            pass
        raise


def _name_open_file(fd: int, path: str, *, replace: bool) -> None:
    """Give the unnamed file open as ``fd`` the name ``path``: one link when nothing is
    there, else a link beside it renamed over it (also when something appeared meanwhile)."""
    if not replace:
        try:
            _link_open_file(fd, path)
            return
        except FileExistsError:  # written meanwhile by someone who takes no key lock
            pass
    named = _temporary_path(os.path.dirname(path))
    _link_open_file(fd, named)
    _rename_over(named, path)


def _lock_range(fd: int, offset: int, kind: int) -> None:
    """Lock (``F_WRLCK``, waiting) or unlock (``F_UNLCK``) byte ``offset`` of ``fd``.

    Linux's open-file-description locks when there are, else POSIX record locks. Both are
    dropped by the kernel when the process ends. With record locks the kernel's deadlock
    check counts every thread of a process as one owner, so two processes whose threads
    wait on each other's slots get EDEADLK although no thread holds two slots: waited out.
    """
    if _OFD_SETLKW is not None:
        fcntl.fcntl(fd, _OFD_SETLKW, struct.pack("hhqqi", kind, os.SEEK_SET, offset, 1, 0))
        return
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_UN if kind == fcntl.F_UNLCK else fcntl.LOCK_EX, 1, offset, os.SEEK_SET)
            return
        except OSError as exc:
            if exc.errno != errno.EDEADLK:
                raise
            time.sleep(0.001)


os.register_at_fork(after_in_child=_KeyLocks._after_fork)


class LocalStore(KVStore):
    """Keys as files under a root directory.

    Parameters
    ----------
    url:
        ``file:///abs/dir``, ``file://relative`` or a plain path.
    read_only:
        Refuse every write and delete with :class:`ReadOnlyError`.
    fsync:
        Also flush each value to the disk before renaming it into place (survives power
        loss, not only a crashed process), at a cost in write speed.

    A store pickles as its root and options (for Dask workers on machines that see the
    same directory). Writers of a key exclude each other across processes (see the module
    docstring), so :meth:`write_if_unchanged` is atomic (:attr:`atomic_updates`).
    """

    local_stat = True
    atomic_updates = True
    #: Plain files are read at hand with ``RWF_NOWAIT`` (see :mod:`~bigarrays_core.kvstore.at_hand`);
    #: an instance sets it False when its kernel or file system refuses the flag.
    reads_at_hand = hasattr(os, "RWF_NOWAIT")
    takes_buffers = True

    def __init__(self, url: str, *, read_only: bool = False, fsync: bool = False) -> None:
        self.root = path_from_url(url)
        self.url = "file://" + self.root
        self.read_only = read_only
        self.fsync = fsync
        self._buffers = ThreadScratch()
        #: Whether values are written to unnamed files (see _temporary); turned off for good
        #: by the first that the file system refuses.
        self._unnamed_files = _UNNAMED_FILES
        #: Remembered locations by directory (a key prefix, "" for the root): see _directory.
        self._locations: dict[str, _Locations] = {}

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        del state["_buffers"]  # per-thread read buffers stay in this process
        del state["_locations"]  # and so does what this process found
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._buffers = ThreadScratch()
        self._locations = {}

    def _path(self, key: str) -> str:
        return os.path.join(self.root, check_key(key))

    def _fail(self, action: str, key: str, exc: OSError) -> StorageError:
        where = self.describe(key)
        if isinstance(exc, PermissionError):
            return StoragePermissionError(f"cannot {action} {where}: permission denied ({exc.strerror})")
        return StorageError(f"cannot {action} {where}: {exc.strerror or exc}")

    # -- reads -------------------------------------------------------------------------
    def _locate(self, key: str) -> tuple[str, str] | None:
        """The path and suffix of the stored variant of ``key``, or None.

        The plain key, ``.gz`` and ``.zstd`` first; if several exist (CloudVolume leaves the
        old one behind when it rewrites a chunk with another compression) the most recently
        modified wins, whatever was read before. Only when none of them is a file, the first
        of CloudVolume's ``.br`` / ``.xz`` / ``.bz2`` that is.
        """
        return self._find(key)[0]

    def _find(self, key: str) -> tuple[_Found, bool]:
        """:meth:`_locate`, and whether the answer holds for as long as the key's directory
        keeps its entries (False when it compared the modification times of several
        variants, which rewriting one in place changes without touching the directory)."""
        base = self._path(key)

        def is_file(suffix: str) -> bool:
            if suffix:
                return os.path.isfile(base + suffix)
            try:  # the plain key: an error other than absence is the read's error
                return stat.S_ISREG(os.stat(base).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                return False
            except OSError as exc:
                raise self._fail("read", key, exc) from exc

        # The common cases without exceptions: only the plain file (three access() calls and
        # a stat), or only one compressed variant (four access() calls; the reader checks
        # that it is a regular file).
        variant = _variant_of(lambda suffix: os.access(base + suffix, os.F_OK), is_file)
        if variant != _SEVERAL:
            return (None if variant is None else (base + variant, variant)), True
        best: tuple[str, str] | None = None
        best_time = -1
        for suffix in _VARIANTS:
            try:
                st = os.stat(base + suffix)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise self._fail("read", key, exc) from exc
            if stat.S_ISREG(st.st_mode) and st.st_mtime_ns > best_time:
                best, best_time = (base + suffix, suffix), st.st_mtime_ns
        if best is None:
            foreign = _first_foreign(_files_at(base))
            best = None if foreign is None else (base + foreign, foreign)
        return best, False

    def _directory(self, head: str) -> _Locations | None:
        """The remembered locations of the keys in directory ``head`` (a checked key prefix,
        ``""`` for the root), valid now; None when the directory cannot vouch for them: it
        is missing, or its entries changed too recently (:data:`_SETTLED_NS`)."""
        try:
            st = os.stat(os.path.join(self.root, head) if head else self.root)
        except OSError:
            self._locations.pop(head, None)
            return None
        stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        known = self._locations.get(head)
        if known is not None and known.stamp == stamp:
            return known
        if not stat.S_ISDIR(st.st_mode) or time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < _SETTLED_NS:
            self._locations.pop(head, None)
            return None
        if known is None and len(self._locations) >= _MAX_DIRECTORIES:
            self._locations.pop(next(iter(self._locations)), None)
        known = self._locations[head] = _Locations(stamp, st.st_size)
        return known

    def _located(self, key: str, seen: dict[str, _Locations | None]) -> _Found:
        """:meth:`_locate`, answered from the remembered locations of the key's directory
        when it vouches for them; ``seen`` holds the directories this call already checked."""
        head = key.rpartition("/")[0]
        try:
            where = seen[head]
        except KeyError:
            check_key(key)  # before its directory is looked at
            where = seen[head] = self._directory(head)
        if where is None:
            return self._locate(key)
        found = where.found
        try:
            located = found[key]
        except KeyError:
            if where.listed:
                return None
            if where.budget == 0 and not only_at_hand():  # never list a directory where reads must not wait
                where.budget = -1
                self._list(head, where)
                return self._located(key, seen)
            if where.budget > 0:
                where.budget -= 1
        else:
            if located is not _PROBE:
                return located
            return self._locate(key)
        located, lasting = self._find(key)
        if lasting:
            if len(found) >= _MAX_LOCATIONS:
                found.clear()
            found[key] = located
        return located

    def _list(self, head: str, where: _Locations) -> None:
        """Fill ``where`` with where every key of directory ``head`` is stored, from one
        listing, by :meth:`_find`'s rules (keys with several variants: :data:`_PROBE`); left
        as it was if the directory cannot be listed, has changed since ``where.stamp``, or
        holds more than :data:`_MAX_LOCATIONS` keys."""
        path = os.path.join(self.root, head) if head else self.root
        files: dict[str, bool] = {}
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    files[entry.name] = entry.is_file()
            st = os.stat(path)
        except OSError:
            return
        if (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns) != where.stamp:
            return
        suffixes: dict[str, list[str]] = {}
        for name in files:
            base, dot, ext = name.rpartition(".")
            suffix = dot + ext
            if not base or suffix not in ENCODING_OF_SUFFIX:
                base, suffix = name, ""
            suffixes.setdefault(base, []).append(suffix)
        if len(suffixes) > _MAX_LOCATIONS:
            return
        prefix = head + "/" if head else ""
        found: dict[str, _Found] = {}
        for base, present in suffixes.items():
            variant = _variant_of(present.__contains__, _files_at(base, files))
            if variant == _SEVERAL:
                found[prefix + base] = _PROBE
            elif variant is not None:
                found[prefix + base] = (os.path.join(path, base + variant), variant)
        where.found = found
        where.listed = True

    def _forget(self, key: str) -> None:
        """Drop what is remembered about where ``key`` is stored (it was not there)."""
        where = self._locations.get(key.rpartition("/")[0])
        if where is not None:
            where.found.pop(key, None)
            where.listed = False  # the listing no longer vouches for keys it did not show

    def _open(self, key: str, seen: dict[str, _Locations | None] | None = None
              ) -> tuple[int, os.stat_result, str] | None:
        """``(fd, stat, suffix)`` of the file holding ``key`` (the caller closes ``fd``), or
        None when no variant is stored. With ``seen`` (see :meth:`_located`) the first try
        may use a remembered location; a variant removed or replaced by a directory since it
        was located is looked for again (a concurrent writer), up to three times."""
        for attempt in range(3):
            found = self._located(key, seen) if seen is not None and attempt == 0 else self._locate(key)
            if found is None:
                return None
            path, suffix = found
            try:
                fd = os.open(path, os.O_RDONLY)
            except (FileNotFoundError, NotADirectoryError):
                self._forget(key)
                continue
            except OSError as exc:
                raise self._fail("read", key, exc) from exc
            try:
                st = os.fstat(fd)
            except OSError as exc:
                os.close(fd)
                raise self._fail("read", key, exc) from exc
            if stat.S_ISREG(st.st_mode):
                return fd, st, suffix
            os.close(fd)  # replaced by a directory since it was located
            self._forget(key)
        return None

    def _read_path(self, key: str, into: ThreadScratch | None, span: ByteSpan | None = None,
                   seen: dict[str, _Locations | None] | None = None) -> Value | None:
        """Read ``key``'s stored bytes, or only ``span`` of them (see :meth:`iter_values`).

        With ``into`` the bytes land in that thread's reused buffer and a view is returned.
        With ``seen`` (see :meth:`_located`) the key's location may be a remembered one.
        Inside ``at_hand_only()`` only a plain file read into ``into`` wholly from the page
        cache is returned; anything else raises :class:`NotAtHand`.
        """
        opened = self._open(key, seen)
        if opened is None:
            return None
        fd, st, suffix = opened
        encoding = ENCODING_OF_SUFFIX.get(suffix) if suffix else None
        at_hand = only_at_hand()
        try:
            if at_hand and (suffix or into is None):
                raise NotAtHand(f"{self.describe(key)} is read at hand only as a plain file into a buffer")
            if into is None:
                with open(fd, "rb", buffering=0, closefd=False) as f:
                    return Value(f.read(), encoding)
            size = st.st_size
            offset = 0
            ranged = span is not None and size == span[0] and not suffix
            if ranged:
                offset, size = span[1], span[2] - span[1]  # type: ignore[index]
            view = into.get(size).data
            got = 0
            while got < size:
                n = self._pread_at_hand(fd, view[got:size], offset + got, key) if at_hand else \
                    os.preadv(fd, [view[got:size]], offset + got)
                if n == 0:
                    break
                got += n
        except OSError as exc:
            raise self._fail("read", key, exc) from exc
        finally:
            os.close(fd)
        return Value(view[:got], encoding, ranged)

    def _pread_at_hand(self, fd: int, view: memoryview, offset: int, key: str) -> int:
        """``preadv`` of what the page cache holds from ``offset`` (short when it holds only
        part); :class:`NotAtHand` when it holds none, or when the flag is refused here (then
        this store stops reading at hand)."""
        try:
            return os.preadv(fd, [view], offset, os.RWF_NOWAIT)
        except BlockingIOError:
            raise NotAtHand(f"{self.describe(key)} is not in the page cache") from None
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            self.reads_at_hand = False
            raise NotAtHand(f"reads without waiting are not supported under {self.root}") from None

    def plain_files(self, keys: Sequence[str], sizes: Sequence[int]) -> list[int | None] | None:
        if only_at_hand():
            return None
        seen: dict[str, _Locations | None] = {}
        fds: list[int | None] = []
        try:
            for key, size in zip(keys, sizes):
                opened = self._open(key, seen)
                if opened is not None:
                    fd, st, suffix = opened
                    if not suffix and st.st_size == size:
                        fds.append(fd)
                        continue
                    os.close(fd)
                fds.append(None)
        except BaseException:
            for held in fds:
                if held is not None:
                    os.close(held)
            raise
        return fds

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for k in keys:
            value = self._read_path(k, None)
            out.append(None if value is None else bytes(value.data))
        return out

    def iter_values(self, keys: Sequence[str], spans: Sequence[ByteSpan | None] | None = None
                    ) -> Iterator[Value | None]:
        """Each value read into one buffer reused per thread; a plain file of exactly a
        span's size is read only in part (``pread``).

        Reusing the buffer avoids an allocation (and its page faults) per chunk, which
        roughly doubles the speed of reading from the page cache. The encoding is the one
        the file's suffix records (``.gz``, ``.zstd``, ``.br``, ``.xz``, ``.bz2``).
        """
        seen: dict[str, _Locations | None] = {}
        if spans is None:
            for key in keys:
                yield self._read_path(key, self._buffers, None, seen)
        else:
            for key, span in zip(keys, spans):
                yield self._read_path(key, self._buffers, span, seen)

    def get_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes | memoryview | None]:
        """Each range read with ``pread`` from the file that holds its key (whichever variant
        :meth:`_locate` finds), each file opened once per call; nothing else is read.

        ``None`` where a key is missing; fewer bytes (or none) where the file ends first.
        """
        ranges = [check_range(r) for r in ranges]
        by_key: dict[str, list[int]] = {}
        for i, r in enumerate(ranges):
            by_key.setdefault(r.key, []).append(i)
        out: list[bytes | memoryview | None] = [None] * len(ranges)
        seen: dict[str, _Locations | None] = {}
        for key, indexes in by_key.items():
            parts = self._read_ranges(key, [ranges[i] for i in indexes], seen)
            if parts is not None:
                for i, part in zip(indexes, parts):
                    out[i] = part
        return out

    def _read_ranges(self, key: str, ranges: Sequence[ByteRange],
                     seen: dict[str, _Locations | None]) -> list[bytes] | None:
        opened = self._open(key, seen)
        if opened is None:
            return None
        fd, st, _ = opened
        try:
            return [_pread(fd, r.start, (st.st_size if r.stop is None else min(r.stop, st.st_size)) - r.start)
                    for r in ranges]
        except OSError as exc:
            raise self._fail("read", key, exc) from exc
        finally:
            os.close(fd)

    def stat_many(self, keys: Sequence[str]) -> list[Stamp | None]:
        """The stamp of the variant a read would return (plain, ``.gz``, ``.zstd``, or a
        CloudVolume ``.br`` / ``.xz`` / ``.bz2`` file): its size, mtime and content encoding
        (the suffix's), and as ``version`` its suffix, device, inode and change time. No
        value is read.

        Every write through this store renames a new file into place, so a rewrite always
        has another inode than the file it replaced; a file rewritten in place keeps its
        inode, and only its times (as fine as the file system's clock) and size tell.
        """
        out: list[Stamp | None] = []
        seen: dict[str, _Locations | None] = {}
        for key in keys:  # every key checked: a remembered directory would answer "not stored"
            out.append(self._stat_key(check_key(key), seen))
        return out

    def _stat_key(self, key: str, seen: dict[str, _Locations | None]) -> Stamp | None:
        """As a read finds the key (the first try may use a remembered location, see
        :meth:`_located`: one ``stat`` instead of five calls), then its stamp."""
        for attempt in range(3):  # a concurrent writer may remove the variant we found
            try:
                found = self._located(key, seen) if attempt == 0 else self._locate(key)
            except StorageError as exc:
                cause = exc.__cause__
                if isinstance(cause, OSError) and cause.errno == errno.ENAMETOOLONG:
                    return None  # a name no file can have here: not stored
                raise
            for path, suffix in [found] if found is not None else []:
                try:
                    st = os.stat(path)
                except (FileNotFoundError, NotADirectoryError):
                    self._forget(key)
                    continue
                except OSError as exc:
                    if exc.errno == errno.ENAMETOOLONG:  # a name no file can have here: not stored
                        continue
                    raise self._fail("stat", key, exc) from exc
                if not stat.S_ISREG(st.st_mode):
                    self._forget(key)
                    continue
                version = f"{suffix or 'plain'}:{st.st_dev}:{st.st_ino}:{st.st_ctime_ns}"
                return Stamp(size=st.st_size, mtime_ns=st.st_mtime_ns, version=version,
                             encoding=ENCODING_OF_SUFFIX.get(suffix))
            if found is None:
                return None
        return None

    def exists_many(self, keys: Sequence[str]) -> list[bool]:
        out = []
        for k in keys:
            base = self._path(k)
            out.append(any(os.path.isfile(base + s) for s in _VARIANTS)
                       or _first_foreign(_files_at(base)) is not None)
        return out

    def list(self, prefix: str = "") -> Iterator[str]:
        if prefix.startswith("/") or "\\" in prefix or any(p in (".", "..") for p in prefix.split("/")):
            raise InvalidKeyError(f"invalid prefix {prefix!r}: prefixes are relative and have no '.' or '..' parts")
        # Walk only the directory the prefix lies in.
        head, _, _ = prefix.rpartition("/")
        top = os.path.join(self.root, head) if head else self.root
        seen: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            for name in sorted(filenames):
                if name.startswith(_TMP_PREFIX):
                    continue
                for suffix in _LISTED_SUFFIXES:
                    if name.endswith(suffix):
                        name = name[: -len(suffix)]
                        break
                key = rel_dir + name
                if key.startswith(prefix) and key not in seen and key != LOCK_KEY:  # the lock file is no value
                    seen.add(key)
                    yield key

    # -- writes ------------------------------------------------------------------------
    @contextmanager
    def _locks(self, key: str) -> Iterator[None]:
        """Hold ``key``'s lock (see the module docstring; none for keys at the root or of
        bigarrays' own records)."""
        if "/" not in key or key.startswith(".bigarrays/"):
            yield
            return
        try:
            held = _KeyLocks.of(self.root).hold(key)
            held.__enter__()
        except OSError as exc:
            raise self._fail("lock", key, exc) from exc
        try:
            yield
        finally:
            held.__exit__(None, None, None)

    def _temporary(self, key: str, value: bytes | memoryview, suffix: str, made_dirs: set[str]
                   ) -> tuple[int | str, str]:
        """Write ``value`` to a new temporary file beside where ``key`` goes; ``(tmp, target)``.

        ``tmp`` is the descriptor of an unnamed file (``O_TMPFILE``: it has no name until
        :meth:`_commit` links it, and vanishes with its descriptor when the writer dies) where
        the file system has them, else the path of a named temporary."""
        target = self._path(key) + suffix
        directory = os.path.dirname(target)
        if directory not in made_dirs:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise self._fail("write", key, exc) from exc
            made_dirs.add(directory)
        tmp: int | str = ""
        try:
            fd = self._unnamed(directory)
            if fd < 0:
                tmp = _temporary_path(directory)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            else:
                tmp = fd
            try:
                _write_all(fd, value)
                if self.fsync:
                    os.fsync(fd)
            finally:
                if isinstance(tmp, str):
                    os.close(fd)
        except OSError as exc:
            self._discard(tmp)
            raise self._fail("write", key, exc) from exc
        return tmp, target

    def _unnamed(self, directory: str) -> int:
        """A new unnamed file in ``directory`` open for reading and writing (read back only
        if it cannot be linked), or -1 where the file system (or the kernel, or a missing
        ``/proc``) cannot make one, or where one could not be linked before."""
        if not self._unnamed_files:
            return -1
        try:
            return os.open(directory, os.O_RDWR | _O_TMPFILE, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
            self._unnamed_files = False
            return -1

    @staticmethod
    def _discard(tmp: int | str) -> None:
        try:
            if isinstance(tmp, int):
                os.close(tmp)
            elif tmp:
                os.unlink(tmp)
        except OSError:
            pass

    def _copy_to_named(self, fd: int, directory: str) -> str:
        """A named temporary in ``directory`` holding what the file open as ``fd`` holds."""
        named = _temporary_path(directory)
        out = os.open(named, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            offset = 0
            while block := os.pread(fd, 1 << 20, offset):
                _write_all(out, block)
                offset += len(block)
            if self.fsync:
                os.fsync(out)
        except OSError:
            os.close(out)
            self._discard(named)
            raise
        os.close(out)
        return named

    def _commit(self, key: str, tmp: int | str, target: str, suffix: str) -> None:
        """Give ``tmp`` (see :meth:`_temporary`; taken over: named, or discarded on failure)
        the name ``target``, replacing what is there, and drop the key's other variants (the
        caller holds the key's lock)."""
        base = self._path(key)
        # Looked up first: an unlink, even of a missing name, takes the directory's lock,
        # which a concurrent rename into that directory holds while ext4 allocates the renamed
        # file's blocks; a lookup does not (every writer of this key holds its lock).
        present = [other for other in _VARIANTS if os.path.lexists(base + other)]
        try:
            if isinstance(tmp, str):
                _rename_over(tmp, target)
            else:
                try:
                    try:
                        _name_open_file(tmp, target, replace=suffix in present)
                    except OSError as exc:
                        if exc.errno not in _NO_LINKING:
                            raise
                        # Unnamed files this file system makes but will not link (a security
                        # module's rule, a FUSE file system): named temporaries from now on.
                        self._unnamed_files = False
                        _rename_over(self._copy_to_named(tmp, os.path.dirname(target)), target)
                finally:
                    os.close(tmp)
        except OSError as exc:
            raise self._fail("write", key, exc) from exc
        # Drop stale variants so a reader cannot find old bytes under another name.
        for other in present:
            if other != suffix:
                self._unlink(base + other, key)

    def set_many(self, items: Mapping[str, bytes], options: WriteOptions | None = None) -> None:
        keys = list(items)
        for k in keys:
            check_key(k)
        self._check_writable("write", keys[0] if keys else None)
        suffix = ""
        if options is not None and options.content_encoding:
            suffix = CONTENT_ENCODING_SUFFIX[options.content_encoding]
        made_dirs: set[str] = set()
        for key, value in items.items():
            tmp: int | str | None
            tmp, target = self._temporary(key, value, suffix, made_dirs)
            try:
                with self._locks(key):
                    pending, tmp = tmp, None
                    self._commit(key, pending, target, suffix)
            finally:
                if tmp is not None:
                    self._discard(tmp)

    def _unlink(self, path: str, key: str) -> None:
        try:
            os.unlink(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass
        except OSError as exc:
            raise self._fail("delete", key, exc) from exc

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for k in keys:
            check_key(k)
        self._check_writable("delete", keys[0] if keys else None)
        for k in keys:
            with self._locks(k):
                self._remove(k)

    def _remove(self, key: str) -> None:
        base = self._path(key)
        for suffix in _VARIANTS:
            self._unlink(base + suffix, key)

    # -- conditional writes ------------------------------------------------------------
    def read_for_update(self, key: str) -> tuple[Value | None, Version]:
        """The value and, as its version, a digest of the stored bytes and their suffix."""
        value = self._read_path(check_key(key), None)
        if value is None or not value.data:
            return None, Version()
        return value, Version((hashlib.blake2b(value.data, digest_size=16).digest(), value.encoding))

    def write_if_unchanged(self, key: str, value: bytes | None, expected: Version,
                           options: WriteOptions | None = None) -> bool:
        """Compare and replace under the key's lock (see the module docstring)."""
        check_key(key)
        self._check_writable("write", key)
        suffix = CONTENT_ENCODING_SUFFIX[options.content_encoding] if options and options.content_encoding else ""
        tmp = target = None
        if value is not None:
            tmp, target = self._temporary(key, value, suffix, set())
        try:
            with self._locks(key):
                _, now = self.read_for_update(key)
                if now != expected:
                    return False
                if tmp is None or target is None:
                    self._remove(key)
                else:
                    pending, tmp = tmp, None
                    self._commit(key, pending, target, suffix)
                return True
        finally:
            if tmp is not None:
                self._discard(tmp)

    # -- leftovers of killed writers ---------------------------------------------------
    #: Seconds without a write after which a temporary file is known to be abandoned. A writer
    #: keeps its temporary only while it writes one value and renames it over the key
    #: (milliseconds; seconds for a huge value on a slow disk), and each of its writes moves
    #: the file's mtime forward, so one untouched for an hour belongs to a writer that died
    #: (SIGKILL, power loss). Even a writer stalled that long loses nothing silently: removing
    #: its file makes its rename fail, and its write raises StorageError.
    STALE_TEMPORARY_AGE: float = 3600.0
    #: Directories swept by :meth:`sweep_stale_temporaries_once` in this process.
    _swept_directories: set[str] = set()
    _sweep_lock = threading.Lock()

    def _temporary_dir(self, prefix: str) -> str:
        prefix = prefix.strip("/")
        return os.path.join(self.root, check_key(prefix)) if prefix else self.root

    def temporaries(self, prefix: str = "", *, recursive: bool = True) -> Sequence[tuple[str, float]]:
        """The temporary files interrupted writes left under the directory ``prefix``.

        ``prefix`` is a key prefix naming a directory (a scale's key, or ``""`` for the
        root); ``recursive=False`` looks in that directory only. Returns ``(path relative to
        the root, seconds since it was last written)`` pairs, sorted. These files are never
        keys (:meth:`list` and reads ignore them); see :attr:`STALE_TEMPORARY_AGE`.
        """
        top = self._temporary_dir(prefix)
        now = time.time()
        found = []
        for dirpath, dirnames, filenames in os.walk(top):
            if not recursive:
                dirnames.clear()
            for name in filenames:
                if not name.startswith(_TMP_PREFIX):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    age = now - os.stat(path).st_mtime
                except FileNotFoundError:  # its writer finished (renamed it) meanwhile
                    continue
                found.append((os.path.relpath(path, self.root).replace(os.sep, "/"), max(0.0, age)))
        return sorted(found)

    def remove_stale_temporaries(self, prefix: str = "", *, older_than: float | None = None,
                                 recursive: bool = True) -> Sequence[str]:
        """Delete the :meth:`temporaries` under ``prefix`` not written for ``older_than`` seconds
        (default :attr:`STALE_TEMPORARY_AGE`); returns their paths relative to the root.

        Never touches a key. Raises :class:`ReadOnlyError` on a read-only store.
        """
        self._check_writable("remove temporary files from")
        limit = self.STALE_TEMPORARY_AGE if older_than is None else older_than
        removed = []
        for rel, _ in self.temporaries(prefix, recursive=recursive):
            path = os.path.join(self.root, rel)
            try:  # look again just before: a live writer may have written since
                if time.time() - os.stat(path).st_mtime < limit:
                    continue
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._fail("remove", rel, exc) from exc
            removed.append(rel)
        return removed

    def prepare_writes(self, prefix: str) -> None:
        """Sweep the stale temporaries of killed writers from ``prefix`` (once per process)."""
        self.sweep_stale_temporaries_once(prefix)

    def sweep_stale_temporaries_once(self, prefix: str = "") -> Sequence[str]:
        """:meth:`remove_stale_temporaries` in the directory ``prefix`` (not below it), unless this
        process already swept that directory; returns what it removed.

        Meant for writers about to fill a scale: each scale directory is scanned at most once
        per process, so the cost (one directory listing) is paid once. Does nothing on a
        read-only store.
        """
        if self.read_only:
            return []
        directory = self._temporary_dir(prefix)
        with self._sweep_lock:
            if directory in self._swept_directories:
                return []
            self._swept_directories.add(directory)
        return self.remove_stale_temporaries(prefix, recursive=False)
