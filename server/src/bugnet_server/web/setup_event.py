"""The setup page's "send a test event": a real error event, stored the way an SDK's is.

The event is written as an envelope and goes through ingest's own parser and store (the
durable queue), so the digest worker groups it like any other: if the test event shows up as
an issue, the pipeline works end to end on this server.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import orjson

from bugnet_server import __version__
from bugnet_server.ingest import envelopes, store
from bugnet_server.projects.models import Project

TITLE_TYPE = "TestEvent"
TITLE_VALUE = "This is a test event from Bugnet's setup page"

_FRAMES = [
    {"filename": "app.py", "abs_path": "/srv/app/app.py", "module": "app", "function": "<module>",
     "lineno": 14, "in_app": True, "context_line": "    main()",
     "pre_context": ["", "if __name__ == \"__main__\":"], "post_context": []},
    {"filename": "app.py", "abs_path": "/srv/app/app.py", "module": "app", "function": "main",
     "lineno": 9, "in_app": True, "context_line": "    send_test_event()",
     "pre_context": ["def main():"], "post_context": [""]},
    {"filename": "bugnet/test.py", "abs_path": "/srv/app/bugnet/test.py",
     "module": "bugnet.test", "function": "send_test_event", "lineno": 5, "in_app": True,
     "context_line": f"    raise {TITLE_TYPE}({TITLE_VALUE!r})",
     "pre_context": ["def send_test_event():"], "post_context": [],
     "vars": {"where": "'setup page'"}},
]  # fmt: skip


def send(project: Project, sent_by: str, client_ip: str | None) -> str:
    """Store a test event for ``project`` in the ingest queue; returns its event id.

    Raises what ``store.commit`` raises when the database cannot take it.
    """
    event_id = uuid.uuid4().hex
    now = time.time()
    envelope = _envelope(event_id, now, sent_by)
    parsed = envelopes.read_envelope(iter([envelope]))
    events = [(event_id, payload) for _headers, payload in parsed.events]
    sent_at = dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat()
    store.commit(store.rows(project.pk, events, parsed.outcomes, received_at=now, sent_at=sent_at,
                            client_ip=client_ip))  # fmt: skip
    return event_id


def _envelope(event_id: str, now: float, sent_by: str) -> bytes:
    event = {
        "event_id": event_id,
        "timestamp": now,
        "platform": "python",
        "level": "error",
        "logger": "bugnet.test",
        "environment": "test",
        "server_name": "bugnet",
        "tags": {"source": "setup-page"},
        "extra": {"sent_by": sent_by},
        "sdk": {"name": "bugnet.server.setup", "version": __version__},
        "exception": {
            "values": [
                {
                    "type": TITLE_TYPE,
                    "module": "bugnet.test",
                    "value": TITLE_VALUE,
                    "mechanism": {"type": "bugnet.setup", "handled": True},
                    "stacktrace": {"frames": _FRAMES},
                }
            ]
        },
    }
    payload = orjson.dumps(event)
    header = orjson.dumps({"event_id": event_id, "sent_at": dt.datetime.now(dt.timezone.utc)})
    item = orjson.dumps({"type": "event", "length": len(payload)})
    return b"\n".join([header, item, payload])
