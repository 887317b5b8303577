"""Keyset paging of issue lists, on the sort field and the id (the web UI's list and the API's).

New events keep moving issues to the top of "last seen": with offsets, every arrival would
push a row from one page onto the next (shown twice, or another never shown); a key ("older
than this row") does not shift, and each page is one indexed range scan however deep.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from bugnet_server.issues.models import Issue

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Page:
    issues: list[Issue]
    older: str | None  # the cursor for ?after= (None: this is the last page)
    newer: str | None  # the cursor for ?before= ("": the first page; None: this is it)


def cursor_of(issue: Issue, field: str) -> str:
    value = getattr(issue, field)
    if isinstance(value, dt.datetime):
        value = (value - EPOCH) // dt.timedelta(microseconds=1)
    return f"{value}.{issue.pk}"


def parse_cursor(text: str | None, field: str) -> tuple[Any, int] | None:
    """``"<value>.<id>"`` (a datetime as microseconds since 1970) or None when malformed."""
    value, _, pk = (text or "").partition(".")
    digits = value.lstrip("-")
    # isascii: "²" is a digit to isdigit() but not to int(); lengths: within 64-bit integers.
    if not (digits.isascii() and digits.isdigit() and pk.isascii() and pk.isdigit()):
        return None
    if len(digits) > 18 or len(pk) > 18:
        return None
    number = int(value)
    if field == "times_seen":
        return number, int(pk)
    try:
        return EPOCH + dt.timedelta(microseconds=number), int(pk)
    except OverflowError:
        return None


def _beyond(field: str, key: tuple[Any, int], older: bool) -> Q:
    op = "lt" if older else "gt"
    value, pk = key
    return Q(**{f"{field}__{op}": value}) | Q(**{field: value, f"pk__{op}": pk})


def page_of(issues: QuerySet[Issue], field: str, after: str | None, before: str | None,
            size: int) -> Page:  # fmt: skip
    """One page of ``size`` ``issues`` in descending ``field`` order: the first one, the one
    after the ``after`` cursor, or the one before the ``before`` cursor."""
    newer_key = parse_cursor(before, field)
    if newer_key is not None:
        ascending = issues.filter(_beyond(field, newer_key, older=False)).order_by(field, "pk")
        rows = list(ascending[: size + 1])
        if len(rows) > size:
            rows = rows[:size][::-1]
            return Page(rows, cursor_of(rows[-1], field), cursor_of(rows[0], field))
        # Less than a page is newer: show the first page, full.
    older_key = parse_cursor(after, field) if newer_key is None else None
    descending = issues.order_by(f"-{field}", "-pk")
    if older_key is not None:
        descending = descending.filter(_beyond(field, older_key, older=True))
    rows = list(descending[: size + 1])
    older = cursor_of(rows[size - 1], field) if len(rows) > size else None
    rows = rows[:size]
    if older_key is None:
        return Page(rows, older, None)
    return Page(rows, older, cursor_of(rows[0], field) if rows else "")
