"""Durability: an event that got a 200 is stored, whatever happens to the server afterwards.

16 threads send distinct events while the whole server (gunicorn master, its workers and the
digest child) is killed with SIGKILL; after a restart on the same data, every event id that
was answered 200 must be in the queue or the events table. Likewise after a SIGTERM, which
must also end the server cleanly (exit 0) within gunicorn's graceful timeout.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import Server, free_port, fresh_postgres_database, server_env, wait_healthy

SENDERS = 16
GRACEFUL_TIMEOUT = 30  # gunicorn's, as `bugnet serve` configures it


# -- A server of our own, in its own process group (so all of it can be killed at once). ---------


@dataclass
class OwnServer:
    process: subprocess.Popen[str]
    url: str
    output: list[str]

    @property
    def group(self) -> int:
        return self.process.pid  # start_new_session: the server leads its own group

    def dsn(self) -> str:
        """The DSN printed on the first run ("" on later runs, which print none)."""
        for line in self.output:
            if "DSN:" in line:
                return line.split("DSN:", 1)[1].strip()
        return ""


def group_members(group: int) -> list[tuple[int, str]]:
    """(pid, state) of every process in the process group ``group``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == group:
                members.append((int(entry), fields[0]))
    return members


def wait_group_gone(group: int, timeout: float = 10) -> list[tuple[int, str]]:
    """Wait until no live process is left in ``group``; return what is left (ideally [])."""
    deadline = time.monotonic() + timeout
    while True:
        left = [(pid, state) for pid, state in group_members(group) if state != "Z"]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture
def launch() -> Iterator[Callable[[Path, str], OwnServer]]:
    """Start ``bugnet serve`` on a data dir and database; kill whatever is left at the end."""
    started: list[OwnServer] = []

    def start(data_dir: Path, database_url: str) -> OwnServer:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [sys.executable, "-m", "bugnet_server.cli", "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "--threads", "8"],
            env=server_env(data_dir, database_url, url), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        server = OwnServer(process, url, [])
        started.append(server)
        threading.Thread(target=lambda: server.output.extend(process.stdout), daemon=True).start()  # type: ignore[arg-type]
        wait_healthy(url, process)
        deadline = time.monotonic() + 10  # "serving on" comes after the DSN, before health
        while not any(line.startswith("serving on") for line in server.output):
            assert time.monotonic() < deadline, "".join(server.output)
            time.sleep(0.02)
        return server

    yield start
    for server in started:
        if group_members(server.group):
            try:
                os.killpg(server.group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if server.process.poll() is None:
            server.process.kill()
        server.process.wait(30)
        if server.process.stdout is not None:
            server.process.stdout.close()
        assert not wait_group_gone(server.group), "a server process outlived its test"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A fresh data dir, and a fresh database (SQLite in it, or one on the PostgreSQL server)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if request.param == "sqlite":
        yield data_dir, f"sqlite:///{data_dir / 'bugnet.sqlite3'}"
        return
    with fresh_postgres_database("bugnet_durability") as url:
        yield data_dir, url


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the database directly (whether or not a server is running on it)."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            return db.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as db:
        return db.execute(sql).fetchall()  # type: ignore[arg-type]


def stored_event_ids(database_url: str) -> set[str]:
    """Every event id in the queue or the events table."""
    sql = "SELECT event_id FROM ingest_queuedevent UNION SELECT event_id FROM issues_event"
    return {row[0] for row in query(database_url, sql)}


def counted_errors(database_url: str) -> int:
    """The accepted errors counted for the (only) project."""
    sql = "SELECT SUM(quantity) FROM projects_outcome WHERE category = 'error' AND outcome = 'accepted'"
    return int(query(database_url, sql)[0][0] or 0)


# -- The load: 16 threads, each sending its own event ids as fast as the server answers. --------


@dataclass
class Load:
    dsn: str
    acknowledged: set[str] = field(default_factory=set)  # event ids answered 200
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # connection errors, by kind
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(SENDERS)]
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in self._threads), "a sender hung"

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count:
            assert time.monotonic() < deadline, (
                f"only {len(self.acknowledged)} events acknowledged; answers {dict(self.statuses)}"
                f", connection errors {dict(self.failures)}"
            )
            time.sleep(0.01)

    def _send(self) -> None:
        parts = urlsplit(self.dsn)
        key = parts.username
        path = f"/api/{parts.path.rsplit('/', 1)[1]}/envelope/"
        headers = {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7",
                   "Content-Type": "application/x-sentry-envelope"}  # fmt: skip
        conn: http.client.HTTPConnection | None = None
        shuffle = random.Random().shuffle
        while not self.stop.is_set():
            event_id = uuid.uuid4().hex
            items = [
                f'{{"type":"event"}}\n{{"message":"durable {event_id}","level":"error"}}\n',
                f'{{"type":"session"}}\n{{"sid":"{event_id}","status":"ok","attrs":{{"release":"r"}}}}\n',
                '{"type":"client_report"}\n{"discarded_events":[]}\n',
            ]
            shuffle(items)  # the counts of each envelope are taken in a different order
            body = (f'{{"event_id":"{event_id}"}}\n' + "".join(items)).encode()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.failures[type(exc).__name__] += 1
                if conn is not None:
                    conn.close()
                conn = None
                self.stop.wait(0.02)
                continue
            with self._lock:
                self.statuses[response.status] += 1
                if response.status == 200:
                    self.acknowledged.add(event_id)
        if conn is not None:
            conn.close()


def assert_all_acknowledged_stored(load: Load, database_url: str, output: list[str]) -> None:
    stored = stored_event_ids(database_url)
    lost = load.acknowledged - stored
    assert not lost, (
        f"{len(lost)} of {len(load.acknowledged)} acknowledged events are missing, e.g. "
        f"{sorted(lost)[:5]}; server output:\n{''.join(output[-50:])}"
    )
    errors = {status: n for status, n in load.statuses.items() if status >= 500}
    assert not errors, f"server errors while sending: {errors}"


