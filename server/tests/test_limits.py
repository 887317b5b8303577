"""Per-key rate limits, retention, per-category counts and the issue states over real HTTP."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import time
from typing import Any

from conftest import Server
from test_api import Api, last_line
from test_ingest import post


def new_project(server: Server) -> tuple[str, str, str]:
    name = f"Limits {time.monotonic_ns()}"
    dsn = last_line(server.bugnet("project", "create", name))
    key = dsn.split("//", 1)[1].split("@", 1)[0]
    return name.lower().replace(" ", "-"), dsn, key


def envelope(event_id: str, message: str = "hello", extra_items: str = "") -> bytes:
    header = json.dumps({"event_id": event_id})
    event = json.dumps({"event_id": event_id, "message": message, "level": "error"})
    return f'{header}\n{{"type":"event"}}\n{event}\n{extra_items}'.encode()


def send(server: Server, project_id: str, key: str, body: bytes) -> tuple[int, dict[str, str], Any]:
    headers = {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7",
               "Content-Encoding": "gzip"}  # fmt: skip
    return post(server, f"/api/{project_id}/envelope/", gzip.compress(body), headers)


def wait_digested(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.query("SELECT COUNT(*) FROM ingest_queuedevent")[0][0] == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the digest did not drain the queue")


def early_in_a_minute(seconds_needed: float = 20) -> None:
    """Limits count in fixed minute windows: wait, if need be, until the sends to come cannot
    straddle two of them (a slow machine took over 20 s once)."""
    into = time.time() % 60
    if into > 60 - seconds_needed:
        time.sleep(60 - into + 0.1)


def test_a_key_over_its_rate_limit_gets_429_with_retry_headers(server):
    slug, dsn, key = new_project(server)
    assert server.bugnet("project", "set", slug, "--rate-limit", "5").returncode == 0
    project_id = dsn.rsplit("/", 1)[1]
    early_in_a_minute()
    statuses = []
    last: dict[str, str] = {}
    for index in range(8):  # the server has two worker processes: the count must be shared
        status, headers, _ = send(server, project_id, key, envelope(f"{index:032x}"))
        statuses.append(status)
        last = headers if status == 429 else last
    assert statuses.count(200) == 5
    assert statuses.count(429) == 3
    assert 1 <= int(last["retry-after"]) <= 60
    assert last["x-sentry-rate-limits"].endswith(":key:key_quota")
    assert int(last["x-sentry-rate-limits"].split(":")[0]) == int(last["retry-after"])


def stats(server: Server, slug: str) -> dict[tuple[str, str, str | None], int]:
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    return {(r["category"], r["outcome"], r["reason"]): r["quantity"]
            for r in api.get(f"/api/0/projects/default/{slug}/stats/")}  # fmt: skip


def test_sessions_and_client_reports_are_counted_by_category(server):
    slug, dsn, key = new_project(server)
    project_id = dsn.rsplit("/", 1)[1]
    extra = (
        '{"type":"session"}\n{"sid":"a","status":"ok","attrs":{"release":"r"}}\n'
        '{"type":"client_report"}\n{"discarded_events":[]}\n'
        '{"type":"transaction"}\n{"type":"transaction","spans":[]}\n'
    )
    assert send(server, project_id, key, envelope("1" * 32, extra_items=extra))[0] == 200
    assert stats(server, slug) == {
        ("error", "accepted", None): 1,
        ("session", "accepted", None): 1,
        ("internal", "accepted", None): 1,
        ("transaction", "accepted", None): 1,
    }


def test_client_reports_count_what_the_sdk_discarded_by_category_and_reason(server, fixtures_dir):
    """What a client report says the SDK dropped becomes client_discard outcomes, as Relay
    counts them; a malformed one is counted invalid without costing the event beside it."""
    slug, dsn, key = new_project(server)
    project_id = dsn.rsplit("/", 1)[1]
    recorded = (fixtures_dir / "python" / "flask-client-report.envelope").read_bytes()
    assert send(server, project_id, key, recorded)[0] == 200  # event_processor, error, 1
    report = json.dumps(
        {
            "timestamp": "2026-11-21T13:57:01Z",
            "discarded_events": [
                {"reason": "before_send", "category": "error", "quantity": 3},
                {"reason": "queue_overflow", "category": "transaction", "quantity": 7},
                {"reason": "sample_rate", "category": "span", "quantity": 0},
            ],
            "rate_limited_events": [{"reason": "x", "category": "error", "quantity": 99}],
        }
    )
    two = f'{{"type":"client_report"}}\n{report}\n' * 2
    assert send(server, project_id, key, envelope("2" * 32, extra_items=two))[0] == 200
    malformed = [
        '{"discarded_events":[{"reason":"before_send","category":"error","quantity":-1}]}',
        '{"discarded_events":[{"reason":"before_send","category":"error","quantity":1.5}]}',
        '{"discarded_events":[{"reason":"<script>","category":"error","quantity":1}]}',
        '{"discarded_events":[{"reason":"before_send","category":"ERROR","quantity":1}]}',
        '{"discarded_events":{"reason":"before_send"}}',
        '["not", "a", "report"]',
        '{"discarded_events":[',
    ]
    for index, body in enumerate(malformed):
        items = f'{{"type":"client_report"}}\n{body}\n'
        answer = send(server, project_id, key, envelope(f"{index + 10:032x}", extra_items=items))
        assert answer[0] == 200, (body, answer)

    # Each distinct (category, reason) is a row: one envelope may add 100 at most.
    def report(prefix: str) -> str:
        entries = [{"reason": f"{prefix}{index}", "category": "log", "quantity": 1}
                   for index in range(60)]  # fmt: skip
        return f'{{"type":"client_report"}}\n{json.dumps({"discarded_events": entries})}\n'

    items = report("r") + report("s")
    assert send(server, project_id, key, envelope("3" * 32, extra_items=items))[0] == 200
    assert stats(server, slug) == {
        ("error", "accepted", None): 2 + len(malformed),
        ("internal", "accepted", None): 4,
        ("internal", "invalid", "invalid_client_report"): len(malformed) + 1,
        ("error", "client_discard", "event_processor"): 1,
        ("error", "client_discard", "before_send"): 6,
        ("transaction", "client_discard", "queue_overflow"): 14,
        **{("log", "client_discard", f"r{index}"): 1 for index in range(60)},
    }
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    path = f"/api/0/projects/default/{slug}/stats/"
    assert api.get(path + "?days=1000000000") == api.get(path + "?days=-5") == api.get(path)
    wait_digested(server)
    events = server.query(
        "SELECT COUNT(*) FROM issues_event e JOIN projects_project p ON p.id = e.project_id "
        "WHERE p.slug = %s", (slug,))  # fmt: skip
    assert events == [(2 + len(malformed),)]


def test_retention_keeps_the_newest_events_and_the_issue_counts(server):
    slug, dsn, key = new_project(server)
    project_id = dsn.rsplit("/", 1)[1]
    for index in range(5):
        assert send(server, project_id, key, envelope(f"{index + 100:032x}", "same bug"))[0] == 200
    wait_digested(server)
    assert server.bugnet("project", "set", slug, "--retention-max-events", "2").returncode == 0
    applied = server.bugnet("retention")  # the worker's own pass may come first: either is fine
    assert applied.returncode == 0
    assert applied.stdout.startswith("removed ")
    kept = server.query(
        "SELECT e.event_id FROM issues_event e JOIN projects_project p ON p.id = e.project_id "
        "WHERE p.slug = %s ORDER BY e.event_id", (slug,))  # fmt: skip
    assert [row[0] for row in kept] == [f"{103:032x}", f"{104:032x}"]
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    [issue] = api.get(f"/api/0/projects/default/{slug}/issues/")
    assert issue["count"] == "5"


SCRIPT = """
import sys, bugnet
bugnet.init(sys.argv[1], release=sys.argv[2], spool_dir=None)
def checkout():
    raise RuntimeError("card declined")
