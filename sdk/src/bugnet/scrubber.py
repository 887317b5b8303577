"""Scrubbing, under the module path sentry-sdk uses (``sentry_sdk.scrubber``), so
``from bugnet.scrubber import EventScrubber, DEFAULT_DENYLIST`` works after a switch."""

from __future__ import annotations

from bugnet._scrub import DEFAULT_PII_DENYLIST, DEFAULT_WORDS, EventScrubber

DEFAULT_DENYLIST = sorted(DEFAULT_WORDS)

__all__ = ["DEFAULT_DENYLIST", "DEFAULT_PII_DENYLIST", "EventScrubber"]