def assert_counted(load: Load, database_url: str) -> None:
    """The project's error count is committed with the events: every acknowledged event is
    counted once (plus at most the requests in flight whose answer was lost)."""
    counted = counted_errors(database_url)
    acked = len(load.acknowledged)
    assert acked <= counted <= acked + SENDERS, f"{counted} errors counted for {acked} acked"


# -- The tests. ---------------------------------------------------------------------------------


def test_every_acknowledged_event_survives_kill_9_of_the_whole_server(database, launch):
    data_dir, database_url = database
    server = launch(data_dir, database_url)
    dsn = server.dsn()
    assert dsn, "no DSN printed on the first run:\n" + "".join(server.output)
    load = Load(dsn)
    load.start()
    try:
        load.wait_for(50)
        time.sleep(2.5)  # about three seconds of sending in all
        members = [pid for pid, state in group_members(server.group) if state != "Z"]
        assert len(members) >= 4, f"expected master, 2 workers and the digest; got {members}"
        os.killpg(server.group, signal.SIGKILL)
        server.process.wait(10)
        left = wait_group_gone(server.group)
        assert not left, f"processes survived SIGKILL of their group: {left}"
        time.sleep(0.3)  # answers already on their way when it died are read by now
        acked_at_death = len(load.acknowledged)
        time.sleep(1.0)  # the senders keep trying against a dead server
    finally:
        load.finish()
    assert load.failures, "no sender noticed the server die"
    assert len(load.acknowledged) == acked_at_death, "a dead server acknowledged events"

    restarted = launch(data_dir, database_url)  # same data: no DSN printed this time
    assert not restarted.dsn()
    assert_all_acknowledged_stored(load, database_url, server.output + restarted.output)
    assert_counted(load, database_url)
    # The restarted server takes the same DSN's events.
    after = Load(dsn.replace(urlsplit(dsn).netloc.split("@", 1)[1], urlsplit(restarted.url).netloc))
    after.start()
    try:
        after.wait_for(10)
    finally:
        after.finish()
    assert_all_acknowledged_stored(after, database_url, restarted.output)
    restarted.process.send_signal(signal.SIGTERM)
    assert restarted.process.wait(GRACEFUL_TIMEOUT + 10) == 0, "".join(restarted.output)
    print(f"{len(load.acknowledged)} events acknowledged before SIGKILL, all stored")


@pytest.mark.parametrize("target", ["master", "group"])
def test_sigterm_while_sending_exits_0_and_keeps_every_acknowledged_event(database, launch, target):
    """SIGTERM to the master (docker stop) or to every process (systemd's default) while
    16 threads send: the server finishes what is in flight and exits 0 in time."""
    data_dir, database_url = database
    server = launch(data_dir, database_url)
    load = Load(server.dsn())
    load.start()
    try:
        load.wait_for(50)
        time.sleep(1.5)
        signalled = time.monotonic()
        if target == "master":
            server.process.send_signal(signal.SIGTERM)
        else:
            os.killpg(server.group, signal.SIGTERM)
        code = server.process.wait(GRACEFUL_TIMEOUT + 10)
        took = time.monotonic() - signalled
        left = wait_group_gone(server.group)
    finally:
        load.finish()
    output = "".join(server.output)
    assert code == 0, f"bugnet serve exited with {code} on SIGTERM:\n{output}"
    assert took < GRACEFUL_TIMEOUT, f"SIGTERM took {took:.1f} s:\n{output}"
    assert not left, f"processes outlived the server: {left}"
    assert "Traceback" not in output, output
    assert_all_acknowledged_stored(load, database_url, server.output)
    assert_counted(load, database_url)
    print(f"{len(load.acknowledged)} events acknowledged, all stored; exit took {took:.1f} s")


def test_digest_stops_on_signals_in_quick_succession(server: Server):
    """A second SIGTERM arriving while the first is being handled (as when the whole group is
    signalled and the arbiter passes its own on) must not deadlock the digest: its handler only
    raises a flag, and the process exits 0 promptly."""
    for _ in range(6):
        digest = subprocess.Popen([sys.executable, "-m", "bugnet_server.cli", "digest", "--skip-checks"],
                                  env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)  # fmt: skip
        try:
            time.sleep(1.2)  # Django set up and both workers running
            assert digest.poll() is None, digest.communicate()[0]
            for _ in range(4):
                digest.send_signal(signal.SIGTERM)
                time.sleep(0.002)
            output, _ = digest.communicate(timeout=10)
            assert digest.returncode == 0, output
            assert "Traceback" not in output, output
        finally:
            if digest.poll() is None:
                digest.kill()
                digest.communicate()


def test_digest_runs_at_a_lower_priority_than_the_http_workers(server: Server):
    """When ingest and digest both want the CPU, the SDK's answer comes first."""

    def children(pid: int) -> list[int]:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]

    def niceness(pid: int) -> int:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[16])

    def command(pid: int) -> str:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode()

    if not os.path.exists(f"/proc/{server.process.pid}/task"):
        pytest.skip("needs Linux's /proc")
    deadline = time.monotonic() + 10
    while True:
        kids = {pid: command(pid) for pid in children(server.process.pid)}
        digests = [pid for pid, argv in kids.items() if " digest" in argv]
        if digests or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    workers = [pid for pid, argv in kids.items() if " digest" not in argv]
    assert digests, kids
    assert workers, kids
    base = niceness(server.process.pid)
    assert all(niceness(pid) == base for pid in workers)
    assert all(niceness(pid) == base + 5 for pid in digests)
