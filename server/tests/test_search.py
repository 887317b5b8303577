"""The issue search language over real HTTP: pasted titles, quotes, negation, tag keys with a
colon, and what is refused."""

from __future__ import annotations

import json
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
