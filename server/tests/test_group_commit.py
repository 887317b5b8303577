"""Group commit on SQLite (``ingest/group_commit.py``): many request threads, few commits,
every write committed once, one failing request spoils no other.

Runs in a child interpreter configured like the server (Django settings from the environment),
as every other server test runs against a real process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import server_env

SCRIPT = r"""
import json, threading, django
django.setup()
from django.db import connection, transaction
from bugnet_server.ingest.group_commit import GroupCommit

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS gc_test (n INTEGER PRIMARY KEY)")

group = GroupCommit(max_batch=8)
commits = 0
original = group._commit

def counting(batch):
    global commits
    commits += 1
    original(batch)

group._commit = counting
THREADS, EACH, BAD = 24, 40, 7
failures, start = [], threading.Barrier(THREADS)

def request(thread):
    start.wait()
    for i in range(EACH):
        n = thread * EACH + i

        def work(n=n):
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO gc_test (n) VALUES (%s)", [n])
                if n % 97 == BAD:
                    cursor.execute("INSERT INTO gc_test (n) VALUES (%s)", [n])  # a conflict

        try:
            group.run(work)
        except Exception:
            failures.append(n)

threads = [threading.Thread(target=request, args=(t,)) for t in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with connection.cursor() as cursor:
    cursor.execute("SELECT n FROM gc_test")
    stored = sorted(row[0] for row in cursor.fetchall())
print(json.dumps({"commits": commits, "failures": sorted(failures), "stored": stored}))
"""


def test_concurrent_requests_share_commits_and_fail_alone(tmp_path: Path) -> None:
    env = server_env(tmp_path, f"sqlite:///{tmp_path / 'bugnet.sqlite3'}", "http://127.0.0.1:9")
    env["DJANGO_SETTINGS_MODULE"] = "bugnet_server.settings"
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    total = 24 * 40
    bad = [n for n in range(total) if n % 97 == 7]
    assert result["failures"] == bad  # exactly the requests whose own writes failed
    assert result["stored"] == [n for n in range(total) if n not in bad]  # the rest, once each
    assert result["commits"] < total  # requests that arrived together shared a commit
