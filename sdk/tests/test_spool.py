"""The durable spool on its own: one file per envelope, claimed under flock, bounded in bytes and
age, and a torn or foreign file is dropped (and reported), never handed out for sending."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from bugnet._spool import TMP_SUFFIX, Spool, SpoolCorrupt, decode_file, encode_file

SRC = str(Path(__file__).resolve().parents[1] / "src")


class Drops(list):  # type: ignore[type-arg]
    """The spool's drop reports, as (reason, categories)."""

    def __call__(self, reason: str, categories: list[str]) -> None:
        self.append((reason, categories))


@pytest.fixture
def drops() -> Drops:
    return Drops()


@pytest.fixture
def spool(tmp_path: Path, drops: Drops) -> Spool:
    return Spool(str(tmp_path / "spool"), 1 << 20, 3600.0, on_drop=drops)


def spooled(spool: Spool) -> list[str]:
    return sorted(n for n in os.listdir(spool.directory) if n.endswith(".bnq"))


def take_all(spool: Spool) -> list[bytes]:
    """Claim, read and delete everything claimable."""
    payloads = []
    for claim in spool.claims():
        payloads.append(claim.payload)
        claim.done()
    return payloads


# -- the file format ------------------------------------------------------------------------


def test_file_round_trips_payload_and_categories():
    payload = b'{"event_id":"abc"}\n{"type":"event","length":2}\n{}\n'
    assert decode_file(encode_file(payload, ["error", "internal"])) == (
        payload,
        ["error", "internal"],
    )


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-5], id="truncated"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="bit-flip"),
        pytest.param(lambda data: data + b"more", id="trailing-bytes"),
        pytest.param(lambda data: data.split(b"\n", 1)[1], id="no-header"),
        pytest.param(lambda data: b"not json\n" + data, id="garbage-header"),
        pytest.param(lambda data: b'{"v":1,"len":0,"crc":0,"cat":"error"}\n', id="bad-categories"),
    ],
)
def test_damaged_file_is_recognised(damage):
    with pytest.raises(SpoolCorrupt):
        decode_file(damage(encode_file(b"payload bytes", ["error"])))


# -- put and claims -------------------------------------------------------------------------


def test_put_creates_the_directory_and_a_claim_returns_the_payload(spool):
    path = spool.put(b"one", ["error"])
    assert path is not None
    assert os.path.dirname(path) == spool.directory
    (claim,) = list_claims_and_release(spool)
    assert (claim.payload, claim.categories) == (b"one", ["error"])


def list_claims_and_release(spool: Spool) -> list:  # type: ignore[type-arg]
    claims = []
    for claim in spool.claims():
        claims.append(claim)
        claim.release()
    return claims


def test_done_deletes_and_release_keeps(spool):
    spool.put(b"kept", ["error"])
    spool.put(b"sent", ["error"])
    for claim in spool.claims():
        if claim.payload == b"sent":
            claim.done()
        else:
            claim.release()
    assert take_all(spool) == [b"kept"]
    assert spooled(spool) == []


def test_claims_come_oldest_first(spool):
    for n in range(5):
        spool.put(b"%d" % n, ["error"])
    assert take_all(spool) == [b"0", b"1", b"2", b"3", b"4"]


def test_file_claimed_by_another_sender_is_skipped(tmp_path, spool):
    """Two spools on one directory are two processes' view: a held claim is invisible to the
    other (flock locks conflict between open files, in one process as across processes)."""
    spool.put(b"first", ["error"])
    spool.put(b"second", ["error"])
    other = Spool(spool.directory, 1 << 20, 3600.0)
    held = next(iter(other.claims()))
    assert held.payload == b"first"
    assert take_all(spool) == [b"second"]
    held.release()
    assert take_all(spool) == [b"first"]


