"""The issue search language over real HTTP: pasted titles, quotes, negation, tag keys with a
colon, and what is refused."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from conftest import Server
from test_api import Api, last_line
from test_limits import new_project, send, wait_digested

EVENTS = [
    ("ZeroDivisionError", "division by zero", {"tenant": "A-1"}),
    ("KeyError", "'url'", {"tenant": "B-2", "deploy:zone": "eu-1"}),
    ("ValueError", "can't parse 'x'", {"tenant": "B-2"}),
]


@pytest.fixture(scope="module")
def searchable(server: Server) -> tuple[Api, str]:
    slug, dsn, key = new_project(server)
    for kind, value, tags in EVENTS:
        event_id = uuid.uuid4().hex
        payload = {"event_id": event_id, "level": "error", "tags": tags,
                   "exception": {"values": [{"type": kind, "value": value}]}}  # fmt: skip
        body = f'{{"event_id":"{event_id}"}}\n{{"type":"event"}}\n{json.dumps(payload)}\n'
        assert send(server, dsn.rsplit("/", 1)[1], key, body.encode())[0] == 200
    wait_digested(server)
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    return api, f"/api/0/projects/default/{slug}/issues/?query="


def titles(searchable: tuple[Api, str], query: str) -> list[str]:
    api, path = searchable
    found: list[dict[str, Any]] = api.get(path + quote(query))
    return sorted(issue["title"] for issue in found)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("KeyError: 'url'", ["KeyError: 'url'"]),  # a pasted title: words, not a tag "KeyError"
        ('"ZeroDivisionError: division by zero"', ["ZeroDivisionError: division by zero"]),
        ("can't", ["ValueError: can't parse 'x'"]),  # an apostrophe is a plain character
        ("tenant:B-2", ["KeyError: 'url'", "ValueError: can't parse 'x'"]),
        ("!tenant:B-2", ["ZeroDivisionError: division by zero"]),
        ("is:unresolved !tenant:A-1 parse", ["ValueError: can't parse 'x'"]),
        ("!is:unresolved", []),
        ("tags[deploy:zone]:eu-1", ["KeyError: 'url'"]),
        ('"deploy:zone":eu-1', ["KeyError: 'url'"]),
        ('tenant:"A-1"', ["ZeroDivisionError: division by zero"]),
    ],
)
def test_search_terms(searchable, query, expected):
    assert titles(searchable, query) == expected


@pytest.mark.parametrize(("query", "says"), [('"unclosed', "never closed"), ("is:bogus", "is:")])
def test_a_query_that_cannot_be_read_is_a_400_that_says_why(searchable, query, says):
    api, path = searchable
    status, answer, _ = api.call("GET", path + quote(query))
    assert status == 400
    assert says in answer["detail"]


def next_cursor(headers: Any) -> str | None:
    link = headers["Link"].split('rel="next"; results="')[1]
    return link.split('cursor="')[1].split('"')[0] if link.startswith("true") else None


def test_paging_neither_repeats_nor_skips_when_an_issue_moves_up(server):
    """Pages are keyed on (last seen, id): an event arriving between two pages moves its issue
    to the top, not every issue below it down a page."""
    slug, dsn, key = new_project(server)
    project_id = dsn.rsplit("/", 1)[1]

    def report(word: str, seconds_ago: float) -> None:
        event_id = uuid.uuid4().hex
        when = time.time() - seconds_ago
        payload = {"event_id": event_id, "message": f"bug in {word}", "timestamp": when}
        body = f'{{"event_id":"{event_id}"}}\n{{"type":"event"}}\n{json.dumps(payload)}\n'
        assert send(server, project_id, key, body.encode())[0] == 200

    for word, seconds_ago in [("alpha", 10), ("bravo", 20), ("charlie", 30)]:
        report(word, seconds_ago)
    wait_digested(server)
    api = Api(server, last_line(server.bugnet("token", "create", "admin@bugnet.local")))
    path = f"/api/0/projects/default/{slug}/issues/?limit=1"
    status, first, headers = api.call("GET", path)
    assert (status, [i["title"] for i in first]) == (200, ["bug in alpha"])
    report("charlie", 0)  # charlie is now the newest
    wait_digested(server)
    seen = [first[0]["title"]]
    cursor = next_cursor(headers)
    while cursor is not None:
        status, rows, headers = api.call("GET", f"{path}&cursor={quote(cursor)}")
        assert status == 200
        seen += [i["title"] for i in rows]
        cursor = next_cursor(headers)
    assert seen == ["bug in alpha", "bug in bravo"]  # no repeat; charlie moved above the cursor
    assert [i["title"] for i in api.get(path)] == ["bug in charlie"]
