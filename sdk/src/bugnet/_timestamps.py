"""Timestamps as the protocol wants them: RFC 3339 in UTC, ending in ``Z``."""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def format_timestamp(value: Any = None) -> str:
    """Format epoch seconds, a datetime or None (now) as ``2026-11-21T13:57:00.484639Z``."""
    if value is None:
        value = time.time()
    if hasattr(value, "astimezone"):  # a datetime (not imported here: the app has it already)
        if value.tzinfo is not None:
            value = value.timestamp()
        else:
            return str(value.isoformat(timespec="microseconds")) + "Z"
    if isinstance(value, str):
        return value
    seconds = float(value)
    whole = int(seconds)
    micros = round((seconds - whole) * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"
