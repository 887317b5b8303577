"""What the tail shows of one event (``EventLine``), and how: a coloured line of text, made safe
for a terminal, or a JSON line."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import select
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from bugnet_server.issues.summary import iso

LEVELS = ("debug", "info", "warning", "error", "fatal")
UTC = dt.timezone.utc


@dataclass(frozen=True)
class EventLine:
    event_id: str
    group_id: str
    short_id: str  # the issue's, e.g. SHOP-1A
    project: str  # org/slug
    level: str
    title: str  # the issue's (its latest event's)
    culprit: str
    timestamp: dt.datetime  # when it happened (the SDK's clock)
    received: dt.datetime  # when the server received it
    release: str
    environment: str
    change: str | None  # "new" | "regression" | "unignored": the state change it caused
    permalink: str


def levels_from(minimum: str | None) -> tuple[str, ...]:
    """The levels shown for ``--level minimum``: it and those above it (all without one)."""
    return LEVELS[LEVELS.index(minimum) :] if minimum else LEVELS


_CODES = {"fatal": "1;31", "error": "31", "warning": "33", "info": "34", "debug": "2"}
_MARKS = {"new": ("NEW", "1;35"), "regression": ("REGRESSED", "1;33"),
          "unignored": ("UNIGNORED", "1;36")}  # fmt: skip
# Event text comes from anyone holding a DSN: control characters (escape sequences that would
# drive the terminal) and bidirectional overrides are shown as escapes, never written raw.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _safe(text: str) -> str:
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def as_text(line: EventLine, color: bool) -> str:
    """``12:04:31 shop error SHOP-1A NEW ZeroDivisionError: division by zero (app.orders in
    split_order)``: the time is when it was received, in local time."""

    def paint(code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color else text

    parts = [
        paint("2", line.received.astimezone().strftime("%H:%M:%S")),
        _safe(line.project.split("/", 1)[-1]),
        paint(_CODES.get(line.level, "0"), f"{line.level:<7}"),
        paint("1", line.short_id),
    ]
    if line.change in _MARKS:
        mark, code = _MARKS[line.change]
        parts.append(paint(code, mark))
    parts.append(_safe(line.title))
    if line.culprit:
        parts.append(paint("2", f"({_safe(line.culprit)})"))
    return " ".join(parts)


def as_json(line: EventLine) -> str:
    return json.dumps({
        "eventID": line.event_id, "groupID": line.group_id, "shortId": line.short_id,
        "project": line.project, "level": line.level, "title": line.title,
        "culprit": line.culprit, "dateCreated": iso(line.timestamp),
        "dateReceived": iso(line.received), "release": line.release or None,
        "environment": line.environment or None, "change": line.change,
        "permalink": line.permalink,
    })  # fmt: skip


def wants_color(stream: TextIO, choice: bool | None, env: Mapping[str, str] = os.environ) -> bool:
    """``choice`` (``--color`` / ``--no-color``), else: a terminal, without ``NO_COLOR``, that
    is not ``TERM=dumb``."""
    if choice is not None:
        return choice
    return stream.isatty() and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


def printer(out: TextIO, json_lines: bool, color: bool) -> Callable[[EventLine], None]:
    """Writes one line per event and flushes it (a pipe sees each event as it comes)."""

    def write(line: EventLine) -> None:
        out.write((as_json(line) if json_lines else as_text(line, color)) + "\n")
        out.flush()

    return write


def reader_gone(stream: TextIO) -> bool:
    """Whether nobody reads ``stream`` any more (the reader of the pipe exited, as ``| head -1``
    does), so the tail can stop before it has a line to write."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return False
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # no events asked: poll reports only errors and hang-ups
    return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in poller.poll(0))
