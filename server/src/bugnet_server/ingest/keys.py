"""Looking up a project key, with a short in-process cache (ingest must not query per event)."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from bugnet_server.ingest.errors import IngestError
from bugnet_server.projects.models import ProjectKey

CACHE_SECONDS = 10.0  # a deactivated key stops working within this time
# What a key can look like (ours are 32 hex characters; Sentry's JS SDK allows \w+). Anything
# else is refused unseen: a NUL byte would make PostgreSQL raise, a 4 KB key is never ours.
_PLAUSIBLE_KEY = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True)
class KeyInfo:
    id: int
    project_id: int
    active: bool
    rate_limit_per_minute: int | None


class Uncached(Exception):
    """``authorize(..., lookup=False)`` met a key it would have to look up."""

    def __init__(self, public_key: str) -> None:
        super().__init__(public_key)
        self.public_key = public_key


_cache: dict[str, tuple[float, KeyInfo | None]] = {}
_lock = threading.Lock()


def authorize(public_key: str, project_id: int, *, lookup: bool = True) -> KeyInfo:
    """The key if it may write to ``project_id``; 403 otherwise (unknown, inactive, other project).

    A key not seen for ``CACHE_SECONDS`` is read from the database, unless ``lookup`` is false
    (on an event loop, which must not wait for a query): then ``Uncached`` is raised instead.
    """
    if not _PLAUSIBLE_KEY.fullmatch(public_key):
        raise IngestError(403, "event submission rejected with_reason: ProjectId")
    now = time.monotonic()
    with _lock:
        cached = _cache.get(public_key)
    if cached is None or cached[0] < now:
        if not lookup:
            raise Uncached(public_key)
        info = load(public_key)
    else:
        info = cached[1]
    if info is None or not info.active or info.project_id != project_id:
        raise IngestError(403, "event submission rejected with_reason: ProjectId")
    return info


def load(public_key: str) -> KeyInfo | None:
    """Read ``public_key`` from the database into the cache (None: no such key)."""
    row = ProjectKey.objects.filter(public_key=public_key).first()
    info = KeyInfo(row.id, row.project_id, row.active, row.rate_limit_per_minute) if row else None
    with _lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[public_key] = (time.monotonic() + CACHE_SECONDS, info)
    return info


def forget() -> None:
    with _lock:
        _cache.clear()
