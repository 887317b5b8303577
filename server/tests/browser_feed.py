"""What the browser tests look at: a real Flask shop reporting through the real SDK, and an event
written by an attacker, sent as raw envelopes the way any client may send them."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conftest import Server

# Run from a file, not with ``python -c``: the SDK reads each frame's source lines from disk.
SHOP_APP = '''\
"""A shop on Flask, reporting to Bugnet; it requests SHOP_PATHS from itself."""
import logging, os, threading, urllib.error, urllib.request
import bugnet, flask
from werkzeug.serving import make_server

bugnet.init(os.environ["SHOP_DSN"], release=os.environ["SHOP_RELEASE"], environment="production",
            server_name="shop-web-1",
            spool_dir=None)
app = flask.Flask("shop_web")
log = logging.getLogger("shop_web.checkout")
log.setLevel(logging.INFO)


@app.before_request
def who():
    bugnet.set_tag("tenant", flask.request.args.get("tenant", "none"))
    name = flask.request.args.get("user", "ada")
    bugnet.set_user({"id": f"u-{name}", "email": f"{name}@example.com"})


@app.route("/checkout/<int:cart>")
def checkout(cart):
    log.info("pricing cart %s", cart)
    discount = 0
    return str(100 / discount)


@app.route("/orders/<order_id>")
def order(order_id):
    orders = {"A-1": {"total": 12}}
    return str(orders[order_id]["total"])


@app.route("/invoices/<int:number>")
def invoice(number):
    log.error("payment gateway timed out for invoice %s", number)
    return "queued"


@app.route("/stock/<sku>")
def stock(sku):
    bugnet.capture_message(f"stock running low for {sku}", level="warning")
    return "ok"


server = make_server("127.0.0.1", 0, app, threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
for path in os.environ["SHOP_PATHS"].split():
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10)
        print(path, 200)
    except urllib.error.HTTPError as exc:
        print(path, exc.code)
server.shutdown()
bugnet.flush(10)
'''

# The source line of the in-app frame that raised, as the issue page should show it.
CHECKOUT_LINE = "return str(100 / discount)"

# Things an attacker writes into an event, hoping one of them turns into markup or a link.
SCRIPT = '<script>window.__pwned="script";alert("script")</script>'
IMG = "\"><img src=x onerror=\"window.__pwned='img';alert('img')\">"
SVG = "'><svg onload=alert('svg')>"
JS_URL = "javascript:window.__pwned='href';alert('href')"
LONG = "W" * 5000  # no space to break at: the layout must still hold


def hostile(tag: str) -> str:
    """One string with every trick, and a marker to find it by."""
    return f"{tag} {SCRIPT} {IMG} {SVG} {JS_URL}"


def hostile_event() -> dict[str, Any]:
    """An error event with an attacker's strings in every field a page may show."""
    frame = {
        "filename": hostile("file") + ".py",
        "abs_path": "/srv/app/" + hostile("abs"),
        "module": hostile("module"),
        "function": hostile("function"),
        "lineno": 12,
        "in_app": True,
        "context_line": hostile("context"),
        "pre_context": [hostile("pre"), LONG],
        "post_context": [hostile("post")],
        "vars": {hostile("varname"): hostile("var"), "long": LONG, "link": JS_URL},
    }
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "logger": hostile("logger"),
        "transaction": hostile("transaction"),
        "server_name": hostile("server"),
        "release": "evil-1.0 '><svg onload=alert('release')>",
        "environment": "prod<svg onload=alert(1)>",
        "message": hostile("message") + " " + LONG,
        "exception": {
            "values": [
                {
                    "type": "Evil" + IMG.replace(" ", ""),
                    "value": hostile("value") + " " + LONG,
                    "module": hostile("excmodule"),
                    "mechanism": {"type": hostile("mechanism"), "handled": False},
                    "stacktrace": {"frames": [frame]},
                }
            ]
        },
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": time.time() - 1,
                    "type": "http",
                    "category": hostile("category"),
                    "message": hostile("crumb") + " " + LONG,
                    "level": "info",
                    "data": {"url": JS_URL, "method": hostile("method"), "long": LONG},
                },
                {
                    "timestamp": time.time(),
                    "type": "navigation",
                    "data": {"from": JS_URL, "to": "javascript:alert('to')"},
                },
            ]
        },
        "request": {
            "url": "https://shop.example/" + hostile("url"),
            "method": "POST",
            "query_string": [["q", hostile("query")]],
            "headers": [["X-Evil", hostile("header")], ["Referer", JS_URL], ["X-Long", LONG]],
            "cookies": [["session", hostile("cookie")]],
            "data": {"field": hostile("body"), "long": LONG},
            "env": {"REMOTE_ADDR": "203.0.113.9"},
        },
        "user": {
            "id": hostile("userid"),
            "email": IMG + "@example.com",
            "username": hostile("username"),
            "ip_address": "203.0.113.9",
            "data": {"profile": JS_URL},
        },
        "contexts": {
            "os": {"name": hostile("os"), "version": SVG},
            "runtime": {"name": "CPython", "version": hostile("runtime")},
            "evil": {"type": "default", "link": JS_URL, "html": hostile("context-value")},
        },
        "tags": {"evil": hostile("tagvalue")[:190], "link": JS_URL, "long": LONG[:190]},
        "extra": {hostile("extrakey")[:80]: hostile("extra"), "long": LONG},
        "fingerprint": ["hostile-event"],
        "sdk": {"name": hostile("sdk"), "version": "1.0"},
    }