def test_lock_held_by_a_killed_process_dies_with_it(spool):
    """A sender killed halfway leaves its file claimable by the next one."""
    spool.put(b"orphan", ["error"])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from bugnet._spool import Spool\n"
            "claim = next(iter(Spool(sys.argv[1], 1 << 20, 3600.0).claims()))\n"
            "print(claim.payload.decode(), flush=True)\n"
            "sys.stdin.read()\n",
            spool.directory,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={"PYTHONPATH": SRC, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"orphan\n"
        assert list(spool.claims()) == []  # held by the other process
    finally:
        holder.kill()
        holder.communicate()
    assert take_all(spool) == [b"orphan"]


def test_threads_draining_one_directory_take_each_file_once(spool):
    count = 60
    for n in range(count):
        spool.put(b"%d" % n, ["error"])
    taken: list[bytes] = []

    def drain() -> None:
        taken.extend(take_all(Spool(spool.directory, 1 << 20, 3600.0)))

    threads = [threading.Thread(target=drain) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(b"%d" % n for n in range(count))


def test_discard_deletes_unless_another_sender_holds_the_file(spool):
    path = spool.put(b"x", ["error"])
    assert path is not None
    other = Spool(spool.directory, 1 << 20, 3600.0)
    held = next(iter(other.claims()))
    assert spool.discard(path) is False
    held.release()
    assert spool.discard(path) is True
    assert spooled(spool) == []


# -- torn and foreign files -----------------------------------------------------------------


def test_torn_file_is_deleted_and_reported_never_claimed(spool, drops):
    spool.put(b"good", ["error"])
    torn = encode_file(b"a payload cut short by a power cut", ["error"])[:-7]
    Path(spool.directory, "00000000000000000001-1-deadbeef.bnq").write_bytes(torn)
    assert take_all(spool) == [b"good"]
    assert drops == [("internal_sdk_error", ["error"])]
    assert spooled(spool) == []


def test_foreign_file_is_dropped(spool, drops):
    os.makedirs(spool.directory)
    Path(spool.directory, "00000000000000000001-1-cafebabe.bnq").write_bytes(b"hello")
    Path(spool.directory, "notes.txt").write_bytes(b"not ours, not touched")
    assert take_all(spool) == []
    assert drops == [("internal_sdk_error", ["error"])]
    assert os.listdir(spool.directory) == ["notes.txt"]


def test_temp_files_are_never_claimed_and_only_stale_ones_are_cleared(spool):
    """A temp file is a write in progress (maybe by another process), or one a crash left."""
    spool.put(b"complete", ["error"])
    fresh = Path(spool.directory, ".00000000000000000002-9-0000.bnq" + TMP_SUFFIX)
    stale = Path(spool.directory, ".00000000000000000001-9-0000.bnq" + TMP_SUFFIX)
    fresh.write_bytes(b"half written")
    stale.write_bytes(b"left by a crash")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    later = Spool(spool.directory, 1 << 20, 3600.0)  # the next process
    assert take_all(later) == [b"complete"]  # its first look also clears stale temp files
    assert fresh.exists()
    assert not stale.exists()


# -- bounds ---------------------------------------------------------------------------------


def test_over_max_bytes_the_oldest_are_dropped_and_reported(tmp_path, drops):
    one = len(encode_file(b"x" * 100, ["error"]))
    spool = Spool(str(tmp_path / "spool"), int(one * 3.5), 3600.0, on_drop=drops)
    spool.put(b"0" * 100, ["error"])
    spool.put(b"1" * 100, ["transaction"])
    spool.put(b"2" * 100, ["error"])
    assert drops == []
    spool.put(b"3" * 100, ["error"])
    spool.put(b"4" * 100, ["error"])
    assert drops == [("cache_overflow", ["error"]), ("cache_overflow", ["transaction"])]
    assert [p[:1] for p in take_all(spool)] == [b"2", b"3", b"4"]


def test_size_bound_accounts_for_files_already_on_disk(tmp_path, drops):
    """A new process learns the spool's size from the disk, not from zero."""
    one = len(encode_file(b"x" * 100, ["error"]))
    first = Spool(str(tmp_path / "spool"), int(one * 2.5), 3600.0)
    first.put(b"0" * 100, ["error"])
    first.put(b"1" * 100, ["error"])
    later = Spool(first.directory, int(one * 2.5), 3600.0, on_drop=drops)
    later.put(b"2" * 100, ["error"])
    assert drops == [("cache_overflow", ["error"])]
    assert [p[:1] for p in take_all(later)] == [b"1", b"2"]


def test_file_being_sent_is_never_dropped_for_size(tmp_path, drops):
    one = len(encode_file(b"x" * 100, ["error"]))
    spool = Spool(str(tmp_path / "spool"), int(one * 1.5), 3600.0, on_drop=drops)
    spool.put(b"0" * 100, ["error"])
    sender = Spool(spool.directory, 1 << 20, 3600.0)
    held = next(iter(sender.claims()))
    spool.put(b"1" * 100, ["error"])
    spool.put(b"2" * 100, ["error"])
    assert held.payload[:1] == b"0"
    assert len(drops) == 1
    held.done()
    assert [p[:1] for p in take_all(spool)] == [b"2"]


def test_expired_files_are_dropped_and_reported(tmp_path, drops):
    spool = Spool(str(tmp_path / "spool"), 1 << 20, 60.0, on_drop=drops)
    old = spool.put(b"old", ["error"])
    spool.put(b"new", ["error"])
    assert old is not None
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert take_all(spool) == [b"new"]
    assert drops == [("cache_overflow", ["error"])]
    assert spooled(spool) == []


def test_prune_drops_expired_files(tmp_path, drops):
    spool = Spool(str(tmp_path / "spool"), 1 << 20, 60.0, on_drop=drops)
    old = spool.put(b"old", ["error"])
    assert old is not None
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    spool.prune()
    assert drops == [("cache_overflow", ["error"])]
    assert spooled(spool) == []


# -- the disk refuses -----------------------------------------------------------------------


def test_put_below_a_regular_file_fails_and_reports(tmp_path, drops):
    """mkdir fails even for root when a path component is a file."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    spool = Spool(str(blocker / "spool"), 1 << 20, 3600.0, on_drop=drops)
    assert spool.put(b"lost", ["error", "internal"]) is None
    assert drops == [("cache_overflow", ["error", "internal"])]
    assert spool.has_pending() is False
    assert list(spool.claims()) == []


def test_directory_removed_meanwhile_is_recreated(spool):
    spool.put(b"one", ["error"])
    take_all(spool)
    os.rmdir(spool.directory)  # a cache cleaner, say
    assert spool.put(b"two", ["error"]) is not None
    assert take_all(spool) == [b"two"]


# -- fork -----------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_forked_child_does_not_keep_the_parents_claim_locked(spool):
    """A child inherits the parent's open file descriptions; it must close its copies, or the
    parent's release() would not unlock the file until the child exits."""
    spool.put(b"in flight", ["error"])
    claim = next(iter(spool.claims()))
    ready_read, ready_write = os.pipe()
    done_read, done_write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded fork" on 3.12+
        pid = os.fork()
    if pid == 0:  # the child (its at-fork handlers have run) waits until the parent is done
        try:
            os.write(ready_write, b"r")
            os.read(done_read, 1)
        finally:
            os._exit(0)
    try:
        assert os.read(ready_read, 1) == b"r"
        claim.release()
        assert take_all(spool) == [b"in flight"]  # claimable while the child still runs
    finally:
        os.write(done_write, b"d")
        os.waitpid(pid, 0)
        for fd in (ready_read, ready_write, done_read, done_write):
            os.close(fd)
