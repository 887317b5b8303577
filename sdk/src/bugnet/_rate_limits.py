"""Honouring the server's rate limits: ``429``, ``Retry-After`` and ``X-Sentry-Rate-Limits``."""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

ALL = ""  # the key for "every category"
KNOWN_CATEGORIES = frozenset(
    {
        "default", "error", "transaction", "security", "attachment", "session", "profile",
        "profile_chunk", "replay", "feedback", "monitor", "span", "log_item", "log_byte",
        "trace_metric", "trace_metric_byte", "metric_bucket", "internal",
    }
)  # fmt: skip


def parse_rate_limits(header: str, now: float) -> dict[str, float]:
    """``retry_after:categories:scope:...`` entries → {category: disabled-until (monotonic)}.

    An empty category list means every category; unknown categories are ignored, and so is an
    entry whose categories are all unknown or whose delay is not a number.
    """
    limits: dict[str, float] = {}
    for entry in header.split(","):
        parts = entry.strip().split(":")
        if len(parts) < 2:
            continue
        try:
            delay = float(parts[0].strip())
        except ValueError:
            continue
        until = now + max(delay, 0.0)
        categories = [c.strip() for c in parts[1].split(";") if c.strip()]
        if not categories:
            limits[ALL] = max(limits.get(ALL, 0.0), until)
            continue
        for category in categories:
            if category in KNOWN_CATEGORIES:
                limits[category] = max(limits.get(category, 0.0), until)
    return limits


def parse_retry_after(value: Optional[str], now_wall: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date); 60 if absent."""
    if not value:
        return 60.0
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # only on this rare path: a slow import

    try:
        return max(parsedate_to_datetime(value).timestamp() - now_wall, 0.0)
    except (TypeError, ValueError, IndexError):
        return 60.0


class RateLimiter:
    """Per-category "disabled until" times for one DSN."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def is_limited(self, category: str, now: Optional[float] = None) -> bool:
        if category == "internal" or not self._until:
            return False
        now = time.monotonic() if now is None else now
        return self._until.get(category, 0.0) > now or self._until.get(ALL, 0.0) > now

    def update(self, status: int, headers: dict[str, str]) -> None:
        """Record the limits a response announced."""
        now = time.monotonic()
        header = headers.get("x-sentry-rate-limits")
        if header:
            new = parse_rate_limits(header, now)
        elif status == 429:
            new = {ALL: now + parse_retry_after(headers.get("retry-after"), time.time())}
        else:
            return
        for category, until in new.items():
            if until > self._until.get(category, 0.0):
                self._until[category] = until

    def reset(self) -> None:
        self._until.clear()
