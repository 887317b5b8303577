"""``bugnet tail``: captured errors appear live, in a real terminal (a pty) or as JSON lines,
from the database or through the REST API; and the API's list of a project's events."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from conftest import Server, free_port

from bugnet_server.runtime import tail
from bugnet_server.runtime.tail.local import HOLE_TTL, MAX_HOLES, Watermark
from bugnet_server.runtime.tail.remote import OVERLAP, Feed

SDK_SCRIPT = """
import sys, bugnet
dsn, kind, release = sys.argv[1:4]
bugnet.init(dsn, release=release, environment="prod", spool_dir=None)
if "warning" in sys.argv[4:]:
    bugnet.capture_message("disk almost full", level="warning")
Crash = type(kind, (Exception,), {})
def checkout(order_id):
    raise Crash(f"order {order_id} failed")
try:
    checkout(7)
except Crash:
    print(bugnet.capture_exception())
bugnet.flush(10)
"""
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LATENCY = 2.0  # seconds from the SDK's send returning to the line on screen


def capture(dsn: str, kind: str, release: str = "shop@1.0", *extra: str) -> str:
    """Raise ``kind`` in an app with the real SDK and send it; returns the event id once sent."""
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(SDK_SCRIPT), dsn, kind, release,
                          *extra], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


def api(server: Server, token: str, path: str, method: str = "GET", body: Any = None) -> Any:
    request = urllib.request.Request(server.url + path, method=method,
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read()), response.headers


def status_of(server: Server, token: str, path: str) -> int:
    try:
        return int(api(server, token, path)[0])
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    result = server.bugnet("token", "create", "admin@bugnet.local")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def project(server: Server) -> tuple[str, str]:
    """A fresh project: its slug and DSN (so a test sees only its own events)."""
    name = f"Tail {time.monotonic_ns()}"
    result = server.bugnet("project", "create", name)
    assert result.returncode == 0, result.stderr
    return name.lower().replace(" ", "-"), result.stdout.strip().splitlines()[-1]


def short_id(slug: str, number: int) -> str:
    return f"{slug.upper().replace('-', '')[:12]}-{number:X}"


class Output:
    """What a process writes to ``fd``, read line by line with deadlines."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[str] = []
        self.read_upto = 0  # lines already returned by expect()
        self.partial = b""

    def _fill(self, timeout: float) -> bool:
        if not select.select([self.fd], [], [], max(timeout, 0))[0]:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the pty's other side is closed
            chunk = b""
        if not chunk:
            return False
        *done, self.partial = (self.partial + chunk).split(b"\n")
        self.lines += [line.decode(errors="replace").rstrip("\r") for line in done]
        return True

    def expect(self, text: str, timeout: float) -> str:
        """The next line holding ``text`` that arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self.read_upto, len(self.lines)):
                if text in self.lines[index]:
                    self.read_upto = index + 1
                    return self.lines[index]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._fill(remaining):
                raise AssertionError(f"no line with {text!r} in {timeout}s:\n" + self.text())

    def rest(self) -> str:
        while self._fill(5):
            pass
        return self.text()

    def text(self) -> str:
        return "\n".join(self.lines) + "\n" + self.partial.decode(errors="replace")


def start_tail(server: Server, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bugnet_server.cli", "tail", *args],
                            env={**server.env, "TERM": "xterm-256color"}, **popen)  # fmt: skip


def piped_tail(server: Server, *args: str) -> tuple[subprocess.Popen[bytes], Output, Output]:
    """``bugnet tail`` with its stdout and stderr in pipes (the caller closes both)."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    process = start_tail(server, *args, stdout=out_write, stderr=err_write)
    os.close(out_write)
    os.close(err_write)
    return process, Output(out_read), Output(err_read)


class Terminal(Output):
    """``bugnet tail`` in a pseudo-terminal, as a person runs it."""

    def __init__(self, server: Server, *args: str) -> None:
        master, slave = os.openpty()
        super().__init__(master)
        self.process = start_tail(server, *args, stdin=slave, stdout=slave, stderr=slave,
                                  start_new_session=True)  # fmt: skip
        os.close(slave)

    def stop(self, sig: int) -> str:
        """Send ``sig``; returns everything written. The tail must exit 0, with no traceback."""
        self.process.send_signal(sig)
        assert self.process.wait(15) == 0, self.rest()
        output = self.rest()
        os.close(self.fd)
        assert "Traceback" not in output, output
        return output


def line_within(screen: Output, text: str) -> tuple[str, float]:
    """The line with ``text``, which must appear within ``LATENCY`` seconds from now."""
    start = time.monotonic()
    line = screen.expect(text, LATENCY)
    return line, time.monotonic() - start


