"""Alerts end to end: a real ``bugnet serve`` (SQLite and PostgreSQL) with email going to a
real SMTP server (aiosmtpd) and webhooks to a real HTTP server, events sent over HTTP as an SDK
sends them.

One contract suite runs for every channel (email, generic webhook, Slack, Discord): a new issue
is one alert carrying its facts, whatever the event says cannot reach the receiver as markup or
a mention, a regression is one alert, a spike alerts once when crossed, a receiver that was down
gets the alert once it is back, and a test alert arrives.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import pytest
from alert_receivers import HttpSink, Message, SmtpSink, hmac_ok, wait_for
from conftest import Server, free_port, fresh_postgres_database, start_server, stop_server
from test_api import Api, last_line

KINDS = ["email", "webhook", "slack", "discord"]
FORMAT = {"webhook": "generic", "slack": "slack", "discord": "discord"}
HOSTILE = "<script>alert(1)</script> <!channel> @everyone [login](http://evil.example/)"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def alert_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, smtp: SmtpSink
) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp(f"alerts-{request.param}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            database_url = f"sqlite:///{data_dir / 'bugnet.sqlite3'}"
        else:  # a database of its own: every project here starts with the default rule
            database_url = stack.enter_context(fresh_postgres_database("bugnet_alerts"))
        email_url = f"smtp://127.0.0.1:{smtp.port}"
        running = start_server(data_dir, database_url, BUGNET_EMAIL_URL=email_url)
        yield running
        assert stop_server(running) == 0


@pytest.fixture(scope="module")
def api(alert_server: Server) -> Api:
    return Api(
        alert_server, last_line(alert_server.bugnet("token", "create", "admin@bugnet.local"))
    )


class Channel:
    """A project with one alert rule sending to one channel of ``kind``, and its receiver."""

    def __init__(self, server: Server, smtp: SmtpSink, kind: str, on: str, *extra: str) -> None:
        self.server, self.kind = server, kind
        self.slug = f"{kind}-{on.replace(',', '-')}-{uuid.uuid4().hex[:6]}"
        self.dsn = last_line(server.bugnet("project", "create", self.slug))
        self.address = f"{self.slug}@example.com"
        self.http = HttpSink(free_port()) if kind != "email" else None
        self.smtp = smtp
        if self.http is not None:
            self.http.start()
            target = ["--webhook", self.http.url, "--format", FORMAT[kind]]
        else:
            target = ["--email", self.address]
        added = server.bugnet("alert", "add", self.slug, *target, "--on", on, *extra)
        assert added.returncode == 0, added.stdout + added.stderr
        self.output = added.stdout
        self.rule_id = int(added.stdout.split()[2])
        self.secret = last_line(added) if kind == "webhook" else ""

    def messages(self, marker: str = "") -> list[Message]:
        if self.http is not None:
            found = self.http.received(self.kind)
        else:
            found = [m for m in self.smtp.received() if self.address in m.recipients]
        return [m for m in found if marker in m.text]

    def down(self) -> None:
        if self.http is not None:
            self.http.stop()
        else:
            self.smtp.stop()

    def up(self) -> None:
        if self.http is not None:
            self.http.start()
        else:
            self.smtp.start()

    def close(self) -> None:
        if self.http is not None:
            self.http.stop()


@pytest.fixture
def channel_factory(alert_server: Server, smtp: SmtpSink) -> Iterator[Any]:
    made: list[Channel] = []

    def make(kind: str, on: str = "new,regression", *extra: str) -> Channel:
        channel = Channel(alert_server, smtp, kind, on, *extra)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        channel.close()


def event(function: str, value: str = "no such order", **fields: Any) -> dict[str, Any]:
    """An error event whose issue is keyed by ``function`` (its in-app frame)."""
    frame = {"filename": "app/orders.py", "abs_path": "/srv/app/orders.py", "module": "app.orders",
             "function": function, "lineno": 42, "context_line": "    return orders[order_id]",
             "in_app": True}  # fmt: skip
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "release": "shop@1.4.2",
        "environment": "production",
        "exception": {
            "values": [{"type": "KeyError", "value": value, "stacktrace": {"frames": [frame]}}]
        },
    } | fields


class Sender:
    """Posts envelopes to the server as an SDK does, over one kept-alive connection."""

    def __init__(self, server: Server, dsn: str) -> None:
        parts = urlsplit(dsn)
        self.key, self.path = parts.username, f"/api{parts.path}/envelope/"
        self.host, self.port = urlsplit(server.url).hostname, urlsplit(server.url).port
        self.connection = http.client.HTTPConnection(self.host or "", self.port, timeout=30)

    def send(self, payload: dict[str, Any]) -> None:
        body = b"\n".join([json.dumps({"event_id": payload["event_id"]}).encode(),
                           json.dumps({"type": "event"}).encode(),
                           json.dumps(payload).encode()])  # fmt: skip
        auth = f"Sentry sentry_version=7, sentry_key={self.key}, sentry_client=alert-test/1"
        self.connection.request("POST", self.path, body, {"X-Sentry-Auth": auth})
        response = self.connection.getresponse()
        assert response.status == 200, (response.status, response.read())
        response.read()


def send(server: Server, dsn: str, *events: dict[str, Any]) -> None:
    sender = Sender(server, dsn)
    for payload in events:
        sender.send(payload)
    sender.connection.close()


def issue_of(api: Api, channel: Channel, function: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        issues = api.get(f"/api/0/projects/default/{channel.slug}/issues/?query=")
        return next((i for i in issues if function in i["culprit"]), None)

    found: dict[str, Any] = wait_for(find, 20, f"the issue of {function}")
    return found


def deliveries(server: Server, rule_id: int) -> list[tuple[Any, ...]]:
    return server.query(
        "SELECT d.status, d.attempts, d.last_error, a.action FROM alerts_delivery d "
        "JOIN alerts_alert a ON a.id = d.alert_id WHERE a.rule_id = %s ORDER BY d.id",
        (rule_id,),
    )


# --- the contract every channel keeps ------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_issue_is_one_alert_with_its_facts(kind, channel_factory, alert_server, api):
    channel = channel_factory(kind)
    function = f"load_order_{uuid.uuid4().hex[:8]}"
    send(alert_server, channel.dsn, event(function, HOSTILE))
    issue = issue_of(api, channel, function)
    (message,) = wait_for(lambda: channel.messages(function), 20, f"the {kind} alert")
    for fact in ("New issue", issue["shortId"], issue["title"], f"app.orders in {function}",
                 "error", "production", "shop@1.4.2", f"app/orders.py:42 in {function}"):  # fmt: skip
        assert fact in message.text, (fact, message.text)
    assert message.link == issue["permalink"]
    assert_harmless(message)
    # More events of the same issue are no new issue: still one alert.
    send(alert_server, channel.dsn, *(event(function, HOSTILE) for _ in range(5)))
    wait_for(lambda: int(api.get(f"/api/0/issues/{issue['id']}/")["count"]) == 6, 20, "6 events")
    time.sleep(1.5)  # the worker polls every 0.25 s: time enough for a wrong second alert
    assert len(channel.messages(function)) == 1
    assert [row[0] for row in deliveries(alert_server, channel.rule_id)] == ["sent"]
    if kind == "webhook":
        assert hmac_ok(channel.secret, message)
        assert not hmac_ok("not-the-secret", message)
        assert message.raw["action"] == "new"
        assert message.raw["issue"]["count"] == 1
        assert message.raw["event"]["eventID"]
        assert message.raw["project"]["slug"] == channel.slug


def assert_harmless(message: Message) -> None:
    """What the event said reaches the receiver as text, never as its markup."""
    if message.kind == "email":
        markup = message.body.decode()
        assert "<script>" not in markup
        assert "&lt;script&gt;" in markup
        assert message.raw["Content-Type"].startswith("multipart/alternative")
    elif message.kind == "slack":
        raw = json.dumps(message.raw)
        assert "<!channel>" not in raw
        assert "<script>" not in raw
        assert "&lt;!channel&gt;" in raw
        # The only <...|...> link is the issue's own.
        assert raw.count("<http") == 1
    elif message.kind == "discord":
        assert message.raw["allowed_mentions"] == {"parse": []}
        description = message.raw["embeds"][0]["description"]
        for line in description.splitlines():  # stranger's text sits inside code spans
            assert line.startswith("`")
            assert line.endswith("`")
            assert line.count("`") == 2
    else:
        assert "<script>" in message.raw["issue"]["title"]  # JSON carries the data as it was


@pytest.mark.parametrize("kind", KINDS)
def test_a_regression_is_one_alert(kind, channel_factory, alert_server, api):
    channel = channel_factory(kind)
    function = f"refund_{uuid.uuid4().hex[:8]}"
    send(alert_server, channel.dsn, event(function))
    issue = issue_of(api, channel, function)
    wait_for(lambda: channel.messages(function), 20, "the new-issue alert")
    status, _, _ = api.call("PUT", f"/api/0/issues/{issue['id']}/", {"status": "resolved"})
    assert status == 200
    send(alert_server, channel.dsn, *(event(function, release="shop@1.5.0") for _ in range(3)))
    regression = wait_for(
        lambda: [m for m in channel.messages(function) if "Regression" in m.text], 20, "regression"
    )
    time.sleep(1.5)
    assert len(regression) == 1
    assert "shop@1.5.0" in regression[0].text
    assert len(channel.messages(function)) == 2  # the new issue, then the regression


@pytest.mark.parametrize("kind", KINDS)
def test_a_spike_alerts_once_when_crossed(kind, channel_factory, alert_server, api):
    channel = channel_factory(kind, "spike", "--spike", "5/10")
    function = f"checkout_{uuid.uuid4().hex[:8]}"
    send(alert_server, channel.dsn, *(event(function) for _ in range(5)))
    issue = issue_of(api, channel, function)
    wait_for(lambda: int(api.get(f"/api/0/issues/{issue['id']}/")["count"]) == 5, 20, "5 events")
    time.sleep(2.5)  # a spike check passes: 5 is not more than 5
    assert channel.messages(function) == []
    send(alert_server, channel.dsn, event(function))  # the 6th: crossed
    (message,) = wait_for(lambda: channel.messages(function), 20, "the spike alert")
    assert "Spike" in message.text
    assert "6 events in 10 minutes" in message.text
    send(alert_server, channel.dsn, *(event(function) for _ in range(10)))
    wait_for(lambda: int(api.get(f"/api/0/issues/{issue['id']}/")["count"]) == 16, 20, "16")
    time.sleep(2.5)
    assert len(channel.messages(function)) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_receiver_that_was_down_gets_the_alert(kind, channel_factory, alert_server, api):
    channel = channel_factory(kind)
    function = f"ship_{uuid.uuid4().hex[:8]}"
    channel.down()
    try:
        send(alert_server, channel.dsn, event(function))
        first = wait_for(
            lambda: [r for r in deliveries(alert_server, channel.rule_id) if r[1] >= 1],
            20, "a failed attempt",
        )  # fmt: skip
        assert first[0][0] == "pending", first  # failed, and will be tried again
        assert first[0][2], first  # saying why
    finally:
        channel.up()
    (message,) = wait_for(lambda: channel.messages(function), 30, "the retried alert")
    assert "New issue" in message.text
    _status, attempts, error, _ = wait_for(
        lambda: [r for r in deliveries(alert_server, channel.rule_id) if r[0] == "sent"], 10
    )[0]
    assert attempts >= 2
    assert error == ""


@pytest.mark.parametrize("kind", KINDS)
def test_a_test_alert_reaches_the_channel(kind, channel_factory, alert_server):
    channel = channel_factory(kind)
    result = alert_server.bugnet("alert", "test", str(channel.rule_id))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("sent: ")
    found = wait_for(lambda: channel.messages("Test alert"), 10, "the test alert")
    assert len(found) == 1, [(m.recipients, m.text) for m in found]
    (message,) = found
    assert "TEST" in message.text


# --- rules, the CLI and the rest ------------------------------------------------------------


def test_a_new_project_emails_its_members_on_a_new_issue(alert_server, smtp, api):
    slug = f"members-{uuid.uuid4().hex[:6]}"
    dsn = last_line(alert_server.bugnet("project", "create", slug))
    listing = alert_server.bugnet("alert", "list", slug)
    assert "New issues and regressions" in listing.stdout
    assert "the project's members" in listing.stdout
    function = f"members_{uuid.uuid4().hex[:8]}"
    send(alert_server, dsn, event(function))

    def mails() -> list[Message]:
        return [m for m in smtp.received() if function in m.text]

    (mail,) = wait_for(mails, 20, "the members' mail")
    assert mail.recipients == ["admin@bugnet.local"]
    assert mail.raw["Auto-Submitted"] == "auto-generated"
    assert "Open the issue: http" in mail.text
    listing = alert_server.bugnet("alert", "list", slug)
    assert "sent" in listing.stdout
    assert "recent deliveries" in listing.stdout


def test_level_and_environment_filters(channel_factory, alert_server, api):
    channel = channel_factory("webhook", "new", "--level", "error", "--environment", "production")
    quiet = f"quiet_{uuid.uuid4().hex[:8]}"
    staging = f"staging_{uuid.uuid4().hex[:8]}"
    loud = f"loud_{uuid.uuid4().hex[:8]}"
    send(alert_server, channel.dsn, event(quiet, level="warning"),
         event(staging, environment="staging"), event(loud))  # fmt: skip
    wait_for(lambda: channel.messages(loud), 20, "the matching alert")
    issue_of(api, channel, quiet)
    issue_of(api, channel, staging)
    time.sleep(1.0)
    assert channel.messages(quiet) == []
    assert channel.messages(staging) == []


def test_a_storm_of_events_for_one_issue_is_one_alert(channel_factory, alert_server, api):
    channel = channel_factory("webhook", "new,regression,spike", "--spike", "100/10")
    function = f"storm_{uuid.uuid4().hex[:8]}"
    total, threads = 10_000, 8

    def pump() -> None:
        sender = Sender(alert_server, channel.dsn)
        for _ in range(total // threads):
            sender.send(event(function))
        sender.connection.close()

    workers = [threading.Thread(target=pump) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    issue = issue_of(api, channel, function)
    wait_for(
        lambda: int(api.get(f"/api/0/issues/{issue['id']}/")["count"]) == total, 120, "digested"
    )
    time.sleep(2.5)
    actions = sorted(m.raw["action"] for m in channel.messages(function))
    assert actions == ["new", "spike"]  # one of each trigger, not one per event


def test_the_cli_refuses_bad_input_with_a_reason(alert_server):
    cases = [
        (["add", "default", "--webhook", "ftp://x"], "not an http(s) URL"),
        (["add", "default", "--email", "not-an-address"], "not an email address"),
        (["add", "default", "--members", "--on", "sometimes"], "--on takes"),
        (["add", "default", "--members", "--on", "spike", "--spike", "ten"], "--spike takes N/M"),
        (["add", "no-such-project", "--members"], "no project 'no-such-project'"),
        (["test", "999999"], "no rule 999999"),
    ]
    for args, reason in cases:
        result = alert_server.bugnet("alert", *args)
        assert result.returncode != 0, args
        assert reason in result.stderr, (args, result.stderr)
