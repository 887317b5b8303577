"""The durable spool: envelopes that could not be delivered now wait on disk.

One file per envelope, named so that names sort oldest first. A file is written under a
temporary name and renamed into place, and carries its length and CRC-32, so a file torn by a
crash or a full disk is recognised and never sent. Several processes may share a directory:
a sender holds an exclusive ``flock`` on a file while it delivers it and deletes it before
letting go, and a lock dies with its process, so each envelope is delivered once even when a
sender is killed halfway (then the next sender retries it; the server drops the duplicate id).
Bounded in bytes and age: the oldest files go first, and each one dropped is reported.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from _weakrefset import WeakSet  # what weakref.WeakSet is; threading has loaded it already

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Callable, Optional

if TYPE_CHECKING:
    # (reason, categories of the dropped envelope)
    DropCallback = Callable[[str, list[str]], None]


_spools: WeakSet[Spool] = WeakSet()  # each resets itself in a forked child


def _after_fork_in_child() -> None:
    for spool in list(_spools):
        spool._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _flock_exclusive(fd: int) -> bool:
    """Take an exclusive, non-blocking lock on ``fd``; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process locks; best effort
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


SUFFIX = ".bnq"
TMP_SUFFIX = ".tmp"
STALE_TMP_AGE = 3600.0
PRUNE_TO = 0.9  # a spool over its byte limit is pruned down to this fraction of it
CLAIM_BATCH = 256  # spool files looked at per directory scan while delivering
HEADER_LIMIT = 4096


class SpoolCorrupt(ValueError):
    """A spool file that is torn or was not written by us."""


def encode_file(payload: bytes, categories: list[str]) -> bytes:
    import json

    header = {"v": 1, "len": len(payload), "crc": zlib.crc32(payload), "cat": categories}
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload


def decode_file(data: bytes) -> tuple[bytes, list[str]]:
    import json

    newline = data.find(b"\n", 0, HEADER_LIMIT)
    if newline < 0:
        raise SpoolCorrupt("no header line")
    try:
        header = json.loads(data[:newline])
        length, crc, categories = header["len"], header["crc"], header.get("cat", [])
    except (ValueError, KeyError, TypeError) as exc:
        raise SpoolCorrupt(f"bad header: {exc}") from None
    payload = data[newline + 1 :]
    if len(payload) != length or zlib.crc32(payload) != crc:
        raise SpoolCorrupt("length or checksum mismatch (torn write)")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise SpoolCorrupt("bad header: categories")
    return payload, categories


