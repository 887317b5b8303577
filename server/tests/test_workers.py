"""Several digest workers on PostgreSQL share one queue: no event is digested twice, and none
is lost when a worker dies mid-batch (its lease runs out and another takes the rows)."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Server, fresh_postgres_database, server_env, terminate, undigested_server
from test_ingest import post

EVENTS = 1500
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]


def send_all(server: Server, count: int) -> list[str]:
    ids = [f"{index + 1:032x}" for index in range(count)]
    headers = {"X-Sentry-Auth": f"Sentry sentry_key={server.public_key}, sentry_version=7",
               "Content-Encoding": "gzip"}  # fmt: skip

    def worker(part: list[str]) -> None:
        for event_id in part:
            # Seven issues (words, not numbers: numbers are normalized away by grouping).
            message = "bug in " + WORDS[int(event_id, 16) % 7]
            body = (json.dumps({"event_id": event_id}) + '\n{"type":"event"}\n'
                    + json.dumps({"message": message, "level": "error"}) + "\n").encode()  # fmt: skip
            assert (
                post(server, f"/api/{server.project_id}/envelope/", gzip.compress(body), headers)[0]
                == 200
            )

    threads = [threading.Thread(target=worker, args=(ids[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ids


@pytest.fixture
def own_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own (the first ``serve`` bootstraps it)."""
    with fresh_postgres_database("bugnet_workers") as url:
        yield url


def test_two_workers_share_the_queue_and_survive_one_dying(own_database: str, tmp_path: Path):
    """One worker is killed with SIGKILL while digesting; every event ends up stored once and
    the issue counters add up exactly."""
    workers: list[subprocess.Popen[str]] = []
    with undigested_server(tmp_path, own_database) as (server, env):
        try:
            ids = send_all(server, EVENTS)
            digest = [sys.executable, "-m", "bugnet_server.cli", "digest", "--batch", "50",
                      "--lease", "3"]  # fmt: skip
            workers = [subprocess.Popen(digest, env=env, text=True) for _ in range(2)]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # kill one once both are digesting
                if server.query("SELECT COUNT(*) FROM issues_event")[0][0] >= 200:
                    break
                time.sleep(0.01)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if server.query("SELECT COUNT(*) FROM ingest_queuedevent")[0][0] == 0:
                    break
                time.sleep(0.2)
            stored = server.query("SELECT event_id FROM issues_event")
            assert sorted(row[0] for row in stored) == ids
            [(seen, issues)] = server.query("SELECT SUM(times_seen), COUNT(*) FROM issues_issue")
            assert (int(seen), issues) == (EVENTS, 7)
            [(tagged,)] = server.query("SELECT SUM(count) FROM issues_tagvalue WHERE key = 'level'")
            assert int(tagged) == EVENTS
        finally:
            for process in workers:
                terminate(process)


RETRY_SCRIPT = """
import django
django.setup()
from django.db import OperationalError
from bugnet_server.digest import worker
calls = []
def flaky(rows):
    calls.append(rows)
    if len(calls) < 3:
        raise OperationalError("deadlock detected")
worker.digest_batch = flaky
worker._digest(["row"])
print(len(calls))
worker.digest_batch = lambda rows: (_ for _ in ()).throw(OperationalError("still locked"))
try:
    worker._digest(["row"])
except OperationalError:
    print("raised")
"""


def test_a_batch_the_database_gave_up_on_is_digested_again_at_once(tmp_path: Path):
    """A deadlock between PostgreSQL workers (or SQLite locked past its timeout) aborts one
    batch: the worker tries it again at once instead of leaving it to its lease."""
    env = server_env(tmp_path, f"sqlite:///{tmp_path / 'bugnet.sqlite3'}", "http://127.0.0.1:1")
    env["DJANGO_SETTINGS_MODULE"] = "bugnet_server.settings"
    run = subprocess.run([sys.executable, "-c", RETRY_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["3", "raised"]
