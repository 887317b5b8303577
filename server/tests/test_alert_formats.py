"""What each channel sends, and when a failed delivery is tried again: pure functions, no
Django, no database (the end-to-end contract is ``test_alerts.py``)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from bugnet_server.alerts import formats, retry


def alert(**issue: Any) -> dict[str, Any]:
    return {
        "action": "new",
        "project": {"id": "1", "slug": "shop", "name": "Shop", "organization": {"slug": "acme"}},
        "issue": {
            "id": "7",
            "shortId": "SHOP-7",
            "title": "KeyError: 'order'",
            "culprit": "app.orders in load_order",
            "level": "error",
            "count": 3,
            "permalink": "https://bugs.example.com/issues/7/",
        }
        | issue,
        "event": {
            "eventID": "a" * 32,
            "release": "shop@1.4.2",
            "environment": "production",
            "timestamp": "2026-11-21T12:00:00Z",
            "frame": {"filename": "app/orders.py", "lineno": 42, "function": "load_order"},
        },
        "rule": {"id": "1", "name": "New issues"},
    }


def test_a_receiver_down_for_five_minutes_gets_the_alert_within_nine():
    elapsed, attempt = 0.0, 1
    down_until = 300.0
    while elapsed < down_until:  # each attempt while down fails
        delay = retry.delay_after(attempt)
        assert delay is not None, f"gave up after {attempt} attempts"
        elapsed += delay
        attempt += 1
    assert elapsed <= 9 * 60
    total = sum(retry.DELAYS)
    assert 20 * 3600 <= total <= 30 * 3600  # and it keeps trying for about a day
    assert retry.delay_after(retry.MAX_ATTEMPTS) is None


def test_the_signature_is_an_hmac_of_the_exact_body():
    body = formats.generic_body(alert())
    header = formats.signature("s3cret", body)
    assert header == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert formats.verify("s3cret", body, header)
    assert not formats.verify("s3cret", body + b" ", header)
    assert not formats.verify("other", body, header)
    assert json.loads(body)["issue"]["shortId"] == "SHOP-7"


@pytest.mark.parametrize(
    ("action", "extra", "words"),
    [
        ("new", {}, "New issue"),
        ("regression", {}, "Regression"),
        ("unignored", {}, "Ignored issue is back"),
        ("spike", {"spike": {"count": 120, "minutes": 5}}, "Spike: 120 events in 5 minutes"),
        ("test", {}, "Test alert"),
    ],
)
def test_headlines(action, extra, words):
    assert formats.headline(alert() | {"action": action} | extra) == words


def test_slack_cannot_be_made_to_ping_or_link_by_an_event():
    hostile = "<!channel> <https://evil.example|click> & co"
    body = json.loads(formats.slack_body(alert(title=hostile, culprit=hostile)))
    raw = json.dumps(body)
    assert "<!channel>" not in raw
    assert "<https://evil" not in raw
    assert "&lt;!channel&gt;" in raw
    assert "&amp; co" in raw
    section = body["blocks"][0]["text"]["text"]
    assert "<https://bugs.example.com/issues/7/|SHOP-7: &lt;!channel&gt;" in section
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in body["blocks"][1]["fields"]
    }
    assert fields == {"*Level*": "error", "*Events*": "3", "*Environment*": "production",
                      "*Release*": "shop@1.4.2"}  # fmt: skip
    assert body["blocks"][2]["elements"][0]["text"] == "app/orders.py:42 in load_order"
    assert body["unfurl_links"] is False


def test_discord_keeps_a_strangers_text_inside_code_and_pings_nobody():
    hostile = "`@everyone` [login](https://evil.example)"
    body = json.loads(formats.discord_body(alert(culprit=hostile)))
    assert body["allowed_mentions"] == {"parse": []}
    embed = body["embeds"][0]
    first = embed["description"].splitlines()[0]
    assert first.startswith("`")
    assert first.endswith("`")
    assert first.count("`") == 2  # the event's backticks cannot close the code span
    assert embed["url"] == "https://bugs.example.com/issues/7/"
    assert embed["color"] == formats.LEVEL_COLOURS["error"]
    assert {f["name"]: f["value"] for f in embed["fields"]}["Release"] == "shop@1.4.2"


def test_long_and_multi_line_titles_fit_every_format():
    title = "ValueError: " + "x" * 5000 + "\nsecond line"
    context = alert(title=title)
    assert len(json.loads(formats.discord_body(context))["embeds"][0]["title"]) <= 256
    subject = formats.email_subject(context)
    assert "\n" not in subject
    assert len(subject) <= 200
    assert len(formats.summary(context)) <= 250


def test_missing_fields_do_not_break_a_format():
    bare: dict[str, Any] = {"action": "new", "issue": {}, "event": {}, "project": {}}
    for render in (formats.generic_body, formats.slack_body, formats.discord_body):
        assert json.loads(render(bare))
    assert formats.frame_line(bare) == ""
    assert formats.email_subject(bare)
