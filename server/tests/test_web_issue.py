"""The issue page of the web UI over real HTTP: a real SDK's error shown in full, navigation
between events, the raw JSON, state changes with their history, who may see it, and event
data written by strangers shown safely."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
from conftest import Server
from web_client import Page, WebClient

from bugnet_server.web.templatetags import issue_tags

PASSWORD = "a-long-password-for-tests"

FLASK_APP = """
import logging, sys, threading, urllib.error, urllib.request
import bugnet, flask
from werkzeug.serving import make_server
bugnet.init(sys.argv[1], release="shop@2.0", spool_dir=None)
app = flask.Flask("shop_web")
log = logging.getLogger("shop_web.checkout")
log.setLevel(logging.INFO)

def load_price(cart):
    prices = {"apple": 3}
    return prices[cart]

@app.route("/checkout/<cart>")
def checkout(cart):
    bugnet.set_tag("tenant", "acme")
    log.info("pricing cart %s", cart)
    discount_code = "SPRING"
    try:
        return str(load_price(cart))
    except KeyError as exc:
        raise LookupError(f"no price for {cart} with {discount_code}") from exc

server = make_server("127.0.0.1", 0, app, threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
for cart in ("pear", "plum"):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/checkout/{cart}?coupon=SPRING")
    except urllib.error.HTTPError as exc:
        print("status", exc.code)
    bugnet.flush(10)
server.shutdown()
"""

# Every kind of markup an attacker might hope the page shows unescaped.
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "javascript:alert(1)"]
EVIL = " ".join(XSS)


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def django_shell(server: Server, code: str) -> str:
    """Run Python in the server's Django (``bugnet shell -c``): for what no CLI command does."""
    return last_line(server.bugnet("shell", "-c", textwrap.dedent(code)))


def wait_for(server: Server, sql: str, params: tuple[Any, ...], ready: Any) -> list[Any]:
    deadline = time.monotonic() + 30
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = server.query(sql, params)
        if ready(rows):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"not ready after 30 s: {sql} {params} -> {rows}")


