"""End to end: the SDK reports to a real server, the digest groups, the REST API answers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

import pytest
from conftest import Server

SDK_SCRIPT = """
import sys, bugnet
bugnet.init(sys.argv[1], release=sys.argv[2], environment="prod", spool_dir=None)
def split_order(total, parts, order_id):
    return total / parts
def load_config(cfg):
    return cfg["database"]["url"]
ids = []
for order_id in ("A-1", "B-2", "C-3"):          # one bug, different data: one issue
    try:
        split_order(100, 0, order_id)
    except ZeroDivisionError:
        ids.append(bugnet.capture_exception(tags={"tenant": order_id}, user={"id": order_id}))
try:
    load_config({"database": {}})               # another bug: another issue
except KeyError:
    ids.append(bugnet.capture_exception())
import logging
for n in (1, 2):                                # one log template, different params: one issue
    logging.getLogger("shop.billing").error("payment failed for order %s", n)
bugnet.flush(10)
print(" ".join(i or "-" for i in ids))
"""


class Api:
    def __init__(self, server: Server, token: str) -> None:
        self.server = server
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Message]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server.url + path, data=data, method=method,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return (
                    response.status,
                    json.loads(response.read() or b"null"),
                    response.headers,
                )
        except urllib.error.HTTPError as error:
            payload = error.read()
            return error.code, json.loads(payload) if payload else None, error.headers

    def get(self, path: str) -> Any:
        status, payload, _ = self.call("GET", path)
        assert status == 200, (path, status, payload)
        return payload


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def admin_api(server: Server) -> Api:
    return Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))


@pytest.fixture(scope="module")
def reported(server: Server, admin_api: Api) -> dict[str, Any]:
    """A fresh project with the SDK's events in it, digested."""
    name = f"Shop {time.monotonic_ns()}"
    dsn = last_line(server.bugnet("project", "create", name))
    slug = name.lower().replace(" ", "-")
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(SDK_SCRIPT), dsn, "shop@1.0"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    ids = last_line(run).split()
    path = f"/api/0/projects/default/{slug}/issues/?query="
    deadline = time.monotonic() + 30
    issues: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        issues = admin_api.get(path)
        if sum(int(i["count"]) for i in issues) >= 6:
            break
        time.sleep(0.2)
    return {"slug": slug, "ids": ids, "dsn": dsn, "issues": issues}


def test_the_same_bug_is_one_issue_and_different_bugs_are_two(reported):
    issues = {i["title"]: i for i in reported["issues"]}
    assert len(issues) == 3
    assert {"ZeroDivisionError: division by zero", "KeyError: 'url'"} < set(issues)
    division = issues["ZeroDivisionError: division by zero"]
    assert division["count"] == "3"
    assert division["userCount"] == 3
    assert division["culprit"].endswith("in split_order")
    assert division["metadata"]["type"] == "ZeroDivisionError"
    assert division["level"] == "error"
    assert division["status"] == "unresolved"
    assert division["permalink"].endswith(f"/issues/{division['id']}/")
    logged = [i for i in reported["issues"] if i["title"].startswith("payment failed")]
    assert len(logged) == 1
    assert logged[0]["count"] == "2"


def test_latest_event_is_the_stored_event_in_sentry_schema(reported, admin_api):
    division = next(i for i in reported["issues"] if i["title"].startswith("ZeroDivision"))
    event = admin_api.get(f"/api/0/issues/{division['id']}/events/latest/")
    assert event["groupID"] == division["id"]
    assert event["eventID"] in reported["ids"]
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "split_order"
    assert frames[-1]["vars"]["parts"] == "0"
    assert event["release"] == "shop@1.0"
    assert ["tenant", "C-3"] in event["tags"] or {"tenant": "C-3"}.items() <= dict(
        event["tags"]
    ).items()
    events = admin_api.get(f"/api/0/issues/{division['id']}/events/")
    assert len(events) == 3