def write_shop_app(directory: Path) -> Path:
    path = directory / "shop_app.py"
    path.write_text(SHOP_APP)
    return path


def run_shop(app: Path, dsn: str, release: str, *paths: str) -> subprocess.Popen[str]:
    """Start the shop, which requests ``paths`` from itself and reports what breaks. (Settings
    go in the environment, so that no DSN shows among the event's ``sys.argv``.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUGNET_", "SENTRY_"))}
    env.update(SHOP_DSN=dsn, SHOP_RELEASE=release, SHOP_PATHS=" ".join(paths))
    return subprocess.Popen([sys.executable, str(app)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err
    return out


def send_event(server: Server, dsn: str, event: dict[str, Any]) -> None:
    """POST ``event`` in an envelope to the project of ``dsn``, as an SDK would."""
    key = dsn.split("//", 1)[1].split("@", 1)[0]
    project_id = dsn.rsplit("/", 1)[1]
    body = b"\n".join(
        [
            json.dumps({"event_id": event["event_id"], "dsn": dsn}).encode(),
            json.dumps({"type": "event"}).encode(),
            json.dumps(event).encode(),
        ]
    )
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", f"/api/{project_id}/envelope/", body=body, headers={
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7, sentry_client=evil/1.0",
        })  # fmt: skip
        response = conn.getresponse()
        assert response.status == 200, response.read()
    finally:
        conn.close()


def wait_for(server: Server, sql: str, params: tuple[Any, ...], until: Any) -> Any:
    """Poll the server's database until ``until(rows)`` holds (the digest runs apart from
    ingest, and takes a moment); return the rows."""
    deadline = time.monotonic() + 30
    while True:
        rows = server.query(sql, params)
        if until(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def issues_of(server: Server, project_id: int, count: int, events: int = 0) -> dict[str, int]:
    """``{title: issue id}`` of a project, once it has ``count`` issues of ``events`` events
    (at least) in all."""
    rows = wait_for(server, "SELECT title, id, times_seen FROM issues_issue WHERE project_id = %s",
                    (project_id,), lambda rows: len(rows) >= count
                    and sum(row[2] for row in rows) >= events)  # fmt: skip
    assert len(rows) >= count, rows
    return {title: pk for title, pk, _ in rows}