def test_a_captured_error_appears_in_a_terminal_within_two_seconds(server, project, token):
    """New issue: NEW, coloured (a tty); then the same issue plain; resolved, then REGRESSED."""
    slug, dsn = project
    screen = Terminal(server, slug)
    try:
        screen.expect(f"following new events in default/{slug}", 60)
        capture(dsn, "CheckoutCrash")
        line, took = line_within(screen, "CheckoutCrash: order 7 failed")
        plain = ANSI.sub("", line)
        assert re.search(rf" {slug} +error +{short_id(slug, 1)} NEW CheckoutCrash", plain), plain
        assert "in checkout)" in plain  # the culprit
        assert "\x1b[" in line  # a terminal: coloured
        capture(dsn, "CheckoutCrash")
        plain = ANSI.sub("", line_within(screen, "CheckoutCrash")[0])
        assert f"{short_id(slug, 1)} CheckoutCrash" in plain, plain  # no mark
        _, events, _ = api(server, token, f"/api/0/projects/default/{slug}/events/?limit=1")
        api(server, token, f"/api/0/issues/{events[0]['groupID']}/", "PUT", {"status": "resolved"})
        capture(dsn, "CheckoutCrash", "shop@1.1")
        plain = ANSI.sub("", line_within(screen, "CheckoutCrash")[0])
        assert f"{short_id(slug, 1)} REGRESSED CheckoutCrash" in plain, plain
    finally:
        output = screen.stop(signal.SIGINT)
    print(f"local tail: first line {took:.2f}s after the send returned")
    assert output.count("CheckoutCrash") == 3


def test_the_remote_tail_follows_the_api_in_a_terminal(server, project, token):
    slug, dsn = project
    screen = Terminal(server, slug, "--url", server.url, "--token", token)
    try:
        screen.expect(f"following new events in default/{slug} on {server.url}", 60)
        capture(dsn, "RemoteCrash")
        line, took = line_within(screen, "RemoteCrash: order 7 failed")
        assert f"{short_id(slug, 1)} NEW RemoteCrash" in ANSI.sub("", line)
        assert "\x1b[" in line
    finally:
        screen.stop(signal.SIGTERM)
    print(f"remote tail: line {took:.2f}s after the send returned")


@pytest.mark.parametrize("where", ["local", "remote"])
def test_json_lines_when_piped_and_a_closed_pipe_ends_quietly(server, project, token, where):
    """Not a tty: JSON lines without colour. The remote tail here follows every project."""
    slug, dsn = project
    args = [slug] if where == "local" else ["--url", server.url, "--token", token]
    process, out, err = piped_tail(server, "--json", *args)
    try:
        err.expect("following new events", 60)
        event_id = capture(dsn, "PipedCrash")
        text = out.expect(event_id, LATENCY)
    except BaseException:
        process.kill()
        raise
    assert "\x1b" not in text
    item = json.loads(text)
    assert item["project"] == f"default/{slug}"
    assert item["shortId"] == short_id(slug, 1)
    assert item["title"] == "PipedCrash: order 7 failed"
    assert (item["level"], item["change"], item["release"]) == ("error", "new", "shop@1.0")
    assert item["environment"] == "prod"
    assert item["permalink"].endswith(f"/issues/{item['groupID']}/events/{event_id}/")
    assert set(item) >= {"culprit", "dateCreated", "dateReceived"}
    os.close(out.fd)  # the reader goes away, as `| head -1` does
    assert process.wait(15) == 0
    assert "Traceback" not in err.rest()
    os.close(err.fd)