def test_issue_search_sort_and_paging(reported, admin_api):
    base = f"/api/0/projects/default/{reported['slug']}/issues/"
    assert len(admin_api.get(base)) == len(reported["issues"])  # default: unresolved
    assert [i["title"] for i in admin_api.get(base + "?query=tenant:A-1")] == [
        "ZeroDivisionError: division by zero"
    ]
    assert admin_api.get(base + "?query=is:resolved") == []
    assert len(admin_api.get(base + "?query=release:shop@1.0")) == len(reported["issues"])
    assert [i["title"] for i in admin_api.get(base + "?query=KeyError")] == ["KeyError: 'url'"]
    by_freq = admin_api.get(base + "?sort=freq")
    assert int(by_freq[0]["count"]) >= int(by_freq[-1]["count"])
    status, page, headers = admin_api.call("GET", base + "?limit=1")
    assert status == 200
    assert len(page) == 1
    assert 'rel="next"; results="true"' in headers["Link"]
    next_cursor = headers["Link"].split('rel="next"; results="true"; cursor="')[1].split('"')[0]
    second = admin_api.get(base + f"?limit=1&cursor={next_cursor}")
    assert second[0]["id"] != page[0]["id"]
    assert admin_api.call("GET", base + "?sort=bogus")[0] == 400


def test_resolve_then_a_new_event_is_a_regression(server, reported, admin_api):
    key_error = next(i for i in reported["issues"] if i["title"].startswith("KeyError"))
    status, body, _ = admin_api.call(
        "PUT", f"/api/0/issues/{key_error['id']}/", {"status": "resolved"}
    )
    assert (status, body["status"]) == (200, "resolved")
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(SDK_SCRIPT), reported["dsn"], "shop@1.1"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    last_line(run)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        issue = admin_api.get(f"/api/0/issues/{key_error['id']}/")
        if issue["status"] == "unresolved":
            break
        time.sleep(0.2)
    assert issue["status"] == "unresolved"
    assert issue["lastRelease"] == "shop@1.1"
    activity = server.query("SELECT kind FROM issues_issueactivity WHERE issue_id = %s ORDER BY id",
                            (int(key_error["id"]),))  # fmt: skip
    assert [kind for (kind,) in activity][:3] == ["new", "resolved", "regression"]


def test_a_token_sees_only_what_its_user_may_see(server, reported):
    email = f"outsider-{time.monotonic_ns()}@example.com"
    assert server.bugnet("user", "create", email, "--password", "a-long-password").returncode == 0
    outsider = Api(server, last_line(server.bugnet("token", "create", email)))
    assert outsider.get("/api/0/projects/") == []
    division = next(i for i in reported["issues"] if i["title"].startswith("ZeroDivision"))
    assert outsider.call("GET", f"/api/0/issues/{division['id']}/")[0] == 404
    assert Api(server, "bnt_wrong").call("GET", "/api/0/projects/")[0] == 401


def test_openapi_document_describes_the_api(server):
    with urllib.request.urlopen(server.url + "/api/0/openapi.json", timeout=10) as response:
        spec = json.loads(response.read())
    assert spec["openapi"].startswith("3.")
    assert "/api/0/projects/{org}/{project}/issues/" in spec["paths"]


FLASK_APP = """
import logging, sys, threading, urllib.error, urllib.request
import bugnet, flask
from werkzeug.serving import make_server
bugnet.init(sys.argv[1], release="web@2.0", spool_dir=None)
app = flask.Flask("shop_web")
log = logging.getLogger("shop_web.checkout")
log.setLevel(logging.INFO)

@app.route("/checkout/<int:cart>")
def checkout(cart):
    log.info("pricing cart %s", cart)
    discount = 0
    return str(100 / discount)

server = make_server("127.0.0.1", 0, app, threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
try:
    urllib.request.urlopen(f"http://127.0.0.1:{server.port}/checkout/7?coupon=SPRING", timeout=10)
except urllib.error.HTTPError as exc:
    print("status", exc.code)
server.shutdown()
bugnet.flush(10)
"""


