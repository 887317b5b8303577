#!/usr/bin/env python3
"""The web UI's speed: issue lists and issue pages on SQLite with 100,000 events in 1,000 issues.

The goal (the product spec): with 100,000 events in 1,000 issues on SQLite, the issue list and
issue detail pages render server-side in < 100 ms p95. Run from the repository root on a
machine with only Python 3.11:

    python3 benchmarks/web_pages.py            # the report, about 4 minutes on 2 cores
    python3 benchmarks/web_pages.py --quick    # 3,000 events in 100 issues, 30 rounds (20 s)
    python3 benchmarks/web_pages.py --keep     # keep the seeded data dir (its path is printed)
    python3 benchmarks/web_pages.py --reuse DIR --requests 50   # measure a kept data dir again

(A kept data dir holds the bootstrap admin's password in ``benchmark-admin-password``, for
``--reuse``.)

It runs in the project's ``.venv`` (``dev.ensure_venv()``, as ``python3 dev.py test`` makes
it), re-executing itself there. Nothing is asserted: this is a report. The table is printed and
the raw numbers go to ``benchmarks/results/web_pages.json``.

Seeding (a fresh data dir in a temporary directory, SQLite): migrate and bootstrap as ``bugnet
serve`` does on its first start, then two projects made with ``bugnet project create`` (``shop``
with about nine issues in ten, ``billing-worker`` with the rest; the bootstrap's ``default``
project stays empty). Every event goes the production way, in process: a Python error event
as sentry-sdk's Django integration sends it (exception with 5 frames, 3 of them in-app, each
with source context and locals; request with headers; user; breadcrumbs; contexts; modules;
tags ``browser``, ``os.name``, ``feature`` plus ``server_name``, ``environment`` and ``release``;
about one issue in ten is a logged message instead), in its own envelope, read by ingest's
envelope reader and queued by ingest's ``store()`` (250 envelopes to a commit), then digested
by the digest worker's ``run_once()``. So ``Issue``, ``Event`` (normalized, compressed),
``TagValue``, ``HourlyCount``, ``IssueActivity`` and ``Outcome`` rows are exactly what
production writes (the outcome counts compacted every 10,000 events, as the worker does
every minute); nothing is bulk-copied: 100,000 events take about 2 minutes on 2 cores.

The shape: issue sizes follow a Zipf law (exponent 1.5, at least one event each), so the
hottest issues hold tens of thousands of events (39,237, 13,869, 7,550...), the median issue
4 and about one in eight just one. The five hottest
issues have events over the whole last 30 days; the others start at a random moment of those
30 days and either go on until now or stop at a random moment. Events are sent in time order,
each received a second or two after it happened. Releases change every 3 days (one event in
ten from the previous release), 85 % production / 15 % staging, 20,000 users (15 % of events
anonymous, counted by IP). Then, as a team would, issues quiet for 2 days are resolved (half of
them) or ignored (one in ten) through ``issues.state``. No ``ANALYZE`` is run: Bugnet does not.

Measured pages (the project list is ``shop``'s):

- the project issue list: default (unresolved, last seen), ``?sort=freq``, a tag search
  ``?query=browser:Firefox`` and ``?stats=14d``; the all-projects list ``/issues/``;
- the issue page of the hottest issue (tens of thousands of events, thousands of distinct
  users) and of a small unresolved one (3 events, or as near as there is), and one event of
  the hottest issue 20 days old.

Over HTTP: a real ``bugnet serve`` on the seeded data dir with its SQLite defaults (one
gunicorn worker with 32 threads, the digest process beside it), signed in through the login
form with the bootstrap admin's password; one client on one keep-alive connection, sequential.
In process: Django's test ``Client`` with ``force_login`` on the same database (the whole
middleware stack, view and template, no HTTP), which separates the render time from the HTTP
overhead. 20 warm-up rounds, then 200 rounds; in each, every page is requested once over HTTP,
then once in process (so a load spike on the machine hits all pages and both sides alike).
Time per request: from writing it to reading the whole answer. Then, with the server stopped,
five more in-process requests per page with every statement timed (count, time in
``execute()`` of the median request, its slowest statement). The target column judges the
HTTP p95.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import http.cookiejar
import io
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "web_pages.json"
TARGET_MS = 100.0
DAY = 86400.0

# --------------------------------------------------------------------------- bootstrap


def in_project_venv() -> bool:
    sys.path.insert(0, str(ROOT))
    import dev

    return Path(sys.prefix).resolve() == dev.VENV.resolve()


def reexec_in_venv() -> None:
    import dev

    python = dev.ensure_venv()
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def server_env(data_dir: Path, base_url: str) -> dict[str, str]:
    """The environment of a Bugnet on SQLite in ``data_dir`` (nothing inherited that says
    otherwise: no DATABASE_URL, no other BUGNET_ variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUGNET_", "SENTRY_"))}
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(BUGNET_DATA_DIR=str(data_dir), BUGNET_BASE_URL=base_url)
    return env


def setup_django(data_dir: Path, base_url: str) -> None:
    env = server_env(data_dir, base_url)
    for name in set(os.environ) - set(env):
        del os.environ[name]
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bugnet_server.settings"
    import django

    django.setup()


# --------------------------------------------------------------------------- the events

# fmt: off
AREAS = ["orders", "cart", "checkout", "payments", "inventory", "shipping", "accounts", "search",
         "catalog", "reviews", "coupons", "invoices", "emails", "reports", "webhooks", "auth",
         "pricing", "returns", "loyalty", "admin"]
VERBS = ["load", "save", "apply", "compute", "fetch", "parse", "validate", "reserve", "render",
         "sync", "refund", "notify", "export", "import", "merge", "split", "lookup", "update",
         "cancel", "schedule", "resolve", "encode", "decode", "charge", "retry", "build", "check",
         "format", "index", "archive"]
NOUNS = ["customer", "order", "invoice", "basket", "coupon", "address", "parcel", "refund",
         "receipt", "voucher", "product", "variant", "warehouse", "supplier", "tax_rate",
         "currency", "session", "token", "webhook", "report", "review", "rating", "discount",
         "bundle", "subscription", "plan", "card", "payout", "ledger", "shipment", "label",
         "carrier", "quote", "cart_line", "stock", "price", "catalog", "banner", "email", "sms"]
EXCEPTIONS = [
    ("KeyError", None, "'{noun}_id'"),
    ("ValueError", None, "invalid literal for int() with base 10: '{word}'"),
    ("TypeError", None, "unsupported operand type(s) for +: 'int' and 'NoneType'"),
    ("AttributeError", None, "'NoneType' object has no attribute '{noun}'"),
    ("ZeroDivisionError", None, "division by zero"),
    ("IndexError", None, "list index out of range"),
    ("RuntimeError", None, "{noun} service timed out after 30 s"),
    ("ConnectionError", "requests.exceptions",
     "HTTPSConnectionPool(host='{noun}.internal', port=443): Max retries exceeded"),
    ("IntegrityError", "django.db.utils", "UNIQUE constraint failed: shop_{noun}.reference"),
    ("OperationalError", "django.db.utils", "could not obtain lock on row in relation \"shop_{noun}\""),
    ("DoesNotExist", "shop.models", "{Noun} matching query does not exist."),
    ("JSONDecodeError", "json.decoder", "Expecting value: line 1 column {n} (char {m})"),
    ("UnicodeDecodeError", None,
     "'utf-8' codec can't decode byte 0x{hex} in position {n}: invalid start byte"),
    ("ValidationError", "django.core.exceptions", "['Enter a valid {noun}.']"),
    ("PermissionDenied", "django.core.exceptions", "{Noun} belongs to another account"),
]
BROWSERS = [("Chrome", 55), ("Firefox", 20), ("Safari", 15), ("Edge", 10)]
SYSTEMS = [("Windows", 40), ("macOS", 25), ("Linux", 10), ("iOS", 15), ("Android", 10)]
MODULES = {"django": "5.1.4", "asgiref": "3.8.1", "sqlparse": "0.5.3", "psycopg": "3.2.3",
           "gunicorn": "23.0.0", "requests": "2.32.3", "urllib3": "2.3.0", "certifi": "2024.12.14",
           "idna": "3.10", "charset-normalizer": "3.4.1", "sentry-sdk": "2.19.2",
           "celery": "5.4.0", "kombu": "5.4.2", "redis": "5.2.1", "pillow": "11.0.0",
           "stripe": "11.4.1", "pydantic": "2.10.4", "python-dateutil": "2.9.0.post0",
           "pytz": "2024.2", "six": "1.17.0", "whitenoise": "6.8.2", "shop": "2.0.0"}
INTEGRATIONS = ["argv", "atexit", "celery", "dedupe", "django", "excepthook", "logging",
                "modules", "redis", "stdlib", "threading"]
# fmt: on
RELEASE_DAYS = 3  # a new release every 3 days
ZIPF = 1.5  # of 100,000 events in 1,000 issues: 39,237, 13,869, 7,550...; median 4
USERS = 20_000


@dataclass
class Recipe:
    """One issue-to-be: what its events look like, how many, and when."""

    index: int
    project: str
    area: str
    verb: str
    noun: str
    exception: tuple[str, str | None, str] | None  # None: a logged message
    level: str
    count: int
    start: float
    end: float

    @property
    def function(self) -> str:
        return f"{self.verb}_{self.noun}"


def plan_issues(issues: int, events: int, now: float, rng: random.Random) -> list[Recipe]:
    """``issues`` recipes whose counts add up to ``events``: Zipf (``ZIPF``), at least one
    each (the hottest takes what rounding left over)."""
    weights = [1 / rank**ZIPF for rank in range(1, issues + 1)]
    scale = events / sum(weights)
    counts = [max(1, round(w * scale)) for w in weights]
    counts[0] += events - sum(counts)
    recipes = []
    for index, count in enumerate(counts):
        area = AREAS[(index * 7) % len(AREAS)]
        verb = VERBS[index % len(VERBS)]
        noun = NOUNS[(index // len(VERBS)) % len(NOUNS)]
        if index >= len(VERBS) * len(NOUNS):
            noun = f"{noun}_{index}"  # more issues than names: still one key each
        logged = index % 10 == 7
        exception = None if logged else EXCEPTIONS[(index * 5 + index // 15) % len(EXCEPTIONS)]
        level = rng.choice(["error", "warning"]) if logged else "error"
        if index < 5:  # the hot ones: all month long
            start, end = now - 29.5 * DAY, now - 60
        else:
            start = now - rng.uniform(0.05, 29.5) * DAY
            end = now - 60 if rng.random() < 0.4 else start + (now - start) * rng.random()
        project = "billing-worker" if index % 10 == 3 else "shop"
        recipes.append(Recipe(index, project, area, verb, noun, exception, level, count,
                              start, end))  # fmt: skip
    return recipes


def schedule(recipes: list[Recipe], rng: random.Random) -> list[tuple[float, Recipe]]:
    """Every event's moment, in time order."""
    moments = [
        (r.start + (r.end - r.start) * rng.random(), r) for r in recipes for _ in range(r.count)
    ]
    moments.sort(key=lambda pair: pair[0])
    return moments


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _pick(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _frame(path: str, module: str, function: str, lineno: int, line: str,
           variables: dict[str, Any], in_app: bool) -> dict[str, Any]:  # fmt: skip
    prefix = "/srv/shop/" if in_app else "/srv/shop/.venv/lib/python3.11/site-packages/"
    return {
        "filename": path,
        "abs_path": prefix + path,
        "function": function,
        "module": module,
        "lineno": lineno,
        "pre_context": [
            f"    def {function}(self, request, *args, **kwargs):" if not in_app else "",
            '        """Look the record up and apply the account\'s rules."""',
            "        rules = self.rules_for(request.user)",
            "        if rules is None:",
            "            return None",
        ],
        "context_line": line,
        "post_context": [
            "        self.audit('done', request.path)",
            "        return result",
            "",
            "",
            f"    def {function}_fallback(self, request):",
        ],
        "vars": variables,
        "in_app": in_app,
    }


def build_event(recipe: Recipe, moment: float, now: float, rng: random.Random) -> dict[str, Any]:
    """A Python error event as sentry-sdk's Django integration sends it (about 8 KiB)."""
    area, noun, function = recipe.area, recipe.noun, recipe.function
    ident = rng.randrange(10**6)
    path = f"/{area}/{noun.replace('_', '-')}/{ident}/"
    release_no = int((moment - (now - 30 * DAY)) // (RELEASE_DAYS * DAY))
    if rng.random() < 0.1:
        release_no -= 1  # a server still on the previous release
    browser, system = _pick(rng, BROWSERS), _pick(rng, SYSTEMS)
    server = f"web-{rng.randrange(1, 7)}"
    user: dict[str, Any]
    if rng.random() < 0.85:
        uid = rng.randrange(USERS)
        user = {"id": str(uid), "email": f"user{uid}@example.com",
                "ip_address": f"10.{uid % 256}.{uid // 256 % 256}.{rng.randrange(256)}"}  # fmt: skip
    else:
        user = {"ip_address": f"192.0.2.{rng.randrange(256)}"}
    request_repr = f"<WSGIRequest: GET '{path}'>"
    event: dict[str, Any] = {
        "event_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
        "timestamp": _iso(moment),
        "platform": "python",
        "level": recipe.level,
        "logger": f"shop.{area}",
        "transaction": f"/{area}/{noun.replace('_', '-')}/{{id}}/",
        "transaction_info": {"source": "route"},
        "server_name": server,
        "release": f"shop@2.{max(release_no, 0)}.0",
        "environment": "production" if rng.random() < 0.85 else "staging",
        "tags": {"browser": browser, "os.name": system, "feature": area},
        "user": user,
        "request": {
            "url": f"https://shop.example.com{path}",
            "method": "GET",
            "query_string": f"page={rng.randrange(1, 9)}&sort=recent",
            "headers": {
                "Host": "shop.example.com",
                "User-Agent": f"Mozilla/5.0 ({system}) {browser}/{rng.randrange(100, 131)}.0",
                "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                "Accept-Language": "en-GB,en;q=0.9",
                "Accept-Encoding": "gzip, deflate, br",
                "Referer": f"https://shop.example.com/{area}/",
                "X-Request-Id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                "Cookie": "[Filtered]",
            },
            "env": {"SERVER_NAME": server, "SERVER_PORT": "8000"},
        },
        "contexts": {
            "runtime": {"name": "CPython", "version": "3.11.7", "build": "3.11.7 (main)"},
            "trace": {
                "trace_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "span_id": f"{rng.getrandbits(64):016x}",
                "op": "http.server",
                "status": "internal_error",
            },
        },
        "sdk": {
            "name": "sentry.python.django",
            "version": "2.19.2",
            "integrations": INTEGRATIONS,
            "packages": [{"name": "pypi:sentry-sdk", "version": "2.19.2"}],
        },
        "modules": MODULES,
        "extra": {"sys.argv": ["/srv/shop/.venv/bin/gunicorn", "shop.wsgi", "-w", "4"]},
        "breadcrumbs": {"values": _breadcrumbs(recipe, moment, rng)},
    }
    if recipe.exception is None:
        template = f"{recipe.verb} {noun} failed for %s after %d attempts"
        params = [f"{noun}-{ident}", rng.randrange(2, 6)]
        event["logentry"] = {"message": template, "params": params,
                             "formatted": template % tuple(params)}  # fmt: skip
        return event
    kind, module, message = recipe.exception
    value = message.format(noun=noun, Noun=noun.capitalize(), word=f"{noun[:3]}{ident % 97}",
                           n=ident % 500, m=ident % 5000, hex=f"{ident % 256:02x}")  # fmt: skip
    handler = f"{noun}_detail"
    frames = [
        _frame("django/core/handlers/exception.py", "django.core.handlers.exception", "inner",
               55, "                response = get_response(request)",
               {"exc": f"{kind}({value!r})", "request": request_repr,
                "get_response": "<bound method BaseHandler._get_response of "
                                "<django.core.handlers.wsgi.WSGIHandler object at 0x7f3a2c1d5e50>>"},
               in_app=False),
        _frame("django/core/handlers/base.py", "django.core.handlers.base", "_get_response", 197,
               "                response = wrapped_callback(request, *callback_args, **callback_kwargs)",
               {"callback": f"<function {handler} at 0x7f3a2b9e{ident % 4096:04x}>",
                "callback_args": [], "callback_kwargs": {f"{noun}_id": str(ident)},
                "middleware_method": "<bound method CsrfViewMiddleware.process_view>",
                "request": request_repr, "response": "None",
                "self": "<django.core.handlers.wsgi.WSGIHandler object at 0x7f3a2c1d5e50>",
                "wrapped_callback": f"<function {handler} at 0x7f3a2b9e{ident % 4096:04x}>"},
               in_app=False),
        _frame(f"shop/{area}/views.py", f"shop.{area}.views", handler, 41 + recipe.index % 80,
               f"        result = services.{function}(request.user, {noun}_id)",
               {"request": request_repr, f"{noun}_id": str(ident),
                "self": f"<shop.{area}.views.{noun.capitalize()}View object at 0x7f3a29c0d910>"},
               in_app=True),
        _frame(f"shop/{area}/services.py", f"shop.{area}.services", function,
               120 + recipe.index % 200, f"        totals = _{function}_rows(account, {noun})",
               {"account": f"<Account id={rng.randrange(10**5)} plan='pro' region='eu-west'>",
                noun: f"<{noun.capitalize()} id={ident} status='open' lines={rng.randrange(1, 9)}>",
                "rules": "<PricingRules version=7 currency='EUR'>",
                "attempt": str(rng.randrange(1, 4))},
               in_app=True),
        _frame(f"shop/{area}/rows.py", f"shop.{area}.rows", f"_{function}_rows",
               30 + recipe.index % 60, f"        total += line.amount / line.{noun}_factor",
               {"line": f"{{'sku': 'SKU-{rng.randrange(10**5):05d}', 'qty': {rng.randrange(1, 9)}}}",
                "total": str(rng.randrange(10_000)), "rows": f"[<Row {ident}>, <Row {ident + 1}>]"},
               in_app=True),
    ]  # fmt: skip
    event["exception"] = {"values": [{
        "type": kind, "value": value, "module": module,
        "mechanism": {"type": "django", "handled": False},
        "stacktrace": {"frames": frames},
    }]}  # fmt: skip
    return event


def _breadcrumbs(recipe: Recipe, moment: float, rng: random.Random) -> list[dict[str, Any]]:
    crumbs = []
    count = rng.randrange(6, 20)
    for n in range(count):
        at = _iso(moment - (count - n) * 0.05)
        roll = rng.random()
        if roll < 0.6:
            crumbs.append({"type": "default", "category": "query", "timestamp": at, "data": {},
                           "message": f'SELECT "shop_{recipe.noun}"."id", "shop_{recipe.noun}".'
                                      f'"status" FROM "shop_{recipe.noun}" WHERE "shop_'
                                      f'{recipe.noun}"."id" = %s LIMIT 21'})  # fmt: skip
        elif roll < 0.8:
            crumbs.append({"type": "http", "category": "httplib", "timestamp": at,
                           "data": {"http.method": "GET", "status_code": 200, "reason": "OK",
                                    "url": f"https://rates.example.com/v2/rates?ccy=EUR&"
                                           f"req={rng.randrange(10**9)}"}})  # fmt: skip
        else:
            crumbs.append({"type": "default", "category": f"shop.{recipe.area}", "level": "info",
                           "timestamp": at, "message": f"{recipe.noun} {rng.randrange(10**6)} "
                                                       f"loaded for account {rng.randrange(10**5)}"})  # fmt: skip
    return crumbs


def envelope(event: dict[str, Any], sent_at: float) -> bytes:
    """The envelope sentry-sdk sends for ``event`` (uncompressed: the body's encoding is
    ingest's HTTP layer, not what it stores)."""
    import orjson

    payload = orjson.dumps(event)
    header = {"event_id": event["event_id"], "sent_at": _iso(sent_at),
              "sdk": {"name": "sentry.python.django", "version": "2.19.2"},
              "trace": {"trace_id": event["contexts"]["trace"]["trace_id"],
                        "environment": event["environment"], "release": event["release"]}}  # fmt: skip
    item = {"type": "event", "content_type": "application/json", "length": len(payload)}
    return b"\n".join([orjson.dumps(header), orjson.dumps(item), payload, b""])


# --------------------------------------------------------------------------- seeding


@dataclass
class Seeded:
    password: str
    seconds: dict[str, float] = field(default_factory=dict)
    event_bytes: list[int] = field(default_factory=list)


def seed(issues: int, events: int, commit_every: int = 250) -> Seeded:
    """Migrate, bootstrap, create the projects and send every event through ingest and digest."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from bugnet_server.digest import worker
    from bugnet_server.digest.compaction import compact_outcomes
    from bugnet_server.ingest import envelopes, store
    from bugnet_server.projects.models import Project
    from bugnet_server.runtime.bootstrap import bootstrap

    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    first = bootstrap()
    assert first is not None, "the data dir was not empty"
    for name in ("Shop", "Billing worker"):
        call_command("project", "create", name, stdout=io.StringIO())
    projects = dict(Project.objects.values_list("slug", "id"))
    result = Seeded(first.password)
    result.seconds["setup"] = time.monotonic() - started

    rng = random.Random(20261121)
    now = time.time()
    recipes = plan_issues(issues, events, now, rng)
    moments = schedule(recipes, rng)
    building = storing = digesting = 0.0
    done = 0
    with connection.cursor() as cursor:
        # The digest worker relaxes its connection to synchronous=NORMAL (``_relax_sqlite_sync``)
        # while ingest commits with FULL; here one connection does both, so NORMAL. The rows
        # written are the same either way, only the fsyncs differ.
        cursor.execute("PRAGMA synchronous=NORMAL")
    for offset in range(0, len(moments), commit_every):
        chunk = moments[offset : offset + commit_every]
        t0 = time.perf_counter()
        bodies = []
        for moment, recipe in chunk:
            received = moment + rng.uniform(0.05, 2.0)
            body = envelope(build_event(recipe, moment, now, rng), received - 0.01)
            bodies.append((projects[recipe.project], received, body))
        t1 = time.perf_counter()
        with transaction.atomic():  # one commit for the chunk, as ingest's group commit does
            for project_id, received, body in bodies:
                parsed = envelopes.read_envelope(iter([body]))
                queued = [
                    (str(parsed.headers["event_id"]), payload) for _h, payload in parsed.events
                ]
                result.event_bytes.extend(len(payload) for _id, payload in queued)
                counts = {(category, "accepted"): n for category, n in parsed.counted.items()}
                store.store(project_id, queued, counts, received_at=received,
                            sent_at=str(parsed.headers["sent_at"]), client_ip="10.0.0.1")  # fmt: skip
        t2 = time.perf_counter()
        while worker.run_once():
            pass
        if (offset // commit_every) % 40 == 39 or offset + commit_every >= len(moments):
            compact_outcomes()  # the worker does it every minute
        t3 = time.perf_counter()
        building, storing, digesting = building + t1 - t0, storing + t2 - t1, digesting + t3 - t2
        done += len(chunk)
        if done * 10 // len(moments) != (done - len(chunk)) * 10 // len(moments):
            print(f"  seeded {done:,} of {len(moments):,} events "
                  f"({time.monotonic() - started:.0f} s)", flush=True)  # fmt: skip
    result.seconds.update(build=building, ingest_store=storing, digest=digesting)
    t0 = time.monotonic()
    settle_states(now, rng)
    result.seconds["states"] = time.monotonic() - t0
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    result.seconds["total"] = time.monotonic() - started
    return result


def settle_states(now: float, rng: random.Random) -> None:
    """Resolve (half) or ignore (one in ten) the issues quiet for 2 days, as the admin."""
    from django.contrib.auth import get_user_model

    from bugnet_server.issues import state
    from bugnet_server.issues.models import Issue

    admin = get_user_model().objects.get(is_superuser=True)
    quiet = dt.datetime.fromtimestamp(now - 2 * DAY, dt.timezone.utc)
    for issue in Issue.objects.filter(last_seen__lt=quiet).order_by("id"):
        roll = rng.random()
        if roll < 0.5:
            state.resolve(issue, admin)
        elif roll < 0.6:
            state.ignore(issue, admin)


def data_shape(data_dir: Path, seeded: Seeded | None) -> dict[str, Any]:
    from django.db import connection
    from django.db.models import Count

    from bugnet_server.issues.models import Event, HourlyCount, Issue, IssueActivity, TagValue

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.execute("SELECT AVG(LENGTH(data)) FROM issues_event")
        stored_mean = cursor.fetchone()[0] or 0
    hot = Issue.objects.order_by("-times_seen").first()
    sizes = sorted(Issue.objects.values_list("times_seen", flat=True))
    db = data_dir / "bugnet.sqlite3"
    shape = {
        "events": Event.objects.count(),
        "issues": Issue.objects.count(),
        "issues_by_status": dict(Issue.objects.values_list("status").annotate(n=Count("id"))),
        "tag_values": TagValue.objects.count(),
        "hourly_counts": HourlyCount.objects.count(),
        "activity": IssueActivity.objects.count(),
        "hottest_issue_events": hot.times_seen if hot else 0,
        "hottest_issue_tag_values": TagValue.objects.filter(issue=hot).count() if hot else 0,
        "top5_issue_events": sizes[-5:][::-1],
        "median_issue_events": sizes[len(sizes) // 2] if sizes else 0,
        "stored_event_bytes_mean": round(stored_mean),
        "db_mib": round(
            sum(p.stat().st_size for p in data_dir.glob("bugnet.sqlite3*") if p.is_file()) / 2**20,
            1,
        ),
        "db_file": str(db),
    }
    if seeded is not None and seeded.event_bytes:
        shape["event_json_bytes_mean"] = round(statistics.mean(seeded.event_bytes))
    return shape


# --------------------------------------------------------------------------- the pages


@dataclass
class PageSpec:
    name: str
    path: str


def pages_to_measure() -> list[PageSpec]:
    from bugnet_server.issues.models import Event, Issue

    shop = Issue.objects.filter(project__slug="shop")
    hot = shop.order_by("-times_seen", "id").first()
    assert hot is not None, "nothing was seeded"
    # A small one: unresolved, 3 events or as near as there is, the most recently seen.
    candidates = shop.filter(status="unresolved", times_seen__lte=10).order_by("-last_seen")
    small = min(candidates, key=lambda issue: abs(issue.times_seen - 3), default=None)
    small = small or shop.order_by("times_seen").first()
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=20)
    older = (Event.objects.filter(issue=hot, timestamp__lte=cutoff).order_by("-timestamp").first()
             or Event.objects.filter(issue=hot).order_by("timestamp").first())  # fmt: skip
    assert small is not None
    assert older is not None
    base = "/projects/default/shop/"
    return [
        PageSpec("project list (unresolved, last seen)", base),
        PageSpec("project list, ?sort=freq", base + "?sort=freq"),
        PageSpec("project list, ?query=browser:Firefox", base + "?query=browser%3AFirefox"),
        PageSpec("project list, ?stats=14d", base + "?stats=14d"),
        PageSpec("all projects, /issues/", "/issues/"),
        PageSpec(f"issue page, hottest ({hot.times_seen:,} events)", f"/issues/{hot.pk}/"),
        PageSpec(f"issue page, small ({small.times_seen} events)", f"/issues/{small.pk}/"),
        PageSpec(f"hottest issue, event of {older.timestamp:%b %d} ({_days_ago(older.timestamp)})",
                 f"/issues/{hot.pk}/events/{older.event_id}/"),
    ]  # fmt: skip


def _days_ago(moment: dt.datetime) -> str:
    return f"{(dt.datetime.now(dt.timezone.utc) - moment).days} days old"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 0.50), 2), "p95": round(percentile(values, 0.95), 2),
            "p99": round(percentile(values, 0.99), 2), "max": round(max(values), 2),
            "mean": round(statistics.mean(values), 2)}  # fmt: skip


Getter = Callable[[str], tuple[int, int]]  # path -> (status, body bytes)


def rounds(
    sides: dict[str, Getter], pages: list[PageSpec], warmup: int, requests: int
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """``warmup`` then ``requests`` rounds; in each, every side requests every page once.
    Returns side -> page path -> {"wall": ms, "cpu": ms of this process} per timed request."""
    times = {side: {page.path: {"wall": [], "cpu": []} for page in pages} for side in sides}
    for index in range(warmup + requests):
        for side, get in sides.items():
            for page in pages:
                started, cpu_started = time.perf_counter(), time.process_time()
                status, _size = get(page.path)
                elapsed = (time.perf_counter() - started) * 1000
                cpu_spent = (time.process_time() - cpu_started) * 1000
                if status != 200:
                    raise RuntimeError(f"{side}: GET {page.path} answered {status}")
                if index >= warmup:
                    times[side][page.path]["wall"].append(elapsed)
                    times[side][page.path]["cpu"].append(cpu_spent)
    return times


# --------------------------------------------------------------------------- over HTTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``bugnet serve`` on the seeded data dir, its SQLite defaults (workers, threads)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bugnet_server.cli", "serve", "--bind", f"127.0.0.1:{port}"],
            env=server_env(data_dir, self.url), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            self._wait_started()
        except BaseException:
            self.stop()
            raise

    def _wait_started(self) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith("serving on"):
                break
        # Keep reading what it prints, so a full pipe never blocks it.
        threading.Thread(target=lambda: self.output.extend(self.process.stdout),  # type: ignore[arg-type]
                         daemon=True).start()  # fmt: skip
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("bugnet serve exited:\n" + "".join(self.output[-40:]))
            try:
                with urllib.request.urlopen(self.url + "/_health/", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("bugnet serve did not become healthy:\n" + "".join(self.output[-40:]))

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def sign_in(base_url: str, email: str, password: str) -> str:
    """The login form, as a browser fills it; returns the Cookie header it leaves."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base_url + "/login/", timeout=30) as answer:
        form = answer.read().decode()
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert found, "no CSRF token on the login form"
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": found.group(1), "username": email,
                                   "password": password}).encode()  # fmt: skip
    request = urllib.request.Request(base_url + "/login/", body, {"Referer": base_url + "/login/"})
    with opener.open(request, timeout=30) as answer:
        landed = answer.read().decode()
    if "Sign in to Bugnet" in landed or not any(c.name == "sessionid" for c in jar):
        raise RuntimeError("the login failed")
    return "; ".join(f"{c.name}={c.value}" for c in jar)


class KeepAliveClient:
    """GETs on one keep-alive connection (reopened, untimed, if the server closed it)."""

    def __init__(self, base_url: str, cookie: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Cookie": cookie, "Accept": "text/html", "User-Agent": "web_pages.py"}
        self.connection = self._connect()
        self.reconnects = 0

    def _connect(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def get(self, path: str) -> tuple[int, int]:
        try:
            self.connection.request("GET", path, headers=self.headers)
            answer = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
            self.connection.close()
            self.connection = self._connect()
            self.reconnects += 1
            self.connection.request("GET", path, headers=self.headers)
            answer = self.connection.getresponse()
        body = answer.read()
        if answer.getheader("Connection", "").lower() == "close":
            self.connection.close()
            self.connection = self._connect()
            self.reconnects += 1
        return answer.status, len(body)

    def close(self) -> None:
        self.connection.close()


def measure(
    data_dir: Path, password: str, pages: list[PageSpec], warmup: int, requests: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rounds over HTTP against ``bugnet serve`` and in process through Django's test
    client, interleaved (so both see the same load on the machine); then, with the server
    stopped, each page's statements."""
    from django.db import connections

    from bugnet_server.runtime.bootstrap import ADMIN_EMAIL

    connections.close_all()
    local = in_process_client()
    server = Server(data_dir, free_port())
    try:
        remote = KeepAliveClient(server.url, sign_in(server.url, ADMIN_EMAIL, password))
        sizes = {page.path: remote.get(page.path)[1] for page in pages}
        times = rounds({"http": remote.get, "in_process": local}, pages, warmup, requests)
        remote.close()
        info = {"reconnects": remote.reconnects, "html_bytes": sizes,
                "server_output_tail": [line.rstrip() for line in server.output[-10:]]}  # fmt: skip
    finally:
        server.stop()
    info["queries"] = statements_of(local, pages)
    return times, info


# --------------------------------------------------------------------------- in process


def in_process_client() -> Getter:
    """GETs through Django's test client as the bootstrap admin (``force_login``): the whole
    middleware stack, view and template, no HTTP."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(is_superuser=True))

    def get(path: str) -> tuple[int, int]:
        answer = client.get(path)
        return answer.status_code, len(answer.content)

    return get


def statements_of(get: Getter, pages: list[PageSpec], requests: int = 5) -> dict[str, Any]:
    """Per page, ``requests`` requests with every statement timed; the one with the median
    time in SQL is kept: its statement count, that time and its slowest statement. The time is
    that of ``execute()``: on SQLite it runs a statement up to its first row, so for a long
    result the remaining rows (and Django's conversion of them) are not in it."""
    from django.db import connection

    statements: list[tuple[float, str]] = []

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append(((time.perf_counter() - started) * 1000, sql))

    queries: dict[str, Any] = {}
    for page in pages:
        captured = []
        for _ in range(requests):
            statements = []
            with connection.execute_wrapper(timed):
                get(page.path)
            captured.append((sum(ms for ms, _sql in statements), statements))
        captured.sort(key=lambda pair: pair[0])
        total, median = captured[len(captured) // 2]
        slowest = max(median, default=(0.0, ""))
        queries[page.path] = {
            "queries": len(median),
            "sql_ms": round(total, 2),
            "slowest_ms": round(slowest[0], 2),
            "slowest_sql": slowest[1][:800],
            "statements": [[round(ms, 2), sql[:200]] for ms, sql in median],
        }
    return queries


# --------------------------------------------------------------------------- report


def fmt_ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def report(run: dict[str, Any]) -> list[str]:
    shape, machine = run["shape"], run["machine"]
    load = machine["loadavg"]
    lines = [
        f"### Web UI pages on SQLite: {shape['events']:,} events in {shape['issues']:,} issues "
        f"({machine['cores']} cores, Python {machine['python']})",
        "",
        f"One client, {run['config']['requests']} requests a page after "
        f"{run['config']['warmup']} warm-up rounds, over HTTP against `bugnet serve` (SQLite "
        "defaults) and in process through Django's test client, interleaved. Statements: count "
        "(ms in execute) of one request. Target: HTTP p95 < 100 ms.",
        "",
        "| page | HTTP p50 | HTTP p95 | HTTP p99 | in-process p50 | in-process p95 "
        "| statements (ms) | HTML | p95 < 100 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for page in run["pages"]:
        web, local, q = page["http"], page["in_process"], page["queries"]
        verdict = "met" if web["p95"] < TARGET_MS else "**not met**"
        lines.append(
            f"| {page['name']} | {fmt_ms(web['p50'])} | {fmt_ms(web['p95'])} | "
            f"{fmt_ms(web['p99'])} | {fmt_ms(local['p50'])} | {fmt_ms(local['p95'])} | "
            f"{q['queries']} ({q['sql_ms']:.1f}) | {page['html_kib']:.0f} KiB | {verdict} |"
        )
    status = ", ".join(f"{n:,} {s}" for s, n in sorted(shape["issues_by_status"].items()))
    seeded = run.get("seeding") or {}
    lines += [
        "",
        f"Data: {shape['events']:,} events in {shape['issues']:,} issues ({status}); hottest "
        f"issues {', '.join(f'{n:,}' for n in shape['top5_issue_events'])} events, median "
        f"{shape['median_issue_events']}; {shape['tag_values']:,} tag values (hottest issue: "
        f"{shape['hottest_issue_tag_values']:,}), {shape['hourly_counts']:,} hourly counts, "
        f"{shape['activity']:,} activity rows; stored event {shape['stored_event_bytes_mean']:,} "
        f"bytes compressed"
        + (
            f" ({shape['event_json_bytes_mean']:,} bytes of JSON)"
            if "event_json_bytes_mean" in shape
            else ""
        )
        + f"; database {shape['db_mib']} MiB.",
    ]
    if seeded:
        s = seeded["seconds"]
        lines.append(
            f"Seeding through ingest's envelope reader and store() and the digest's run_once(): "
            f"{s['total']:.0f} s ({s['build']:.0f} s building events, {s['ingest_store']:.0f} s "
            f"ingest, {s['digest']:.0f} s digest: {seeded['digest_events_per_s']:,.0f} events/s)."
        )
    lines.append(
        f"Load average {load['start'][0]:.2f} at the start, {load['before_rounds'][0]:.2f} "
        f"before the rounds, {load['end'][0]:.2f} at the end (1-minute; {machine['cores']} cores)."
    )
    cpu = ", ".join(f"{fmt_ms(p['in_process_cpu']['p50'])}" for p in run["pages"])
    lines.append(f"In-process CPU time per request, median, in the table's order: {cpu}.")
    for note in run["notes"]:
        lines.append(f"- {note}")
    return lines


def slow_notes(run: dict[str, Any]) -> list[str]:
    notes = []
    for page in run["pages"]:
        q = page["queries"]
        if page["http"]["p95"] >= TARGET_MS or q["slowest_ms"] >= 20:
            notes.append(f"{page['name']}: slowest query {q['slowest_ms']:.1f} ms of "
                         f"{q['sql_ms']:.1f} ms in SQL: {q['slowest_sql'][:300]}")  # fmt: skip
    return notes


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3,000 events in 100 issues, 5 + 30 rounds: checks the harness")  # fmt: skip
    parser.add_argument("--issues", type=int, default=0, help="issues to seed (default 1,000)")
    parser.add_argument("--events", type=int, default=0, help="events to seed (default 100,000)")
    parser.add_argument("--requests", type=int, default=0, help="timed requests a page (200)")
    parser.add_argument("--warmup", type=int, default=-1, help="warm-up rounds (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the seeded data dir")
    parser.add_argument("--reuse", type=Path, help="measure this kept data dir, no seeding")
    args = parser.parse_args()
    args.issues = args.issues or (100 if args.quick else 1000)
    args.events = args.events or (3000 if args.quick else 100_000)
    args.requests = args.requests or (30 if args.quick else 200)
    args.warmup = args.warmup if args.warmup >= 0 else (5 if args.quick else 20)
    if args.reuse and not (args.reuse / "bugnet.sqlite3").exists():
        parser.error(f"{args.reuse} holds no bugnet.sqlite3")
    return args


def main() -> None:
    args = parse_args()
    if not in_project_venv():
        reexec_in_venv()
    started = time.monotonic()
    loadavg = {"start": os.getloadavg()}
    data_dir = (
        args.reuse.resolve() if args.reuse else Path(tempfile.mkdtemp(prefix="bugnet-web-bench-"))
    )
    password_file = data_dir / "benchmark-admin-password"
    setup_django(data_dir, "http://127.0.0.1:8000")
    run: dict[str, Any] = {
        "machine": {"cores": os.cpu_count() or 1, "python": platform.python_version(),
                    "platform": platform.platform()},
        "config": {"issues": args.issues, "events": args.events, "requests": args.requests,
                   "warmup": args.warmup, "quick": args.quick, "reused": bool(args.reuse)},
        "notes": [],
    }  # fmt: skip
    try:
        seeded = None
        if args.reuse:
            password = password_file.read_text().strip()
            run["notes"].append(f"measured a kept data dir ({data_dir}), not seeded in this run")
        else:
            print(f"seeding {args.events:,} events in {args.issues:,} issues ...", flush=True)
            seeded = seed(args.issues, args.events)
            password = seeded.password
            password_file.write_text(password + "\n")
            run["seeding"] = {
                "seconds": {k: round(v, 1) for k, v in seeded.seconds.items()},
                "digest_events_per_s": round(args.events / max(seeded.seconds["digest"], 1e-9)),
                "path": "envelope -> ingest envelopes.read_envelope + store.store -> "
                "digest worker.run_once",
            }
        run["shape"] = data_shape(data_dir, seeded)
        pages = pages_to_measure()
        print(f"measuring {len(pages)} pages over HTTP and in process: {args.warmup} + "
              f"{args.requests} rounds ...", flush=True)  # fmt: skip
        loadavg["before_rounds"] = os.getloadavg()
        times, info = measure(data_dir, password, pages, args.warmup, args.requests)
        loadavg["end"] = os.getloadavg()
        run["machine"]["loadavg"] = {k: [round(x, 2) for x in v] for k, v in loadavg.items()}
        run["http"] = {"reconnects": info["reconnects"],
                       "server_output_tail": info["server_output_tail"]}  # fmt: skip
        run["pages"] = [
            {"name": page.name, "path": page.path,
             "http": summary(times["http"][page.path]["wall"]),
             "in_process": summary(times["in_process"][page.path]["wall"]),
             "in_process_cpu": summary(times["in_process"][page.path]["cpu"]),
             "queries": info["queries"][page.path],
             "html_kib": round(info["html_bytes"][page.path] / 1024, 1)}
            for page in pages
        ]  # fmt: skip
        run["notes"] += slow_notes(run)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep and not args.reuse:
            shutil.rmtree(data_dir, ignore_errors=True)
    run["seconds"] = round(time.monotonic() - started, 1)
    print("\n" + "\n".join(report(run)) + f"\n\n(run took {run['seconds']:.0f} s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(run, indent=2, default=str) + "\n")
    kept = f"; data dir kept in {data_dir}" if args.keep else ""
    print(f"raw numbers: {RESULTS.relative_to(ROOT)}{kept}")


if __name__ == "__main__":
    main()