def test_level_shows_that_level_and_above(server, project):
    slug, dsn = project
    process, out, err = piped_tail(server, slug, "--level", "error", "--json")
    try:
        err.expect("following new events", 60)
        capture(dsn, "LevelCrash", "shop@1.0", "warning")  # the warning is stored first
        out.expect("LevelCrash", LATENCY)
        assert [json.loads(line)["level"] for line in out.lines] == ["error"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        os.close(out.fd)
        os.close(err.fd)


def test_project_events_endpoint(server, project, token):
    """Sentry's shape plus the tail's fields, newest first, paged, filtered by ?since=, and
    only for projects the token may see."""
    slug, dsn = project
    first = capture(dsn, "ListedCrash", "shop@1.0", "warning")
    second = capture(dsn, "ListedCrash")
    path = f"/api/0/projects/default/{slug}/events/"
    deadline = time.monotonic() + 30
    while len(events := api(server, token, path)[1]) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert events[0]["eventID"] == second
    warning = next(e for e in events if e["level"] == "warning")
    oldest = next(e for e in events if e["eventID"] == first)
    latest = events[0]
    assert latest["id"] == latest["eventID"] == second
    assert (latest["change"], oldest["change"], warning["change"]) == (None, "new", "new")
    assert latest["title"] == "ListedCrash: order 7 failed"
    assert latest["culprit"].endswith("in checkout")
    assert latest["shortId"] == oldest["shortId"] != warning["shortId"]
    assert {latest["shortId"], warning["shortId"]} == {short_id(slug, 1), short_id(slug, 2)}
    assert latest["level"] == "error"
    assert (warning["level"], warning["message"]) == ("warning", "disk almost full")
    assert {"key": "release", "value": "shop@1.0"} in latest["tags"]
    assert (latest["release"], latest["environment"], latest["platform"]) == (
        "shop@1.0", "prod", "python",
    )  # fmt: skip
    assert latest["project"]["slug"] == slug
    assert [e["dateReceived"] for e in events] == sorted(e["dateReceived"] for e in events)[::-1]
    assert latest["permalink"].endswith(f"/issues/{latest['groupID']}/events/{second}/")

    _, page, headers = api(server, token, path + "?limit=1")
    assert [e["eventID"] for e in page] == [second]
    assert 'rel="next"; results="true"' in headers["Link"]
    cursor = headers["Link"].split('rel="next"; results="true"; cursor="')[1].split('"')[0]
    assert api(server, token, path + f"?limit=1&cursor={cursor}")[1][0]["id"] == events[1]["id"]

    since = urllib.parse.quote(latest["dateReceived"])
    assert [e["id"] for e in api(server, token, path + f"?since={since}")[1]] == [second]
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)).isoformat()
    assert api(server, token, path + f"?since={urllib.parse.quote(later)}")[1] == []
    assert status_of(server, token, path + "?since=yesterday") == 422

    email = f"outsider-{time.monotonic_ns()}@example.com"
    assert server.bugnet("user", "create", email, "--password", "a-long-password").returncode == 0
    outsider = server.bugnet("token", "create", email).stdout.strip().splitlines()[-1]
    assert status_of(server, outsider, path) == 404
    assert status_of(server, token, "/api/0/projects/default/no-such-project/events/") == 404


