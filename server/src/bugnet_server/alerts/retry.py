"""When a failed delivery is tried again: soon at first (a receiver restarting is back within
seconds), then less and less often, for a day. A receiver down for 5 minutes gets its alert on
the attempt at 8 min 50 s at the latest."""

from __future__ import annotations

# Seconds to wait after the 1st, 2nd, ... failed attempt; after the last, the delivery fails.
DELAYS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 3600, 7200, 7200, 14400, 14400, 28800)
MAX_ATTEMPTS = len(DELAYS) + 1


def delay_after(attempts: int) -> float | None:
    """Seconds until the next try after ``attempts`` failed ones; None: give up."""
    if attempts < 1 or attempts > len(DELAYS):
        return None
    return float(DELAYS[attempts - 1])
