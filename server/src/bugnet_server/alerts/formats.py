"""What each channel sends, from an alert's context (see ``context.py``): pure functions, no
I/O. Everything in the context but our own words was written by strangers (an SDK's event), so
each format neutralizes its receiver's markup: Slack's ``<!channel>`` and link syntax, Discord's
mentions and masked links. Email is escaped by its template."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

SIGNATURE_HEADER = "X-Bugnet-Signature"

HEADLINES = {
    "new": "New issue",
    "regression": "Regression",
    "unignored": "Ignored issue is back",
    "spike": "Spike",
    "test": "Test alert",
}
LEVEL_COLOURS = {  # Discord wants an int, Slack a hex string
    "fatal": 0x8B1E3F,
    "error": 0xD13C3C,
    "warning": 0xE8A317,
    "info": 0x2F80ED,
    "debug": 0x7A7A7A,
}


def headline(context: dict[str, Any]) -> str:
    """The alert's first words: "New issue", "Spike: 120 events in 5 minutes"..."""
    action = str(context.get("action") or "")
    words = HEADLINES.get(action, action.capitalize() or "Alert")
    spike = context.get("spike")
    if action == "spike" and isinstance(spike, dict):
        words += f": {spike.get('count')} events in {spike.get('minutes')} minutes"
    return words


def _one_line(text: Any, limit: int) -> str:
    value = " ".join(str(text or "").split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def frame_line(context: dict[str, Any]) -> str:
    """``app/orders.py:12 in split_order``: the top in-app frame, or ""."""
    frame = (context.get("event") or {}).get("frame") or {}
    where = frame.get("filename") or frame.get("module") or frame.get("abs_path") or ""
    if not where:
        return ""
    if frame.get("lineno") is not None:
        where = f"{where}:{frame['lineno']}"
    if frame.get("function"):
        where = f"{where} in {frame['function']}"
    return _one_line(where, 300)


def facts(context: dict[str, Any]) -> list[tuple[str, str]]:
    """The short facts every channel shows: level, events, environment, release."""
    issue = context.get("issue") or {}
    event = context.get("event") or {}
    return [
        ("Level", _one_line(issue.get("level") or "error", 20)),
        ("Events", str(issue.get("count") or 0)),
        ("Environment", _one_line(event.get("environment") or "—", 64)),
        ("Release", _one_line(event.get("release") or "—", 100)),
    ]


def summary(context: dict[str, Any]) -> str:
    """One line: "New issue in Shop: SHOP-1A ZeroDivisionError: division by zero"."""
    issue = context.get("issue") or {}
    project = (context.get("project") or {}).get("name") or ""
    return _one_line(
        f"{headline(context)} in {project}: {issue.get('shortId', '')} {issue.get('title', '')}",
        250,
    )


# --- generic webhook -------------------------------------------------------------------------


def generic_body(context: dict[str, Any]) -> bytes:
    return orjson.dumps(context)


def signature(secret: str, body: bytes) -> str:
    """The ``X-Bugnet-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (and what the tests do): compare in constant time."""
    return hmac.compare_digest(signature(secret, body), header or "")


# --- Slack -----------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    # Slack's control characters; escaping them also defuses <!channel> and <url|label>.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(context: dict[str, Any]) -> bytes:
    issue = context.get("issue") or {}
    project = context.get("project") or {}
    title = _slack_escape(_one_line(f"{issue.get('shortId', '')}: {issue.get('title', '')}", 300))
    link = str(issue.get("permalink") or "").replace("|", "%7C").replace(">", "%3E")
    lines = [
        f"*{_slack_escape(headline(context))}* in *{_slack_escape(str(project.get('name', '')))}*",
        f"<{link}|{title}>" if link else title,
    ]
    culprit = _one_line(issue.get("culprit"), 300)
    if culprit:
        lines.append(_slack_escape(culprit))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(value)}"}
                for name, value in facts(context)
            ],
        },
    ]
    where = frame_line(context)
    if where:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(where)}]}
        )
    payload = {
        "text": _slack_escape(summary(context)),  # notifications and old clients show this
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }
    return orjson.dumps(payload)


# --- Discord ---------------------------------------------------------------------------------


def _discord_code(text: str) -> str:
    # Inside a code span nothing is markdown; only a backtick could close it (a look-alike,
    # MODIFIER LETTER GRAVE ACCENT, takes its place).
    return "`" + text.replace("`", "\u02cb") + "`" if text else ""


def discord_body(context: dict[str, Any]) -> bytes:
    issue = context.get("issue") or {}
    project = context.get("project") or {}
    level = str(issue.get("level") or "error")
    description = [_discord_code(_one_line(issue.get("culprit"), 300))]
    where = frame_line(context)
    if where:
        description.append(_discord_code(where))
    embed: dict[str, Any] = {
        "title": _one_line(f"{issue.get('shortId', '')}: {issue.get('title', '')}", 256),
        "color": LEVEL_COLOURS.get(level, LEVEL_COLOURS["error"]),
        "description": "\n".join(d for d in description if d)[:4000],
        "fields": [
            {"name": name, "value": value, "inline": True} for name, value in facts(context)
        ],
    }
    if issue.get("permalink"):
        embed["url"] = issue["permalink"]
    timestamp = (context.get("event") or {}).get("timestamp")
    if timestamp:
        embed["timestamp"] = timestamp
    payload = {
        "username": "Bugnet",
        "content": _one_line(f"{headline(context)} in {project.get('name', '')}", 300),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},  # no @everyone, @here, user or role pings
    }
    return orjson.dumps(payload)


# --- email -----------------------------------------------------------------------------------


def email_subject(context: dict[str, Any]) -> str:
    issue = context.get("issue") or {}
    project = (context.get("project") or {}).get("name") or ""
    return _one_line(
        f"[{project}] {headline(context)}: {issue.get('shortId', '')} {issue.get('title', '')}",
        200,
    )
