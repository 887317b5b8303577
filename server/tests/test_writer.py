"""The ingest writers (``ingest/writer.py``): requests on an event loop hand their rows over;
few commits, every request's rows committed once, one failing request spoils no other, and
``stop()`` commits what was handed over before it ends. ``Writer`` (one thread) on SQLite and
PostgreSQL; ``LoopWriter`` (commits on the loop, the thread when it would wait) on SQLite.

Each runs in a child interpreter configured like the server (Django settings from the
environment), as every other server test runs against a real process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import server_env

REQUESTS = 600

# What both scripts share: a table to write to, requests that wait on the writer, and the
# rows written by the writers' ``write(cursor, n)``, one of which fails for every 97th request.
SETUP = r"""
import asyncio, fcntl, json, os, sqlite3, sys, django
django.setup()
from django.db import connection
from bugnet_server.ingest.writer import LoopWriter, Writer
from bugnet_server.sqlite.base import write_lock_path

TABLE = sys.argv[1]
REQUESTS, BAD = int(sys.argv[2]), 7
with connection.cursor() as cursor:
    cursor.execute(f"CREATE TABLE {TABLE} (n INTEGER PRIMARY KEY)")
connection.close()

def writes(mark, broken=()):  # mark: "%s" for a Django cursor, "?" for a sqlite3 one
    def write(cursor, n):
        if n in broken:  # a connection that breaks: another writer must store it
            raise sqlite3.OperationalError("disk I/O error (a test)")
        cursor.execute(f"INSERT INTO {TABLE} (n) VALUES ({mark})", [n])
        if n % 97 == BAD:
            cursor.execute(f"INSERT INTO {TABLE} (n) VALUES ({mark})", [n])  # a conflict
    return write

failures = []

async def request(writer, n):
    await asyncio.sleep(0.001 * (n % 5))
    try:
        await writer.write(n)
    except Exception:
        failures.append(n)

def late(writer):
    # Handed over but not awaited: stop() still commits them.
    return [asyncio.ensure_future(writer.write(REQUESTS + n)) for n in range(5)]

def report(**measures):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT n FROM {TABLE} ORDER BY n")
        stored = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"DROP TABLE {TABLE}")
    print(json.dumps({"failures": sorted(failures), "stored": stored, **measures}))
"""

THREAD_SCRIPT = r"""
writer = Writer(writes("%s"), max_batch=64)
commits = 0
original = writer._commit

def counting(batch):
    global commits
    commits += 1
    return original(batch)

writer._commit = counting

async def main():
    await asyncio.gather(*(request(writer, n) for n in range(REQUESTS)))
    late(writer)
    await asyncio.sleep(0)

asyncio.run(main())
writer.stop()
report(commits=commits)
"""

LOOP_SCRIPT = r"""
database = str(connection.settings_dict["NAME"])
lock_path = write_lock_path(database)
writer = LoopWriter(database, lock_path, writes("?", broken={3}), Writer(writes("%s"), 64))
writer.CHECKPOINT_INTERVAL = 0.0

async def main():
    await asyncio.gather(*(request(writer, n) for n in range(REQUESTS // 2)))
    loop_commits = writer.commits
    # Another writer (the digest, another worker) holds the lock. Were the loop to wait for
    # it, this would hang: the lock is released only by this same loop, below.
    fd = os.open(lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held = [asyncio.ensure_future(request(writer, n)) for n in range(REQUESTS // 2, REQUESTS)]
    done, _ = await asyncio.wait(held, timeout=0.3)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    await asyncio.gather(*held)
    late(writer)
    await asyncio.sleep(0)
    return loop_commits, not done

loop_commits, waited_for_lock = asyncio.run(main())
writer.stop()
report(commits=loop_commits, waited_for_lock=waited_for_lock,
       checkpoints=writer.fallback.checkpoints)
"""


def _run(tmp_path: Path, url: str, script: str) -> dict[str, Any]:
    """Run ``SETUP`` and ``script`` against ``url``; check what every writer must do; return
    the script's report."""
    env = server_env(tmp_path, url, "http://127.0.0.1:9")
    env["DJANGO_SETTINGS_MODULE"] = "bugnet_server.settings"
    table = f"writer_test_{uuid.uuid4().hex[:12]}"
    done = subprocess.run([sys.executable, "-c", SETUP + script, table, str(REQUESTS)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    bad = [n for n in range(REQUESTS) if n % 97 == 7]
    assert result["failures"] == bad  # exactly the requests whose own writes failed
    wanted = [n for n in range(REQUESTS) if n not in bad] + [REQUESTS + n for n in range(5)]
    assert result["stored"] == wanted  # the rest once each, and what stop() found waiting
    assert 0 < result["commits"] < REQUESTS / 4  # requests that arrived together shared commits
    return result


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_requests_share_commits_fail_alone_and_stop_commits_the_rest(tmp_path, backend, request):
    url = f"sqlite:///{tmp_path / 'bugnet.sqlite3'}"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")  # skips when there is no server
    _run(tmp_path, url, THREAD_SCRIPT)


def test_the_loop_commits_itself_and_never_waits_for_another_writer(tmp_path):
    """SQLite's ``LoopWriter``: requests that arrive together share a commit made on the loop;
    when another writer holds the lock, the requests wait in the thread while the loop goes
    on; a failing request fails alone; a broken connection hands its batch to the thread and is
    opened again; checkpoints run in the thread; stop() commits the rest."""
    result = _run(tmp_path, f"sqlite:///{tmp_path / 'bugnet.sqlite3'}", LOOP_SCRIPT)
    assert result["waited_for_lock"]  # nothing was committed while the lock was held...
    assert result["checkpoints"] >= 1  # ...and the thread checkpointed the loop's commits