def run_app_until_its_issue(
    server: Server, admin_api: Api, app: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``app`` (a script that serves one failing request) against a new project; wait for
    the one issue it makes; return the issue and its latest event, from the API."""
    name = f"App {time.monotonic_ns()}"
    dsn = last_line(server.bugnet("project", "create", name))
    slug = name.lower().replace(" ", "-")
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(app), dsn],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert last_line(run) == "status 500", run.stderr
    deadline = time.monotonic() + 30
    issues: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not issues:
        issues = admin_api.get(f"/api/0/projects/default/{slug}/issues/?query=")
        time.sleep(0.2)
    assert len(issues) == 1
    return issues[0], admin_api.get(f"/api/0/issues/{issues[0]['id']}/events/latest/")


DJANGO_APP = """
import logging, sys, threading, urllib.error, urllib.request
import bugnet
bugnet.init(sys.argv[1], release="web@3.0", spool_dir=None)
from django.conf import settings
settings.configure(
    ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="e2e", DEBUG=False,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    LOGGING_CONFIG=None,
)
import django
django.setup()
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.urls import path
from werkzeug.serving import make_server
log = logging.getLogger("shop_admin.refunds")
log.setLevel(logging.INFO)

def refund(request, order):
    log.info("refunding order %s", order)
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s * 2", [order])
        (amount,) = cursor.fetchone()
    raise LookupError(f"no payment for order {order} ({amount})")

urlpatterns = [path("refunds/<int:order>/", refund)]
server = make_server("127.0.0.1", 0, get_wsgi_application(), threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
try:
    urllib.request.urlopen(f"http://127.0.0.1:{server.port}/refunds/21/?why=damaged", timeout=10)
except urllib.error.HTTPError as exc:
    print("status", exc.code)
server.shutdown()
bugnet.flush(10)
"""


def test_a_django_app_error_arrives_with_its_request_and_breadcrumbs(server, admin_api):
    """The same for a real Django app: the request, the URL pattern as the transaction, the
    log line and the SQL query before the error as breadcrumbs."""
    issue, event = run_app_until_its_issue(server, admin_api, DJANGO_APP)
    assert issue["title"] == "LookupError: no payment for order 21 (42)"
    request = event["request"]
    assert request["method"] == "GET"
    assert request["url"].endswith("/refunds/21/")
    assert request["query_string"] in ("why=damaged", [["why", "damaged"]])
    assert event["transaction"] == "/refunds/<int:order>/"
    assert event["release"] == "web@3.0"
    exception = event["exception"]["values"][-1]
    assert exception["mechanism"] == {"type": "django", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["vars"]["amount"] == "42"
    crumbs = event["breadcrumbs"]["values"]
    assert "refunding order 21" in [c.get("message") for c in crumbs]
    query = next(c for c in crumbs if c.get("category") == "query")
    assert query["message"] == "SELECT %s * 2"


def test_a_flask_app_error_arrives_with_its_request_and_breadcrumbs(server, admin_api):
    """A real Flask app served over HTTP, with ``bugnet.init(dsn)`` pointed at the server: the
    500 becomes an issue whose event carries the request and the logs before it."""
    issue, event = run_app_until_its_issue(server, admin_api, FLASK_APP)
    assert issue["title"] == "ZeroDivisionError: division by zero"
    request = event["request"]
    assert request["method"] == "GET"
    assert request["url"].endswith("/checkout/7")
    assert request["query_string"] in ("coupon=SPRING", [["coupon", "SPRING"]])
    assert event["transaction"] == "checkout"
    exception = event["exception"]["values"][-1]
    assert exception["mechanism"]["type"] == "flask"
    assert exception["mechanism"]["handled"] is False
    assert exception["stacktrace"]["frames"][-1]["vars"]["discount"] == "0"
    crumbs = [c.get("message") for c in event["breadcrumbs"]["values"]]
    assert "pricing cart 7" in crumbs
