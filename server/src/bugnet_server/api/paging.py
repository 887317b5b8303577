"""Sentry-style cursor paging: ``?cursor=`` and a ``Link`` header with ``rel="previous"`` and
``rel="next"``, each saying ``results="true|false"``.

Issue lists page by key (``<sort value>.<id>:0:<is_prev>``, see ``issues.keyset``): new events
move issues up, which would shift offsets. Other lists (events, projects) are ordered by what
does not change as data arrives and page by offset (``0:<offset>:0``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 100
MAX_OFFSET = 2**31  # past any real list; keeps OFFSET within what every database takes


def size_of(limit: int | None) -> int:
    return min(max(limit or DEFAULT_LIMIT, 1), MAX_LIMIT)


def window(cursor: str | None, limit: int | None) -> tuple[int, int]:
    size = size_of(limit)
    offset = 0
    if cursor:
        parts = cursor.split(":")
        if len(parts) == 3 and parts[1].isascii() and parts[1].isdigit():  # not "²"
            offset = min(int(parts[1]), MAX_OFFSET)
    return offset, size


def _link(request: HttpRequest, cursor: str, rel: str, results: bool) -> str:
    base = request.build_absolute_uri(request.path)
    query = {k: v for k, v in request.GET.items() if k != "cursor"}
    query["cursor"] = cursor
    return (f'<{base}?{urlencode(query)}>; rel="{rel}"; results="{str(results).lower()}"; '
            f'cursor="{cursor}"')  # fmt: skip


def link_header(request: HttpRequest, offset: int, size: int, has_more: bool) -> str:
    previous = _link(request, f"0:{max(offset - size, 0)}:1", "previous", offset > 0)
    following = _link(request, f"0:{offset + size}:0", "next", has_more)
    return f"{previous}, {following}"


def key_of(cursor: str | None) -> tuple[str | None, bool]:
    """A keyset cursor's key and whether it asks for the page before it (``is_prev``)."""
    key, _, rest = (cursor or "").partition(":")
    return key or None, rest.endswith(":1")


def keyset_link_header(request: HttpRequest, older: str | None, newer: str | None) -> str:
    """``older``/``newer`` as ``issues.keyset.Page`` has them; "0:0:x" leads to the first page."""
    previous = _link(request, f"{newer or 0}:0:1", "previous", newer is not None)
    following = _link(request, f"{older or 0}:0:0", "next", older is not None)
    return f"{previous}, {following}"


def page(
    request: HttpRequest, items: Any, cursor: str | None, limit: int | None
) -> tuple[list[Any], str]:
    """The page of ``items`` (a queryset or list) and its Link header."""
    offset, size = window(cursor, limit)
    rows = list(items[offset : offset + size + 1])
    has_more = len(rows) > size
    return rows[:size], link_header(request, offset, size, has_more)