def send_event(dsn: str, event: dict[str, Any]) -> str:
    """Post one hand-made event in an envelope, as an SDK would; returns its id."""
    key, rest = dsn.split("//", 1)[1].split("@", 1)
    host, project_id = rest.rsplit("/", 1)
    event_id = event.setdefault("event_id", uuid.uuid4().hex)
    body = b"\n".join(json.dumps(part).encode() for part in
                      ({"event_id": event_id}, {"type": "event"}, event))  # fmt: skip
    request = urllib.request.Request(
        f"http://{host}/api/{project_id}/envelope/", data=body, method="POST",
        headers={"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7",
                 "Content-Type": "application/x-sentry-envelope"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    return str(event_id)


def issue_of(server: Server, event_id: str) -> int:
    rows = wait_for(server, "SELECT issue_id FROM issues_event WHERE event_id = %s",
                    (event_id,), bool)  # fmt: skip
    return int(rows[0][0])


@pytest.fixture(scope="module")
def site(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A project whose own team has one member, an outsider, and a real Flask app's error
    (two events of one issue) reported by the SDK."""
    tag = uuid.uuid4().hex[:8]
    member, outsider = f"member-{tag}@example.com", f"outsider-{tag}@example.com"
    for email in (member, outsider):
        last_line(server.bugnet("user", "create", email, "--password", PASSWORD))
    name = f"Issue Page {tag}"
    dsn = last_line(server.bugnet("project", "create", name))
    slug = f"issue-page-{tag}"
    django_shell(
        server,
        f"""
        from django.contrib.auth import get_user_model
        from bugnet_server.projects.models import Project, Team
        project = Project.objects.get(slug="{slug}")
        project.teams.clear()
        team = Team.objects.create(organization=project.organization, slug="t-{tag}", name="T")
        team.members.add(get_user_model().objects.get(username="{member}"))
        project.teams.add(team)
        print("ok")
    """,
    )
    app = tmp_path_factory.mktemp("issue-page") / "shop_web.py"  # a file: frames get source
    app.write_text(textwrap.dedent(FLASK_APP))
    run = subprocess.run([sys.executable, str(app), dsn], capture_output=True, text=True,
                         timeout=90)  # fmt: skip
    assert run.stdout.split() == ["status", "500", "status", "500"], run.stderr
    project_id = int(dsn.rsplit("/", 1)[1])
    rows = wait_for(server, "SELECT id, times_seen FROM issues_issue WHERE project_id = %s",
                    (project_id,), lambda rows: rows and rows[0][1] >= 2)  # fmt: skip
    assert len(rows) == 1, rows
    events = server.query("SELECT event_id FROM issues_event WHERE issue_id = %s "
                          "ORDER BY timestamp, id", (rows[0][0],))  # fmt: skip
    client = WebClient(server.url)
    client.login(member, PASSWORD)
    return {"dsn": dsn, "slug": slug, "issue": rows[0][0], "events": [e for (e,) in events],
            "member": member, "outsider": outsider, "client": client}  # fmt: skip


def test_the_page_shows_the_latest_error_in_full(site):
    page = site["client"].get(f"/issues/{site['issue']}/")
    assert page.status == 200
    html = page.text
    assert site["slug"] in html.split("</title>")[0]
    assert "no price for plum with SPRING" in html
    event = html.split('<section class="card event"', 1)[1]
    assert event.index("LookupError</span>") < event.index("KeyError</span>")  # raised, cause
    # The in-app frame: its source with the error line marked, its local variables.
    error_lines = re.findall(r'<tr class="error-line">.*?<pre>(.*?)</pre>', html, re.S)
    assert "    return prices[cart]" in error_lines
    assert re.search(r">discount_code</th><td><pre>&#x27;SPRING&#x27;</pre>", html)
    # Library (Flask) frames are grouped and collapsed.
    assert re.search(r"<details>\s*<summary>\d+ library frames</summary>", html)
    # Breadcrumbs, request, tags (linked to the project's issues searched by the tag).
    assert "pricing cart plum" in html
    assert re.search(r"<strong>GET</strong>\s*<a href=\"http://127\.0\.0\.1:\d+/checkout/plum\" "
                     r'rel="noopener noreferrer nofollow">', html)  # fmt: skip
    assert re.search(r">coupon</th><td><pre>SPRING</pre>", html)
    search = f"/projects/default/{site['slug']}/?query=tenant%3A%22acme%22"
    assert f'href="{search}"' in html
    # Header, chart and tag breakdown.
    assert "shop@2.0" in html
    assert re.search(r'<dt>Events</dt><dd class="num">2</dd>', html)
    assert re.search(r'aria-label="Events per hour, last 24 hours \(peak [12]\)"', html)
    assert re.search(r">acme</a>\s*<span class=\"num muted\">100.0% · 2</span>", html)


def test_older_and_newer_links_walk_the_events(site):
    client, issue = site["client"], site["issue"]
    first, latest = site["events"]
    page = client.get(f"/issues/{issue}/")
    assert f'href="/issues/{issue}/events/{first}/" rel="prev"' in page.text
    assert '<span class="disabled">Newer' in page.text
    older = client.get(f"/issues/{issue}/events/{first}/")
    assert older.status == 200
    shown = older.text.split('<section class="card event"', 1)[1]
    assert "no price for pear" in shown
    assert "no price for plum" not in shown
    assert f'href="/issues/{issue}/events/{latest}/" rel="next"' in older.text
    assert f'href="/issues/{issue}/events/{latest}/">Latest »</a>' in older.text
    assert re.search(r'<span class="disabled">\W+Older</span>', older.text)
    oldest_first = client.get(f"/issues/{issue}/events/{first}/?order=oldest")
    assert f'href="/issues/{issue}/events/{latest}/?order=oldest" rel="next"' in oldest_first.text
    event = oldest_first.text.split('<section class="card event"', 1)[1]
    assert event.index("KeyError</span>") < event.index("LookupError</span>")  # as Python prints
    assert client.get(f"/issues/{issue}/events/{'0' * 32}/").status == 404


def test_the_raw_json_is_the_stored_event(site):
    issue, latest = site["issue"], site["events"][1]
    page = site["client"].get(f"/issues/{issue}/events/{latest}/json/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "application/json"
    assert page.headers["Content-Disposition"].startswith("inline")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    event = json.loads(page.text)
    assert event["eventID"] == latest
    assert event["groupID"] == str(issue)
    assert event["exception"]["values"][-1]["type"] == "LookupError"
    page = site["client"].get(f"/issues/{issue}/")
    assert f'href="/issues/{issue}/events/{latest}/json/"' in page.text


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def activity(page: Page) -> str:
    return text_of(page.text.split('<ol class="activity">', 1)[1].split("</ol>", 1)[0])


def status_of(server: Server, issue: int) -> str:
    return str(server.query("SELECT status FROM issues_issue WHERE id = %s", (issue,))[0][0])


@pytest.mark.parametrize(
    ("action", "status", "shown", "history"),
    [
        ("resolve", "resolved", "Resolved", "resolved it"),
        ("resolve-next", "resolved", "Resolved in the next release after shop@2.0",
         "resolved it in the next release after shop@2.0"),
        ("ignore-count:10", "ignored", "Ignored until 10 more events",
         "ignored it until 10 more events"),
        ("ignore-for:24h", "ignored", "Ignored until", "ignored it until"),
        ("ignore", "ignored", "Ignored", "ignored it"),
        ("unresolve", "unresolved", "Unresolved", "unresolved it"),
    ],
)  # fmt: skip
def test_state_changes_show_and_are_recorded_with_who(site, server, action, status, shown,
                                                      history):  # fmt: skip
    issue = site["issue"]
    back = f"/issues/{issue}/events/{site['events'][0]}/"
    page = site["client"].post(f"/issues/{issue}/status/", {"action": action, "next": back})
    assert page.status == 200
    assert page.url.endswith(back)  # redirected back to where the form was
    assert status_of(server, issue) == status
    assert '<li class="success">' in page.text
    status_line = re.search(r'<p class="status status-\w+">(.*?)</p>', page.text, re.S)
    assert status_line is not None
    assert text_of(status_line.group(1)).startswith(shown)
    latest = activity(page)
    assert latest.startswith(f"{site['member']} {history}"), latest
    who = server.query("SELECT u.username FROM issues_issueactivity a JOIN auth_user u "
                       "ON u.id = a.user_id WHERE a.issue_id = %s ORDER BY a.id DESC",
                       (issue,))  # fmt: skip
    assert who[0][0] == site["member"]


def test_a_bad_state_change_changes_nothing(site, server):
    issue = site["issue"]
    before = status_of(server, issue)
    page = site["client"].post(f"/issues/{issue}/status/", {"action": "ignore-count:7"})
    assert page.status == 200
    assert '<li class="error">' in page.text
    assert status_of(server, issue) == before
    no_token = site["client"].request("POST", f"/issues/{issue}/status/", {"action": "resolve"})
    assert no_token.status == 403  # CSRF
    assert site["client"].get(f"/issues/{issue}/status/").status == 405
    assert status_of(server, issue) == before


def test_someone_outside_the_projects_team_gets_404(site, server):
    issue, event = site["issue"], site["events"][0]
    outsider = WebClient(server.url)
    outsider.login(site["outsider"], PASSWORD)
    before = status_of(server, issue)
    for path in (f"/issues/{issue}/", f"/issues/{issue}/events/{event}/",
                 f"/issues/{issue}/events/{event}/json/"):  # fmt: skip
        page = outsider.get(path)
        assert page.status == 404, path
        assert "LookupError" not in page.text
    assert outsider.post(f"/issues/{issue}/status/", {"action": "resolve"}).status == 404
    assert status_of(server, issue) == before
    anonymous = WebClient(server.url, follow_redirects=False)
    assert anonymous.get(f"/issues/{issue}/events/{event}/json/").status == 302


class Markup(HTMLParser):
    """What the browser would see as markup: tags, attributes, script bodies."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def assert_no_markup_from_event(html: str) -> None:
    assert "<script>alert" not in html
    assert not re.search(r"<[a-z][^<>]*onerror=", html, re.I)
    assert 'href="javascript:' not in html.lower()
    parser = Markup()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag != "img", "an <img> from event data became markup"
        for name, value in attrs:
            assert not name.startswith("on"), f"<{tag} {name}=...> from event data"
            if name in ("href", "src", "action", "formaction"):
                assert not (value or "").strip().lower().startswith("javascript:"), (tag, value)
        if tag == "script":
            assert dict(attrs).get("src", "").startswith("/static/")
    assert not "".join(parser.scripts).strip()


def hostile_event() -> dict[str, Any]:
    frame = {
        "filename": f"app/{EVIL}.py", "abs_path": f"/srv/{EVIL}.py", "module": EVIL,
        "function": EVIL, "lineno": 3, "in_app": True, "context_line": EVIL,
        "pre_context": [EVIL], "post_context": [EVIL], "vars": {EVIL: EVIL, "nested": {EVIL: [EVIL]}},
    }  # fmt: skip
    return {
        "platform": "python", "level": "error", "message": EVIL, "release": EVIL,
        "environment": "evil", "transaction": EVIL, "logger": EVIL, "server_name": "evil",
        "logentry": {"formatted": EVIL},
        "exception": {"values": [
            {"type": "ValueError", "value": EVIL, "mechanism": {"type": "generic",
                                                                "help_link": "javascript:alert(1)"},
             "stacktrace": {"frames": [frame, {**frame, "in_app": False}]}},
        ]},
        "breadcrumbs": {"values": [
            {"timestamp": time.time() - 5, "category": EVIL, "message": EVIL, "level": EVIL,
             "type": EVIL, "data": {EVIL: EVIL, "url": "javascript:alert(1)"}},
        ]},
        "request": {"method": "POST", "url": "javascript:alert(1)",
                    "query_string": [[EVIL, EVIL]], "headers": {"X-Evil": EVIL, "Referer": EVIL},
                    "cookies": {EVIL: EVIL}, "data": {EVIL: EVIL}, "env": {EVIL: EVIL}},
        "tags": {"evil-tag": EVIL, "evil-key-<script>": "v"},
        "user": {"id": EVIL, "email": EVIL, "username": EVIL, "data": {EVIL: EVIL}},
        "contexts": {"os": {"name": EVIL, "version": EVIL}, "evil": {"type": "x", EVIL: EVIL}},
        "extra": {EVIL: EVIL},
        "sdk": {"name": EVIL, "version": EVIL},
    }  # fmt: skip


def test_event_data_from_strangers_is_shown_escaped(site, server):
    event_id = send_event(site["dsn"], hostile_event())
    issue = issue_of(server, event_id)
    client = site["client"]
    page = client.get(f"/issues/{issue}/events/{event_id}/")
    assert page.status == 200
    assert_no_markup_from_event(page.text)
    # ...and the text is there, escaped, rather than dropped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "javascript:alert(1)" in page.text  # as text, never as a link
    assert "evil-tag" in page.text
    for order in ("?order=oldest", ""):
        assert_no_markup_from_event(client.get(f"/issues/{issue}/{order}").text)
    raw = client.get(f"/issues/{issue}/events/{event_id}/json/")
    assert raw.headers["Content-Type"] == "application/json"
    assert json.loads(raw.text)["logentry"]["formatted"] == EVIL


MALFORMED = {
    "message": {"not": "a string"}, "level": ["error"], "release": 5, "tags": "tenant=acme",
    "exception": {"values": [{"type": "TypeError", "value": {"a": 1},
                              "stacktrace": {"frames": "none"}, "mechanism": "odd"},
                             "not an exception", None]},
    "breadcrumbs": [{"timestamp": "yesterday", "message": 5, "data": "flat"}, 7],
    "request": {"url": 12, "headers": "Host: x", "query_string": {"a": ["b", 1]},
                "data": 3.5, "cookies": ["c"]},
    "user": ["id", 1], "contexts": {"os": "Linux", "runtime": 3}, "sdk": "bugnet",
    "timestamp": "not a time", "extra": [1, 2],
}  # fmt: skip

# Stored as is, past the normalizer: what an older digest or a hand-edited database could hold.
RAW_EVENTS = [
    {"exception": {"values": [
        {"type": 5, "value": None, "mechanism": {"parent_id": "x", "source": ["__cause__"]},
         "stacktrace": {"frames": [
             {"vars": [1, 2], "pre_context": "abc", "lineno": "x", "context_line": 7,
              "in_app": "yes", "function": {"f": 1}},
             {"lineno": 2**64 - 1, "context_line": "x", "pre_context": [None, 3, "ok"],
              "post_context": None, "vars": {"k": {"deep": [1, {"x": None}]}}}, 4]}},
        "odd", {"mechanism": {"exception_id": 1, "parent_id": 0, "source": "exceptions[0]"}}]},
     "breadcrumbs": {"values": [1, {"timestamp": 1e300, "data": [1], "level": ["x"]},
                                {"timestamp": -1e20, "message": None}]},
     "request": {"url": ["http://x"], "headers": [[1, 2, 3], "h", [None, None]],
                 "query_string": 7, "cookies": "a=b", "data": None, "env": "x", "method": 1},
     "tags": [["a"], ["k", {"v": 1}], 3], "user": "someone", "contexts": [1],
     "threads": {"values": [1, {"stacktrace": "x"}]}, "sdk": {"integrations": "x"},
     "logentry": 5, "errors": ["plain", {"type": 1}], "timestamp": [1], "modules": "x"},
    {"threads": {"values": [{"crashed": True, "stacktrace": {"frames": [
        {"filename": "t.py", "lineno": 3, "context_line": "boom()"}]}}]},
     "breadcrumbs": "none", "request": "GET /", "contexts": "none"},
    [1, 2, 3],
    "a string",
    None,
]  # fmt: skip


def test_malformed_events_still_render(site, server):
    event_id = send_event(site["dsn"], dict(MALFORMED))
    issue = issue_of(server, event_id)
    client = site["client"]
    assert client.get(f"/issues/{issue}/events/{event_id}/").status == 200
    ids = [uuid.uuid4().hex for _ in range(len(RAW_EVENTS) + 1)]
    django_shell(
        server,
        f"""
        import orjson
        from django.utils import timezone
        from bugnet_server.ingest.store import compress
        from bugnet_server.issues.models import Event, Issue
        issue = Issue.objects.get(pk={issue})
        bodies = [compress(orjson.dumps(e)) for e in {RAW_EVENTS!r}] + [b"not zstd at all"]
        for event_id, body in zip({ids!r}, bodies):
            Event.objects.create(project_id=issue.project_id, issue=issue, event_id=event_id,
                                 timestamp=timezone.now(), received=timezone.now(),
                                 level="error", data=body)
        print("ok")
    """,
    )
    for event_id in ids:
        page = client.get(f"/issues/{issue}/events/{event_id}/")
        assert page.status == 200, (event_id, page.text[-2000:])
        assert event_id in page.text
    threaded = client.get(f"/issues/{issue}/events/{ids[1]}/").text
    assert "boom()" in threaded  # a message's stack trace comes from its crashed thread
    # No frame is in-app: the one where it broke is open all the same.
    assert re.search(r'<details open>\s*<summary class="frame-title"><span class="mono filename">'
                     r"t\.py</span>", threaded)  # fmt: skip
    assert client.get(f"/issues/{issue}/").status == 200
    assert client.get(f"/issues/{issue}/events/{ids[0]}/json/").status == 200


# -- How event data is shaped for the page (no server needed) ---------------------------------


def frame(name: str, in_app: bool | None) -> dict[str, Any]:
    return {"filename": f"{name}.py", "function": name, "lineno": 10, "in_app": in_app}


def test_frames_most_recent_first_with_library_runs_collapsed_together():
    stacktrace = {"frames": [frame("main", True), frame("lib1", False), frame("lib2", None),
                             frame("view", True), frame("lib3", False)]}  # fmt: skip
    blocks = issue_tags.frame_blocks(stacktrace, "newest")
    shape = [(b["library"], [f["function"] for f in b["frames"]]) for b in blocks]
    assert shape == [(True, ["lib3"]), (False, ["view"]), (True, ["lib2", "lib1"]),
                     (False, ["main"])]  # fmt: skip
    oldest = issue_tags.frame_blocks(stacktrace, "oldest")
    assert [f["function"] for b in oldest for f in b["frames"]] == [
        "main", "lib1", "lib2", "view", "lib3"]  # fmt: skip


def test_without_in_app_frames_the_frame_where_it_broke_is_open_but_not_called_in_app():
    blocks = issue_tags.frame_blocks({"frames": [frame("a", None), frame("b", False)]}, "newest")
    first = blocks[0]["frames"][0]
    assert (blocks[0]["library"], first["function"], first["in_app"]) == (False, "b", False)
    assert blocks[1]["library"] is True


def test_source_context_is_numbered_with_the_error_line_marked():
    lines = issue_tags.frame_blocks({"frames": [{
        "filename": "a.py", "lineno": 7, "in_app": True, "pre_context": ["x = 1", "y = 0"],
        "context_line": "x / y", "post_context": ["pass"]}]}, "newest")[0]["frames"][0]["lines"]  # fmt: skip
    assert lines == [(5, "x = 1", False), (6, "y = 0", False), (7, "x / y", True),
                     (8, "pass", False)]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "newest", "oldest"),
    [
        ("__cause__", "The above exception was directly caused by the following exception:",
         "The above exception was the direct cause of the following exception:"),
        ("__context__",
         "The above exception occurred during handling of the following exception:",
         "During handling of the above exception, another exception occurred:"),
        (None, "Caused by:", "The above exception caused the following:"),
    ],
)  # fmt: skip
def test_chained_exceptions_say_how_they_are_linked(source, newest, oldest):
    mechanism = {"type": "chained", "exception_id": 1, "parent_id": 0, "source": source}
    event = {"exception": {"values": [
        {"type": "KeyError", "value": "'a'", **({"mechanism": mechanism} if source else {})},
        {"type": "LookupError", "value": "no a", "mechanism": {"exception_id": 0}},
    ]}}  # fmt: skip
    chain = issue_tags.exception_chain(event, "newest")
    assert [e["type"] for e in chain] == ["LookupError", "KeyError"]
    assert chain[1]["relation"] == newest
    chain = issue_tags.exception_chain(event, "oldest")
    assert [e["type"] for e in chain] == ["KeyError", "LookupError"]
    assert chain[0]["relation"] == oldest


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://shop.example/cart?x=1", True),
        ("http://127.0.0.1:8000/checkout/7", True),
        ("javascript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ('https://x.example/"><img src=x onerror=alert(1)>', False),
        ("//x.example/path", False),
        ("/relative", False),
        (12, False),
    ],
)
def test_only_plain_http_urls_become_links(url, linked):
    assert issue_tags.http_url(url) == (url if linked else "")


def test_pairs_read_objects_lists_of_pairs_and_oddities():
    assert issue_tags.pairs({"a": 1, "b": "x"}) == [("a", "1"), ("b", "x")]
    assert issue_tags.pairs([["a", "1"], ["a", "2"]]) == [("a", "1"), ("a", "2")]
    assert issue_tags.pairs([["a"], 3, None]) == [("", '[\n  "a"\n]'), ("", "3")]
    assert issue_tags.pairs("flat") == []


def test_tag_search_quotes_the_value_as_the_search_parses_it():
    url = issue_tags.tag_search("/projects/default/shop/", "tenant", 'a "b" \\c')
    assert url == "/projects/default/shop/?query=tenant%3A%22a+%5C%22b%5C%22+%5C%5Cc%22"