for _ in range(int(sys.argv[3])):
    try:
        checkout()
    except RuntimeError:
        bugnet.capture_exception()
bugnet.flush(10)
"""


def report(dsn: str, release: str, count: int = 1) -> None:
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), dsn, release, str(count)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr


def wait_status(api: Api, issue_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        issue: dict[str, Any] = api.get(f"/api/0/issues/{issue_id}/")
        if issue["status"] == status or time.monotonic() > deadline:
            return issue
        time.sleep(0.2)


def test_over_the_limit_only_the_event_is_dropped_and_the_rest_of_the_envelope_is_kept(server):
    """Sessions and client reports are never rate limited (§3.4): an envelope whose event is
    over the key's limit still has them stored, with a 200 that states the limit."""
    slug, dsn, key = new_project(server)
    assert server.bugnet("project", "set", slug, "--rate-limit", "1").returncode == 0
    project_id = dsn.rsplit("/", 1)[1]
    extra = ('{"type":"client_report"}\n{"timestamp":1,"discarded_events":[]}\n'
             '{"type":"session"}\n{"sid":"s","status":"ok","attrs":{"release":"r"}}\n'
             '{"type":"attachment","length":3}\nabc\n')  # fmt: skip
    early_in_a_minute()
    answers = [send(server, project_id, key, envelope(f"{index + 800:032x}", extra_items=extra))
               for index in range(3)]  # fmt: skip
    # An envelope with nothing but a limited event is refused outright.
    assert send(server, project_id, key, envelope(f"{900:032x}"))[0] == 429
    assert [(status, body) for status, _headers, body in answers] == [
        (200, {"id": f"{800:032x}"}), (200, {}), (200, {})
    ]  # fmt: skip
    assert "x-sentry-rate-limits" not in answers[0][1]
    for _status, headers, _body in answers[1:]:
        seconds, categories, *_ = headers["x-sentry-rate-limits"].split(":")
        assert 1 <= int(seconds) <= 60
        assert categories == "error;default;security"
    assert stats(server, slug) == {
        ("error", "accepted", None): 1, ("error", "rate_limited", "key_quota"): 3,
        ("internal", "accepted", None): 3, ("session", "accepted", None): 3,
        ("attachment", "accepted", None): 3, ("attachment", "rate_limited", "key_quota"): 6,
    }  # fmt: skip


