"""Sentry-style cursor paging: ``?cursor=0:<offset>:0`` and a ``Link`` header with
``rel="previous"`` and ``rel="next"``, each saying ``results="true|false"``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 100
MAX_OFFSET = 2**31  # past any real list; keeps OFFSET within what every database takes


def window(cursor: str | None, limit: int | None) -> tuple[int, int]:
    size = min(max(limit or DEFAULT_LIMIT, 1), MAX_LIMIT)
    offset = 0
    if cursor:
        parts = cursor.split(":")
        if len(parts) == 3 and parts[1].isascii() and parts[1].isdigit():  # not "²"
            offset = min(int(parts[1]), MAX_OFFSET)
    return offset, size


def link_header(request: HttpRequest, offset: int, size: int, has_more: bool) -> str:
    base = request.build_absolute_uri(request.path)

    def link(target: int, rel: str, results: bool, is_prev: int) -> str:
        cursor = f"0:{target}:{is_prev}"
        query = {k: v for k, v in request.GET.items() if k != "cursor"}
        query["cursor"] = cursor
        return (f'<{base}?{urlencode(query)}>; rel="{rel}"; results="{str(results).lower()}"; '
                f'cursor="{cursor}"')  # fmt: skip

    previous = link(max(offset - size, 0), "previous", offset > 0, 1)
    following = link(offset + size, "next", has_more, 0)
    return f"{previous}, {following}"


def page(
    request: HttpRequest, items: Any, cursor: str | None, limit: int | None
) -> tuple[list[Any], str]:
    """The page of ``items`` (a queryset or list) and its Link header."""
    offset, size = window(cursor, limit)
    rows = list(items[offset : offset + size + 1])
    has_more = len(rows) > size
    return rows[:size], link_header(request, offset, size, has_more)
