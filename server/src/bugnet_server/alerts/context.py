"""What an alert says, built once when it fires and kept with it (``Alert.context``), so every
channel, every retry and the alert's history show the same thing.

The shape is the generic webhook's payload (design.md §4.4), with a few more fields the other
channels use: the top in-app frame, the rule, and for a spike its numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
from django.conf import settings

from bugnet_server.digest.accessors import crash_frame
from bugnet_server.ingest.store import decompress
from bugnet_server.issues.models import Event, Issue
from bugnet_server.issues.summary import iso, issue_fields, project_fields

FRAME_FIELDS = ("filename", "abs_path", "module", "function", "lineno", "context_line")


def issue_part(issue: Issue) -> dict[str, Any]:
    return {**issue_fields(issue), "count": issue.times_seen}


def top_frame(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stack's top in-app frame (where it broke), with its line of source."""
    try:
        frame = crash_frame(data)
    except (TypeError, ValueError, AttributeError):
        return None
    if not frame:
        return None
    picked = {name: frame.get(name) for name in FRAME_FIELDS if frame.get(name) is not None}
    for name, value in picked.items():
        if name != "lineno":
            picked[name] = str(value)[:300]
        elif not isinstance(value, int):
            picked.pop(name, None)
            break
    return picked or None


def event_part(event: Event | None, event_id: str) -> dict[str, Any]:
    if event is None:
        return {"eventID": event_id, "release": None, "environment": None, "frame": None}
    try:
        data: Any = orjson.loads(decompress(event.data))
    except (orjson.JSONDecodeError, ValueError, TypeError):
        data = {}
    return {
        "eventID": event.event_id,
        "release": event.release or None,
        "environment": event.environment or None,
        "level": event.level,
        "timestamp": iso(event.timestamp),
        "frame": top_frame(data) if isinstance(data, dict) else None,
    }


def build(
    rule: Any, issue: Issue, action: str, event: Event | None, event_id: str = "", **extra: Any
) -> dict[str, Any]:
    return {
        "action": action,
        "project": project_fields(issue.project),
        "issue": issue_part(issue),
        "event": event_part(event, event_id),
        "rule": {"id": str(rule.id), "name": rule.name},
        **extra,
    }


def sample(rule: Any) -> dict[str, Any]:
    """A made-up alert for the "send test alert" button: clearly a test, shaped like the rest."""
    project = rule.project
    now = dt.datetime.now(dt.timezone.utc)
    return {
        "action": "test",
        "project": project_fields(project),
        "issue": {
            "id": "0",
            "shortId": f"{project.short_prefix}-TEST",
            "title": "Test alert: ZeroDivisionError: division by zero",
            "culprit": "bugnet.test in send_test_alert",
            "level": "error",
            "status": "unresolved",
            "count": 1,
            "userCount": 0,
            "firstSeen": iso(now),
            "lastSeen": iso(now),
            "permalink": f"{settings.BASE_URL}/projects/{project.organization.slug}/"
            f"{project.slug}/settings/alerts/{rule.id}/",
        },
        "event": {
            "eventID": "0" * 32,
            "release": None,
            "environment": None,
            "level": "error",
            "timestamp": iso(now),
            "frame": {
                "filename": "bugnet/test.py",
                "function": "send_test_alert",
                "lineno": 1,
                "context_line": "1 / 0",
            },
        },
        "rule": {"id": str(rule.id), "name": rule.name},
    }
