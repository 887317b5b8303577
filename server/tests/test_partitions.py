"""On PostgreSQL the events table is partitioned by day of ``received``: the migration moves
stored events into their days' partitions, the digest's inserts land in the right day, and
retention drops a day every project has let go while still deleting, row by row, what a
shorter retention no longer keeps. Each test has a database of its own."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import fresh_postgres_database, server_env

UTC = dt.timezone.utc

# Runs in ``bugnet shell``: one organization, projects from ``PROJECTS`` (slug: retention
# days), and helpers the scripts below use.
PRELUDE = """
import datetime as dt, json
from bugnet_server.digest import partitions, retention
from bugnet_server.digest.worker import run_once
from bugnet_server.ingest.models import QueuedEvent
from bugnet_server.ingest.store import compress
from bugnet_server.issues.models import Event, Issue
from bugnet_server.projects.models import Organization, Project
NOW = dt.datetime.fromisoformat(%(now)r)

def project(slug):
    org, _ = Organization.objects.get_or_create(slug="org", defaults={"name": "Org"})
    return Project.objects.get_or_create(organization=org, slug=slug, defaults={"name": slug})[0]
"""


def bugnet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "bugnet_server.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def shell(env: dict[str, str], now: dt.datetime, script: str) -> Any:
    """Run ``script`` in ``bugnet shell``; returns what it printed last, as JSON."""
    done = bugnet(env, "shell", "-c", PRELUDE % {"now": now.isoformat()} + script)
    return json.loads(done.stdout.strip().splitlines()[-1])


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        return db.execute(sql, params).fetchall()  # type: ignore[arg-type]


def where(url: str) -> dict[str, str]:
    """Each event id and the partition that holds it."""
    rows = query(url, "SELECT event_id, tableoid::regclass::text FROM issues_event")
    return dict(rows)


def day_partition(moment: dt.datetime) -> str:
    return f"issues_event_p{moment.astimezone(UTC):%Y%m%d}"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A database of this test's own and the environment of ``bugnet`` commands using it."""
    with fresh_postgres_database("bugnet_partitions") as url:
        yield url, server_env(tmp_path, url, "http://127.0.0.1:9")


def test_migration_moves_stored_events_into_their_days(database: tuple[str, dict[str, str]]):
    url, env = database
    now = dt.datetime.now(UTC)
    bugnet(env, "migrate", "issues", "0001_initial")
    ages = {f"{index + 1:032x}": days for index, days in enumerate([40, 10, 0, -10])}
    ids = shell(env, now, f"""
p = project("shop")
# The issues table as migration 0001 made it (today's model has columns added since).
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute(
        "INSERT INTO issues_issue (project_id, short_id, grouping_hash, grouping_version, title, "
        "culprit, level, metadata, status, resolved_in_release, resolved_in_next_release, "
        "first_seen, last_seen, times_seen, user_count, first_release, last_release) VALUES "
        "(%s, 1, 'h', 'v', 't', '', 'error', '{{}}', 'unresolved', '', false, %s, %s, 0, 0, '', '') "
        "RETURNING id", [p.id, NOW, NOW])
    issue_id = cursor.fetchone()[0]
for event_id, days in {ages!r}.items():
    Event.objects.create(project=p, issue_id=issue_id, event_id=event_id, timestamp=NOW,
                         received=NOW - dt.timedelta(days=days), level="error", data=b"{{}}",
                         release="shop@1")
print(json.dumps(sorted(Event.objects.values_list("id", flat=True))))
""")  # fmt: skip
    assert query(url, "SELECT relkind FROM pg_class WHERE relname = 'issues_event'") == [("r",)]

    bugnet(env, "migrate")
    assert query(url, "SELECT relkind FROM pg_class WHERE relname = 'issues_event'") == [("p",)]
    # Releases already seen are recorded, first seen with their oldest event (migration 0004).
    [(version, first_seen)] = query(url, "SELECT version, first_seen FROM issues_release")
    assert (version, first_seen) == ("shop@1", now - dt.timedelta(days=40))
    # Every day from the oldest event's through today + 3, and the default partition.
    children = {
        row[0]
        for row in query(
            url,
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'issues_event'::regclass",
        )
    }
    first = (now - dt.timedelta(days=40)).date()
    days = [first + dt.timedelta(days=n) for n in range(40 + 3 + 1)]
    assert children == {f"issues_event_p{day:%Y%m%d}" for day in days} | {"issues_event_pdefault"}
    # Every stored event moved, each into its day; the one from the future into the default.
    expected = {
        event_id: day_partition(now - dt.timedelta(days=age))
        if age >= 0
        else "issues_event_pdefault"
        for event_id, age in ages.items()
    }
    assert where(url) == expected
    assert sorted(row[0] for row in query(url, "SELECT id FROM issues_event")) == ids

    # New events still get new ids; a day's partition made later takes the default's rows of
    # that day; running it again changes nothing.
    made = shell(env, now, """
Event.objects.create(project=project("shop"), issue=Issue.objects.get(), event_id="f" * 32,
                     timestamp=NOW, received=NOW, level="error", data=b"{}")
ahead = NOW + dt.timedelta(days=9)
print(json.dumps([partitions.ensure_partitions(ahead), partitions.ensure_partitions(ahead)]))
""")  # fmt: skip
    assert made == [4, 0]
    [(new_id,)] = query(url, "SELECT id FROM issues_event WHERE event_id = %s", ("f" * 32,))
    assert new_id > max(ids)
    moved = where(url)
    assert moved[f"{4:032x}"] == day_partition(now + dt.timedelta(days=10))
    assert moved["f" * 32] == day_partition(now)
    assert query(url, "SELECT COUNT(*) FROM issues_event_pdefault") == [(0,)]


