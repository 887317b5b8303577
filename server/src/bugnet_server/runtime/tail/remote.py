"""``RemoteSource``: the events a server's REST API lists
(``GET /api/0/projects/<org>/<project>/events/``), polled with an API token."""

from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bugnet_server.issues.summary import iso
from bugnet_server.runtime.tail.follow import TailError, Unreachable, pick_project
from bugnet_server.runtime.tail.lines import UTC, EventLine

OVERLAP = dt.timedelta(seconds=30)  # how far back each poll reads again, by received time
PAGE = 100
MAX_PAGES = 10  # pages read per project and poll when all are new
REFRESH = 30.0  # seconds between looks for new projects when following every project
_NEXT = re.compile(r'rel="next"; results="true"; cursor="([^"]+)"')


class NotFound(Exception):
    pass


class ApiClient:
    """GETs JSON from a Bugnet (or Sentry-shaped) REST API with a Bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TailError(f"--url {url!r} is not the server's http(s) URL, "
                            "e.g. https://bugs.example.com")  # fmt: skip
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str, params: Mapping[str, str] | None = None) -> tuple[Any, Any]:
        """The decoded body and the headers. Raises ``TailError`` if the token is refused,
        ``NotFound`` on 404, ``Unreachable`` on any other failure."""
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}",
                                                       "Accept": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read()), response.headers
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (401, 403):
                raise TailError(f"{self.url} refused the token ({exc.code}); make one with "
                                "`bugnet token create EMAIL` on the server")  # fmt: skip
            if exc.code == 404:
                raise NotFound(path)
            raise Unreachable(f"{self.url} answered {exc.code} {exc.reason}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Unreachable(f"cannot reach {self.url} ({reason})")


def line_from_api(item: Mapping[str, Any]) -> EventLine:
    """An item of ``GET /api/0/projects/<org>/<project>/events/`` as a line."""
    project = item["project"]
    return EventLine(
        str(item["eventID"]), str(item["groupID"]), str(item["shortId"]),
        f"{project['organization']['slug']}/{project['slug']}", str(item["level"]),
        str(item["title"]), str(item["culprit"]), dt.datetime.fromisoformat(item["dateCreated"]),
        dt.datetime.fromisoformat(item["dateReceived"]), item.get("release") or "",
        item.get("environment") or "", item.get("change"), str(item["permalink"]),
    )  # fmt: skip


@dataclass
class Feed:
    """What the tail knows of one project's events: the newest received time it has seen, and
    the ids of those received since ``OVERLAP`` before it (each poll reads that window again,
    as a digest worker may commit an event after others received later)."""

    path: str
    floor: dt.datetime | None = None
    seen: dict[str, dt.datetime] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        params = {"limit": str(PAGE)}
        if self.floor is not None:
            params["since"] = iso(self.floor - OVERLAP)
        return params

    def remember(self, lines: list[EventLine]) -> None:
        for line in lines:
            self.seen[line.event_id] = line.received
        if lines:
            newest = max(line.received for line in lines)
            self.floor = newest if self.floor is None else max(self.floor, newest)
            cutoff = self.floor - OVERLAP
            self.seen = {k: v for k, v in self.seen.items() if v >= cutoff}


class RemoteSource:
    """The events of one project (``spec``) or of every project the token sees, polled from a
    server's REST API."""

    def __init__(self, api: ApiClient, spec: str | None, org: str | None,
                 levels: tuple[str, ...]) -> None:  # fmt: skip
        self.api, self.spec, self.org, self.levels = api, spec, org, levels
        self.feeds: dict[str, Feed] = {}
        self.started = dt.datetime.now(UTC)
        self.next_refresh = 0.0

    def start(self) -> str:
        names, self.started = self._projects()
        if self.spec is not None:
            names = [pick_project(self.spec, self.org, names)]
        self._add(names, show_after=None)
        return f"in {names[0] if self.spec else 'every project'} on {self.api.url}"

    def poll(self) -> list[EventLine]:
        lines: list[EventLine] = []
        if self.spec is None and time.monotonic() >= self.next_refresh:
            names, _ = self._projects()
            lines += self._add([n for n in names if n not in self.feeds], self.started)
        for name, feed in list(self.feeds.items()):
            try:
                lines += self._read(feed, MAX_PAGES)
            except NotFound:
                if self.spec is not None:
                    raise TailError(f"{name} is gone, or this token may no longer see it")
                del self.feeds[name]
        lines.sort(key=lambda line: line.received)
        return [line for line in lines if line.level in self.levels]

    def _projects(self) -> tuple[list[str], dt.datetime]:
        """Every project the token sees, and the server's time."""
        self.next_refresh = time.monotonic() + REFRESH
        names: list[str] = []
        params: dict[str, str] = {}
        for _ in range(100):
            items, headers = self.api.get("/api/0/projects/", params)
            names += [f"{p['organization']['slug']}/{p['slug']}" for p in items]
            cursor = _next_cursor(headers)
            if cursor is None:
                break
            params = {"cursor": cursor}
        date = headers.get("Date")
        return names, email.utils.parsedate_to_datetime(date) if date else dt.datetime.now(UTC)

    def _add(self, names: list[str], show_after: dt.datetime | None) -> list[EventLine]:
        """Start following ``names``: what they hold now is seen, except what was received
        after ``show_after``."""
        shown: list[EventLine] = []
        for name in names:
            org, slug = (urllib.parse.quote(part) for part in name.split("/", 1))
            feed = Feed(f"/api/0/projects/{org}/{slug}/events/")
            try:
                lines = self._read(feed, 1)
            except NotFound:
                continue
            self.feeds[name] = feed
            shown += [line for line in lines if show_after and line.received >= show_after]
        return shown

    def _read(self, feed: Feed, pages: int) -> list[EventLine]:
        """The events of ``feed`` not seen yet (newest first): a next page is read only while
        every event on a page is new."""
        params = feed.params()
        fresh: list[EventLine] = []
        for _ in range(pages):
            items, headers = self.api.get(feed.path, params)
            try:
                lines = [line_from_api(item) for item in items]
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise Unreachable(f"{self.api.url} answered an unexpected shape ({exc!r})")
            new = [line for line in lines if line.event_id not in feed.seen]
            fresh += new
            cursor = _next_cursor(headers)
            if cursor is None or len(new) < len(lines):
                break
            params["cursor"] = cursor
        feed.remember(fresh)
        return fresh


def _next_cursor(headers: Any) -> str | None:
    found = _NEXT.search(headers.get("Link") or "")
    return found.group(1) if found else None