class Claim:
    """An envelope taken out of the spool for delivery; ``done()`` deletes it, ``release()``
    puts it back for a later attempt."""

    def __init__(
        self, spool: Spool, path: str, fd: int, size: int, payload: bytes, categories: list[str]
    ) -> None:
        self._spool = spool
        self.path = path
        self._fd = fd
        self._size = size
        self.payload = payload
        self.categories = categories

    def done(self) -> None:
        if self._fd >= 0:
            _unlink(self.path)  # before the lock goes, so no other sender can take it
            self._spool._forget(self._size)
            self._close()

    def release(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            self._spool._close(self._fd)  # also releases the flock
            self._fd = -1


class Spool:
    """A directory of undelivered envelopes for one DSN."""

    def __init__(
        self,
        directory: str,
        max_bytes: int,
        max_age: float,
        on_drop: Optional[DropCallback] = None,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._approx_bytes: Optional[int] = None
        self._open_fds: set[int] = set()  # files this process holds locked
        _spools.add(self)

    def _after_fork(self) -> None:
        # A forked child shares the parent's locked file descriptions: were it to keep them
        # open, the parent's locks would outlive its release() until the child exits.
        self._lock = threading.Lock()
        for fd in list(self._open_fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self._open_fds.clear()

    # -- writing --------------------------------------------------------------------------

    def put(self, payload: bytes, categories: list[str]) -> Optional[str]:
        """Store ``payload``; its path, or None (and the drop reported) when the disk refuses.

        No fsync: a crash of the process loses nothing (the page cache survives it), and a
        file torn by a power cut fails its checksum and is dropped, not sent.
        """
        data = encode_file(payload, categories)
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}{SUFFIX}"
        final = os.path.join(self.directory, name)
        tmp = os.path.join(self.directory, "." + name + TMP_SUFFIX)
        try:
            try:
                self._write(tmp, data)
            except FileNotFoundError:  # the directory is new, or was removed meanwhile
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                self._write(tmp, data)
            os.replace(tmp, final)
        except OSError:
            _unlink(tmp)
            self._drop("cache_overflow", categories)
            return None
        with self._lock:
            if self._approx_bytes is not None:
                self._approx_bytes += len(data)
            over = self._approx_bytes is None or self._approx_bytes > self.max_bytes
        if over:
            self.prune()
        return final

    @staticmethod
    def _write(path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    # -- reading --------------------------------------------------------------------------

    def _oldest(self, count: int, after: str = "") -> list[str]:
        """The names of the ``count`` oldest spool files named after ``after``, oldest first.

        Streams the directory: a spool may hold thousands of files, and holding a list of all
        of them would cost the app's process memory it never gives back.
        """
        import heapq

        try:
            with os.scandir(self.directory) as it:
                return heapq.nsmallest(count, (n for n in _names(it) if n > after))
        except OSError:
            return []

    def has_pending(self) -> bool:
        try:
            with os.scandir(self.directory) as it:
                return any(e.name.endswith(SUFFIX) and not e.name.startswith(".") for e in it)
        except OSError:
            return False

    def pending_count(self) -> int:
        try:
            with os.scandir(self.directory) as it:
                return sum(1 for _ in _names(it))
        except OSError:
            return 0

    def claims(self) -> Iterator[Claim]:
        """Claim the spooled envelopes, oldest first, skipping ones other processes hold.

        Each yielded claim must be settled with ``done()`` or ``release()`` before the next.
        Torn or expired files met on the way are deleted (and reported).
        """
        if self._approx_bytes is None:
            self.prune()  # the first look: learn the size, clear what crashed writers left
        cutoff = time.time() - self.max_age
        after = ""
        while True:
            batch = self._oldest(CLAIM_BATCH, after)
            if not batch:
                return
            for name in batch:
                claim = self._claim(os.path.join(self.directory, name), cutoff)
                if claim is not None:
                    yield claim
            after = batch[-1]

    def _lock_file(self, path: str) -> Optional[int]:
        """Open and exclusively lock ``path``; None if it is gone or another sender holds it."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None  # delivered and removed meanwhile
        self._open_fds.add(fd)
        try:
            # Still linked after we got the lock? A sender deletes before it unlocks.
            if _flock_exclusive(fd) and os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except OSError:
            pass
        self._close(fd)
        return None

    def _close(self, fd: int) -> None:
        self._open_fds.discard(fd)
        try:
            os.close(fd)
        except OSError:
            pass

    def _claim(self, path: str, cutoff: float) -> Optional[Claim]:
        fd = self._lock_file(path)
        if fd is None:
            return None
        try:
            mtime = os.fstat(fd).st_mtime
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            data = b"".join(chunks)
        except OSError:
            self._close(fd)
            return None
        try:
            payload, categories = decode_file(data)
        except SpoolCorrupt:
            self._remove(path, fd, len(data))
            self._drop("internal_sdk_error", ["error"])
            return None
        if mtime < cutoff:
            self._remove(path, fd, len(data))
            self._drop("cache_overflow", categories)
            return None
        return Claim(self, path, fd, len(data), payload, categories)

    def discard(self, path: str) -> bool:
        """Delete the spooled file at ``path`` unless another sender holds it; True if deleted."""
        fd = self._lock_file(path)
        if fd is None:
            return False
        try:
            size = os.fstat(fd).st_size
        except OSError:
            size = 0
        self._remove(path, fd, size)
        return True

    def _remove(self, path: str, fd: int, size: int) -> None:
        _unlink(path)
        self._close(fd)
        self._forget(size)

    def _forget(self, size: int) -> None:
        with self._lock:
            if self._approx_bytes is not None:
                self._approx_bytes = max(self._approx_bytes - size, 0)

    # -- bounds ---------------------------------------------------------------------------

    def prune(self) -> None:
        """Drop expired files, then the oldest until under ``max_bytes``; clear stale temp files.

        Over the limit, it makes room for a while (down to ``PRUNE_TO`` of the limit): pruning
        scans the directory, and a full spool must not cost every new envelope a scan.
        """
        now = time.time()
        total = count = 0
        expired: list[tuple[str, int]] = []
        try:
            with os.scandir(self.directory) as it:
                for entry in it:
                    name = entry.name
                    is_tmp = name.endswith(TMP_SUFFIX)
                    if not is_tmp and not _is_spool_name(name):
                        continue
                    try:
                        stat = entry.stat()
                    except OSError:
                        continue
                    if is_tmp:
                        if now - stat.st_mtime > STALE_TMP_AGE:
                            _unlink(entry.path)  # left by a writer that crashed
                    elif now - stat.st_mtime > self.max_age:
                        expired.append((name, stat.st_size))
                    else:
                        total += stat.st_size
                        count += 1
        except OSError:
            return
        for name, _size in expired:
            self._try_drop_file(os.path.join(self.directory, name))
        target = int(self.max_bytes * PRUNE_TO)
        while total > self.max_bytes and count > 0:
            # Files are of similar size: take about the share of them that is over the target.
            share = max(1, -(-count * (total - target) // total))
            for name in self._oldest(share):
                path = os.path.join(self.directory, name)
                try:
                    size = os.stat(path).st_size
                except OSError:
                    size = 0
                # Dropped, or gone meanwhile, or being sent (and so about to go): either way it
                # leaves the budget, so a slow send never costs the newest envelopes their place.
                self._try_drop_file(path)
                total -= size
                count -= 1
                if total <= target:
                    break
            else:
                continue
            break
        with self._lock:
            self._approx_bytes = total

    def _try_drop_file(self, path: str) -> bool:
        """Delete a file nobody is delivering, reporting its events as dropped."""
        fd = self._lock_file(path)
        if fd is None:
            return False
        import json

        try:
            head = os.read(fd, HEADER_LIMIT)
            categories = json.loads(head[: head.index(b"\n")]).get("cat")
        except (OSError, ValueError, AttributeError):
            categories = None
        if not isinstance(categories, list):
            categories = ["error"]
        _unlink(path)
        self._close(fd)
        self._drop("cache_overflow", categories)
        return True

    def _drop(self, reason: str, categories: list[str]) -> None:
        if self._on_drop is not None:
            self._on_drop(reason, categories)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _is_spool_name(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith(".")


def _names(entries: Iterator[os.DirEntry[str]]) -> Iterator[str]:
    return (e.name for e in entries if _is_spool_name(e.name))
