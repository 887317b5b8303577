"""Issue states over real HTTP: what reopens a resolved issue and what does not, and which
releases an issue records as its first and last."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import Server, undigested_server
from test_api import Api, last_line
from test_limits import new_project, send, wait_digested


def event(message: str, release: str = "", seconds_ago: float = 0.0) -> tuple[str, bytes]:
    """An envelope of one message event (all of one message group into one issue)."""
    event_id = uuid.uuid4().hex
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)
    payload: dict[str, Any] = {"event_id": event_id, "message": message, "level": "error",
                               "timestamp": when.isoformat()}  # fmt: skip
    if release:
        payload["release"] = release
    body = f'{{"event_id":"{event_id}"}}\n{{"type":"event"}}\n{json.dumps(payload)}\n'
    return event_id, body.encode()


def report(server: Server, dsn: str, key: str, message: str, release: str = "",
           seconds_ago: float = 0.0) -> None:  # fmt: skip
    _event_id, body = event(message, release, seconds_ago)
    assert send(server, dsn.rsplit("/", 1)[1], key, body)[0] == 200


def only_issue(api: Api, slug: str) -> dict[str, Any]:
    [issue] = api.get(f"/api/0/projects/default/{slug}/issues/?query=")
    return api.get(f"/api/0/issues/{issue['id']}/")  # type: ignore[no-any-return]


def test_resolved_in_next_release_ignores_older_releases_and_reopens_for_newer(server):
    slug, dsn, key = new_project(server)
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    report(server, dsn, key, "cart total is negative", "shop@1.0", seconds_ago=60)
    wait_digested(server)
    report(server, dsn, key, "cart total is negative", "shop@2.0")
    wait_digested(server)
    issue = only_issue(api, slug)
    assert (issue["firstRelease"], issue["lastRelease"]) == ("shop@1.0", "shop@2.0")
    body = {"status": "resolved", "statusDetails": {"inNextRelease": True}}
    assert api.call("PUT", f"/api/0/issues/{issue['id']}/", body)[0] == 200

    # 1.0 is still deployed somewhere: older than the release it was resolved in.
    report(server, dsn, key, "cart total is negative", "shop@1.0")
    report(server, dsn, key, "cart total is negative", "shop@2.0")  # the fix is not out yet
    report(server, dsn, key, "cart total is negative")  # no release: says nothing
    wait_digested(server)
    assert only_issue(api, slug)["status"] == "resolved"

    report(server, dsn, key, "cart total is negative", "shop@2.1")
    wait_digested(server)
    assert only_issue(api, slug)["status"] == "unresolved"
    [(kinds,)] = server.query(
        "SELECT COUNT(*) FROM issues_issueactivity a JOIN issues_issue i ON i.id = a.issue_id "
        "WHERE i.id = %s AND a.kind = 'regression'",
        (int(issue["id"]),),
    )
    assert kinds == 1


def test_resolving_in_next_release_needs_a_release(server):
    slug, dsn, key = new_project(server)
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    report(server, dsn, key, "no release here")
    wait_digested(server)
    issue = only_issue(api, slug)
    body = {"status": "resolved", "statusDetails": {"inNextRelease": True}}
    status, answer, _ = api.call("PUT", f"/api/0/issues/{issue['id']}/", body)
    assert status == 400
    assert "release" in answer["detail"]
    # A plain resolve, then any new event reopens it.
    assert api.call("PUT", f"/api/0/issues/{issue['id']}/", {"status": "resolved"})[0] == 200
    report(server, dsn, key, "no release here")
    wait_digested(server)
    assert only_issue(api, slug)["status"] == "unresolved"


def test_first_and_last_release_follow_the_events_times_not_their_arrival(server):
    slug, dsn, key = new_project(server)
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    report(server, dsn, key, "stock went missing", "shop@2.0", seconds_ago=10)
    report(server, dsn, key, "stock went missing", "shop@1.0", seconds_ago=100)  # arrives late
    report(server, dsn, key, "stock went missing", seconds_ago=5)  # newest, without a release
    wait_digested(server)
    issue = only_issue(api, slug)
    assert (issue["firstRelease"], issue["lastRelease"]) == ("shop@1.0", "shop@2.0")


@pytest.mark.parametrize(
    ("details", "says"),
    [
        ({"ignoreCount": -100}, "ignoreCount"),
        ({"ignoreCount": 0}, "ignoreCount"),
        ({"ignoreDuration": 10**12}, "ignoreDuration"),
        ({"ignoreDuration": 0}, "ignoreDuration"),
    ],
)
def test_ignore_details_out_of_range_are_refused(server, details, says):
    slug, dsn, key = new_project(server)
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    report(server, dsn, key, "ignore me")
    wait_digested(server)
    issue = only_issue(api, slug)
    body = {"status": "ignored", "statusDetails": details}
    status, answer, _ = api.call("PUT", f"/api/0/issues/{issue['id']}/", body)
    assert 400 <= status < 500, answer
    assert says in json.dumps(answer)
    assert only_issue(api, slug)["status"] == "unresolved"


@pytest.mark.parametrize("cursor", ["0:\u00b2:0", "0:99999999999999999999999:0", "x", "0:-1:0"])
def test_odd_cursors_are_not_server_errors(server, cursor):
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    path = f"/api/0/projects/default/default/issues/?cursor={quote(cursor)}"
    status, answer, _ = api.call("GET", path)
    assert status == 200, answer


@pytest.fixture
def undigested(tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    with undigested_server(tmp_path, f"sqlite:///{tmp_path / 'bugnet.sqlite3'}") as running:
        yield running


def digest_all(server: Server, env: dict[str, str]) -> None:
    worker = subprocess.Popen([sys.executable, "-m", "bugnet_server.cli", "digest"], env=env)
    try:
        wait_digested(server, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0


def test_events_queued_before_the_resolve_do_not_reopen_it(undigested):
    server, env = undigested
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    report(server, server.dsn, server.public_key, "payment timed out")
    digest_all(server, env)
    issue = only_issue(api, "default")
    # Received while the issue was open, digested after it was resolved: a backlog, not news.
    report(server, server.dsn, server.public_key, "payment timed out")
    time.sleep(0.05)
    assert api.call("PUT", f"/api/0/issues/{issue['id']}/", {"status": "resolved"})[0] == 200
    digest_all(server, env)
    issue = only_issue(api, "default")
    assert (issue["status"], issue["count"]) == ("resolved", "2")
    report(server, server.dsn, server.public_key, "payment timed out")
    digest_all(server, env)
    assert only_issue(api, "default")["status"] == "unresolved"