def test_one_projects_retention_beyond_the_calendar_stops_no_other_project(server):
    forever, _dsn, _key = new_project(server)
    huge = server.bugnet("project", "set", forever, "--retention-days", "2147483647")
    assert huge.returncode == 0, huge.stdout + huge.stderr
    slug, dsn, key = new_project(server)
    project_id = dsn.rsplit("/", 1)[1]
    for index in range(3):
        assert send(server, project_id, key, envelope(f"{index + 700:032x}", "kept once"))[0] == 200
    wait_digested(server)
    assert server.bugnet("project", "set", slug, "--retention-max-events", "1").returncode == 0
    applied = server.bugnet("retention")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    kept = server.query(
        "SELECT e.event_id FROM issues_event e JOIN projects_project p ON p.id = e.project_id "
        "WHERE p.slug = %s", (slug,))  # fmt: skip
    assert [row[0] for row in kept] == [f"{702:032x}"]


def test_resolved_in_next_release_reopens_only_for_a_newer_release(server):
    slug, dsn, _key = new_project(server)
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    report(dsn, "shop@2.0")
    wait_digested(server)
    [issue] = api.get(f"/api/0/projects/default/{slug}/issues/")
    body = {"status": "resolved", "statusDetails": {"inNextRelease": True}}
    assert api.call("PUT", f"/api/0/issues/{issue['id']}/", body)[0] == 200
    report(dsn, "shop@2.0")  # the release it was resolved in: the fix is not out yet
    wait_digested(server)
    assert api.get(f"/api/0/issues/{issue['id']}/")["status"] == "resolved"
    report(dsn, "shop@2.1")  # a newer release still fails: a regression
    assert wait_status(api, issue["id"], "unresolved")["status"] == "unresolved"


def test_ignored_until_n_more_events_comes_back(server):
    slug, dsn, _key = new_project(server)
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    report(dsn, "shop@3.0")
    wait_digested(server)
    [issue] = api.get(f"/api/0/projects/default/{slug}/issues/")
    body = {"status": "ignored", "statusDetails": {"ignoreCount": 3}}
    status, answer, _ = api.call("PUT", f"/api/0/issues/{issue['id']}/", body)
    assert (status, answer["status"]) == (200, "ignored")
    assert (
        api.get(f"/api/0/projects/default/{slug}/issues/?query=is:ignored")[0]["id"] == issue["id"]
    )
    report(dsn, "shop@3.0", count=2)
    wait_digested(server)
    assert api.get(f"/api/0/issues/{issue['id']}/")["status"] == "ignored"
    report(dsn, "shop@3.0", count=1)
    assert wait_status(api, issue["id"], "unresolved")["count"] == "4"


def test_counts_are_appended_per_request_and_compacted_without_changing_totals(server):
    slug, dsn, key = new_project(server)
    project_id = dsn.rsplit("/", 1)[1]
    session = '{"type":"session"}\n{"sid":"s","status":"ok","attrs":{"release":"r"}}\n'
    for index in range(5):
        body = envelope(f"{index + 500:032x}", extra_items=session)
        assert send(server, project_id, key, body)[0] == 200
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    path = f"/api/0/projects/default/{slug}/stats/"
    before = api.get(path)
    compacted = server.bugnet(
        "shell", "-c",
        "from bugnet_server.digest.compaction import compact_outcomes; print(compact_outcomes())",
    )  # fmt: skip
    assert compacted.returncode == 0, compacted.stderr
    rows = server.query(
        "SELECT COUNT(*) FROM projects_outcome o JOIN projects_project p ON p.id = o.project_id "
        "WHERE p.slug = %s", (slug,))  # fmt: skip
    assert rows == [(2,)]  # one row per (day, category, outcome)
    assert api.get(path) == before
    assert {(r["category"], r["quantity"]) for r in before} == {("error", 5), ("session", 5)}
