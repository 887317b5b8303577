"""The ingest writer (``ingest/writer.py``): requests on an event loop hand their rows to one
thread; few commits, every request's rows committed once, one failing request spoils no other,
and ``stop()`` commits what was handed over before it ends. On SQLite and PostgreSQL.

Runs in a child interpreter configured like the server (Django settings from the environment),
as every other server test runs against a real process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from conftest import server_env

SCRIPT = r"""
import asyncio, json, sys, django
django.setup()
from django.db import connection
from bugnet_server.ingest.writer import Writer

TABLE = sys.argv[1]
with connection.cursor() as cursor:
    cursor.execute(f"CREATE TABLE {TABLE} (n INTEGER PRIMARY KEY)")
connection.close()

REQUESTS, BAD = 600, 7

def write(cursor, n):
    cursor.execute(f"INSERT INTO {TABLE} (n) VALUES (%s)", [n])
    if n % 97 == BAD:
        cursor.execute(f"INSERT INTO {TABLE} (n) VALUES (%s)", [n])  # a conflict

writer = Writer(write, max_batch=64)
commits = 0
original = writer._commit

def counting(batch):
    global commits
    commits += 1
    return original(batch)

writer._commit = counting
failures = []

async def request(n):
    await asyncio.sleep(0.001 * (n % 5))
    try:
        await writer.write(n)
    except Exception:
        failures.append(n)

async def main():
    await asyncio.gather(*(request(n) for n in range(REQUESTS)))
    # Handed over but not awaited: stop() still commits them.
    loop = asyncio.get_running_loop()
    late = [loop.create_task(writer.write(REQUESTS + n)) for n in range(5)]
    await asyncio.sleep(0)
    return late

asyncio.run(main())
writer.stop()
with connection.cursor() as cursor:
    cursor.execute(f"SELECT n FROM {TABLE} ORDER BY n")
    stored = [row[0] for row in cursor.fetchall()]
    cursor.execute(f"DROP TABLE {TABLE}")
print(json.dumps({"commits": commits, "failures": sorted(failures), "stored": stored}))
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_requests_share_commits_fail_alone_and_stop_commits_the_rest(tmp_path, backend):
    url = f"sqlite:///{tmp_path / 'bugnet.sqlite3'}"
    if backend == "postgresql":
        url = os.environ.get("BUGNET_TEST_DATABASE_URL", "")
        if not url:
            pytest.skip("BUGNET_TEST_DATABASE_URL is not set (a PostgreSQL server to test on)")
    env = server_env(tmp_path, url, "http://127.0.0.1:9")
    env["DJANGO_SETTINGS_MODULE"] = "bugnet_server.settings"
    table = f"writer_test_{uuid.uuid4().hex[:12]}"
    done = subprocess.run([sys.executable, "-c", SCRIPT, table], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    total = 600
    bad = [n for n in range(total) if n % 97 == 7]
    assert result["failures"] == bad  # exactly the requests whose own writes failed
    wanted = [n for n in range(total) if n not in bad] + [total + n for n in range(5)]
    assert result["stored"] == wanted  # the rest once each, and what stop() found waiting
    assert result["commits"] < total / 4  # requests that arrived together shared a commit


LOOP_SCRIPT = r"""
import asyncio, fcntl, json, os, sqlite3, sys, django
django.setup()
from django.db import connection
from bugnet_server.ingest.writer import LoopWriter, Writer
from bugnet_server.sqlite.base import write_lock_path

TABLE = sys.argv[1]
with connection.cursor() as cursor:
    cursor.execute(f"CREATE TABLE {TABLE} (n INTEGER PRIMARY KEY)")
connection.close()

REQUESTS, BAD = 600, 7

def writes(mark):  # "%s" for the thread's Django cursor, "?" for the loop's sqlite3 one
    def write(cursor, n):
        if mark == "?" and n == 3:  # the loop's connection breaks: the thread stores it
            raise sqlite3.OperationalError("disk I/O error (a test)")
        cursor.execute(f"INSERT INTO {TABLE} (n) VALUES ({mark})", [n])
        if n % 97 == BAD:
            cursor.execute(f"INSERT INTO {TABLE} (n) VALUES ({mark})", [n])  # a conflict
    return write

database = str(connection.settings_dict["NAME"])
lock_path = write_lock_path(database)
writer = LoopWriter(database, lock_path, writes("?"), Writer(writes("%s"), max_batch=64))
writer.CHECKPOINT_INTERVAL = 0.0
failures = []

async def request(n):
    await asyncio.sleep(0.001 * (n % 5))
    try:
        await writer.write(n)
    except Exception:
        failures.append(n)

async def main():
    await asyncio.gather(*(request(n) for n in range(REQUESTS // 2)))
    loop_commits = writer.commits
    # Another writer (the digest, another worker) holds the lock. Were the loop to wait for
    # it, this would hang: the lock is released only by this same loop, below.
    fd = os.open(lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held = [asyncio.ensure_future(request(n)) for n in range(REQUESTS // 2, REQUESTS)]
    done, _ = await asyncio.wait(held, timeout=0.3)
    waited_for_lock = not done
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    await asyncio.gather(*held)
    late = [asyncio.ensure_future(writer.write(REQUESTS + n)) for n in range(5)]
    await asyncio.sleep(0)
    return loop_commits, waited_for_lock

loop_commits, waited_for_lock = asyncio.run(main())
writer.stop()  # the five late ones, handed over but not yet committed
with connection.cursor() as cursor:
    cursor.execute(f"SELECT n FROM {TABLE} ORDER BY n")
    stored = [row[0] for row in cursor.fetchall()]
print(json.dumps({"loop_commits": loop_commits,
                  "waited_for_lock": waited_for_lock, "failures": sorted(failures),
                  "stored": stored, "checkpoints": writer.fallback.checkpoints}))
"""


def test_the_loop_commits_itself_and_never_waits_for_another_writer(tmp_path):
    """SQLite's ``LoopWriter``: requests that arrive together share a commit made on the loop;
    when another writer holds the lock, the requests wait in the thread while the loop goes
    on; a failing request fails alone; a broken connection hands its batch to the thread and is
    opened again; checkpoints run in the thread; stop() commits the rest."""
    env = server_env(tmp_path, f"sqlite:///{tmp_path / 'bugnet.sqlite3'}", "http://127.0.0.1:9")
    env["DJANGO_SETTINGS_MODULE"] = "bugnet_server.settings"
    table = f"writer_test_{uuid.uuid4().hex[:12]}"
    done = subprocess.run([sys.executable, "-c", LOOP_SCRIPT, table], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    total = 600
    bad = [n for n in range(total) if n % 97 == 7]
    assert result["failures"] == bad  # exactly the requests whose own writes failed
    wanted = [n for n in range(total) if n not in bad] + [total + n for n in range(5)]
    assert result["stored"] == wanted  # the rest once each, and what stop() found waiting
    assert 0 < result["loop_commits"] < total / 4  # on the loop, shared
    assert result["waited_for_lock"]  # nothing was committed while the lock was held...
    assert result["checkpoints"] >= 1  # ...and the thread checkpointed the loop's commits