def test_retention_drops_whole_days_and_still_deletes_rows(database: tuple[str, dict[str, str]]):
    """ "long" keeps 30 days and "short" 5: the day 100 days ago goes whole, the day 10 days ago
    stays (for "long") but loses "short"'s events, today stays."""
    url, env = database
    now = dt.datetime.now(UTC)
    bugnet(env, "migrate")
    ages = {"long": [100, 10, 0], "short": [100, 10, 0]}
    shell(env, now, f"""
number = 0
for slug, days in {ages!r}.items():
    p = project(slug)
    p.retention_days = 30 if slug == "long" else 5
    p.save()
    for age in days:
        number += 1
        received = (NOW - dt.timedelta(days=age)).timestamp()
        body = json.dumps({{"message": "bug in checkout", "level": "error"}}).encode()
        QueuedEvent.objects.create(project=p, event_id=f"{{number:032x}}", received_at=received,
                                   payload=compress(body))
while run_once():
    pass
print(json.dumps(None))
""")  # fmt: skip
    old, recent = now - dt.timedelta(days=100), now - dt.timedelta(days=10)
    # The digest inserted them where they belong: days without a partition yet go to the
    # default partition, until their partitions are made.
    placed = where(url)
    assert sorted(placed.values()) == sorted(
        ["issues_event_pdefault"] * 4 + [day_partition(now)] * 2
    )
    made = shell(env, now, """
print(json.dumps([partitions.ensure_partitions(NOW - dt.timedelta(days=age)) for age in (100, 10)]))
""")  # fmt: skip
    assert made == [4, 4]
    placed = where(url)
    assert sorted(placed.values()) == sorted(
        [day_partition(old)] * 2 + [day_partition(recent)] * 2 + [day_partition(now)] * 2
    )

    applied = bugnet(env, "retention")
    assert applied.stdout.strip() == "removed 3 events"  # two with their day, one row
    assert query(url, "SELECT to_regclass(%s) IS NULL", (day_partition(old),)) == [(True,)]
    assert query(url, "SELECT to_regclass(%s) IS NULL", (day_partition(recent),)) == [(False,)]
    kept = query(
        url,
        "SELECT p.slug, e.tableoid::regclass::text FROM issues_event e "
        "JOIN projects_project p ON p.id = e.project_id ORDER BY p.slug, e.received",
    )
    assert kept == [
        ("long", day_partition(recent)),
        ("long", day_partition(now)),
        ("short", day_partition(now)),
    ]
    # The issues keep their counts; only stored events go.
    assert query(url, "SELECT SUM(times_seen) FROM issues_issue") == [(6,)]