def test_mistakes_are_one_line_messages_not_tracebacks(server):
    refused = server.bugnet("tail", "--url", server.url, "--token", "bnt_wrong")
    unreachable = server.bugnet("tail", "--url", f"http://127.0.0.1:{free_port()}", "--token", "t")
    unknown = server.bugnet("tail", "no-such-project")
    for result, message in [(refused, "refused the token (401)"), (unreachable, "cannot reach"),
                            (unknown, "no project 'no-such-project'")]:  # fmt: skip
        assert result.returncode == 1, result.stdout + result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_a_remote_tail_leaves_nothing_on_the_client_machine(tmp_path):
    """No data dir, no generated secret key: a client only reads a server's API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUGNET_", "DJANGO_"))}
    env["HOME"] = str(tmp_path)
    for args in (["--url", f"http://127.0.0.1:{free_port()}", "--token", "t"], []):
        if not args:
            env["BUGNET_URL"], env["BUGNET_TOKEN"] = f"http://127.0.0.1:{free_port()}", "t"
        result = subprocess.run([sys.executable, "-m", "bugnet_server.cli", "tail", *args],
                                env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 1, result.stdout + result.stderr
        assert "cannot reach" in result.stderr
    assert list(tmp_path.iterdir()) == []


# Units: no server


def line(**changes: Any) -> tail.EventLine:
    when = dt.datetime(2025, 3, 1, 12, 4, 31, tzinfo=dt.timezone.utc)
    fields: dict[str, Any] = {
        "event_id": "a" * 32, "group_id": "7", "short_id": "SHOP-1A", "project": "acme/shop",
        "level": "error", "title": "ZeroDivisionError: division by zero",
        "culprit": "app.orders in split_order", "timestamp": when, "received": when,
        "release": "", "environment": "prod", "change": None,
        "permalink": "http://bugs.example/issues/7/events/aaa/",
    }  # fmt: skip
    return tail.EventLine(**{**fields, **changes})


def test_text_lines_mark_changes_and_colour_only_when_asked():
    plain = tail.as_text(line(change="new"), color=False)
    assert plain.endswith(" shop error   SHOP-1A NEW ZeroDivisionError: division by zero "
                          "(app.orders in split_order)")  # fmt: skip
    assert "\x1b" not in plain
    assert "REGRESSED" in tail.as_text(line(change="regression"), color=False)
    coloured = tail.as_text(line(change="regression", level="fatal"), color=True)
    assert "\x1b[1;33mREGRESSED\x1b[0m" in coloured
    assert "\x1b[1;31mfatal  \x1b[0m" in coloured


def test_event_text_cannot_drive_the_terminal():
    """Titles come from anyone with a DSN: escape sequences are shown, never sent raw."""
    text = tail.as_text(line(title="boom\x1b[2J\x07", culprit="x\u202eevil"), color=False)
    assert not re.search("[\x1b\x07\u202e]", text)
    assert "boom\\x1b[2J\\x07" in text
    assert "x\\u202eevil" in text


def test_json_lines_carry_the_tails_fields():
    item = json.loads(tail.as_json(line(change="new")))
    assert item == {
        "eventID": "a" * 32, "groupID": "7", "shortId": "SHOP-1A", "project": "acme/shop",
        "level": "error", "title": "ZeroDivisionError: division by zero",
        "culprit": "app.orders in split_order", "dateCreated": "2025-03-01T12:04:31Z",
        "dateReceived": "2025-03-01T12:04:31Z", "release": None, "environment": "prod",
        "change": "new", "permalink": "http://bugs.example/issues/7/events/aaa/",
    }  # fmt: skip


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "choice", "env", "expected"),
    [
        (FakeTty(), None, {"TERM": "xterm"}, True),
        (io.StringIO(), None, {"TERM": "xterm"}, False),
        (FakeTty(), None, {"TERM": "xterm", "NO_COLOR": "1"}, False),
        (FakeTty(), None, {"TERM": "dumb"}, False),
        (FakeTty(), False, {"TERM": "xterm"}, False),
        (io.StringIO(), True, {"NO_COLOR": "1"}, True),
    ],
)
def test_colour_only_on_a_terminal_that_wants_it(stream, choice, env, expected):
    assert tail.wants_color(stream, choice, env) is expected


def test_a_project_is_named_by_slug_or_org_and_slug():
    known = ["acme/shop", "acme/web", "beta/shop"]
    assert tail.pick_project("web", None, known) == "acme/web"
    assert tail.pick_project("beta/shop", None, known) == "beta/shop"
    assert tail.pick_project("shop", "acme", known) == "acme/shop"
    with pytest.raises(tail.TailError, match=r"acme/shop, beta/shop\): say which, as ORG/SLUG"):
        tail.pick_project("shop", None, known)
    with pytest.raises(tail.TailError, match="no project 'api'"):
        tail.pick_project("api", None, known)


def test_level_means_that_level_and_above():
    assert tail.levels_from("warning") == ("warning", "error", "fatal")
    assert tail.levels_from(None) == tail.LEVELS


def test_ids_skipped_by_a_later_commit_are_looked_for_until_they_expire():
    """Digest workers commit concurrently: ids 11-12 may be committed after 13 was read."""
    mark = Watermark(10)
    mark.saw([13, 15], now=0.0)
    assert (mark.high, sorted(mark.holes)) == (15, [11, 12, 14])
    assert "('pk__range', (11, 12))" in str(mark.wanted(now=1.0))
    mark.saw([12], now=2.0)
    assert sorted(mark.holes) == [11, 14]
    mark.wanted(now=HOLE_TTL + 1)  # a rolled-back batch's ids are given up on
    assert mark.holes == {}
    mark.saw(list(range(17, 10_000, 2)), now=100.0)  # two workers' ids, interleaved
    assert (min(mark.holes), max(mark.holes)) == (9_999 - MAX_HOLES + 1, 9_998)  # bounded
    assert "pk__in" in str(mark.wanted(now=101.0))


class FlakySource:
    def __init__(self, script: list[Any]) -> None:
        self.script = script

    def start(self) -> str:
        return "in test"

    def poll(self) -> list[tail.EventLine]:
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return list(step)


def test_an_unreachable_source_is_one_warning_then_retried():
    source = FlakySource([[line(event_id="1" * 32)], tail.Unreachable("cannot reach x"),
                          tail.Unreachable("cannot reach x"), [line(event_id="2" * 32)]])  # fmt: skip
    written: list[str] = []
    warned: list[str] = []
    tail.follow(source, lambda ln: written.append(ln.event_id[0]), warned.append, 0.0,
                gone=lambda: not source.script)  # fmt: skip
    assert written == ["1", "2"]
    assert warned == ["cannot reach x; retrying", "reconnected"]


def test_network_failures_are_unreachable_not_errors():
    client = tail.ApiClient(f"http://127.0.0.1:{free_port()}/", "bnt_x", timeout=2)
    assert client.url.endswith(str(urllib.parse.urlsplit(client.url).port))
    with pytest.raises(tail.Unreachable, match="cannot reach http://127"):
        client.get("/api/0/projects/")
    with pytest.raises(tail.TailError, match="not the server's http"):
        tail.ApiClient("bugs.example.com", "bnt_x")


def test_remote_feed_reads_a_window_again_and_forgets_what_is_out_of_it():
    feed = Feed("/api/0/projects/acme/shop/events/")
    assert feed.params() == {"limit": "100"}
    at = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    feed.remember([line(event_id="old", received=at), line(event_id="new", received=at +
                   OVERLAP + dt.timedelta(seconds=1))])  # fmt: skip
    assert feed.params()["since"] == "2025-03-01T12:00:01Z"
    assert set(feed.seen) == {"new"}
