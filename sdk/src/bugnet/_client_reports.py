"""Counting what the SDK dropped, by reason and category, for client reports."""

from __future__ import annotations

import threading
import time
from collections import Counter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

REPORT_INTERVAL = 30.0  # seconds between reports attached to outgoing envelopes


class DiscardCounter:
    """Thread-safe tally of ``(reason, category) → quantity``; also kept for the tests' eyes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[tuple[str, str]] = Counter()
        self.totals: Counter[tuple[str, str]] = Counter()
        self._last_report = time.monotonic()

    def record(self, reason: str, category: str = "error", quantity: int = 1) -> None:
        with self._lock:
            self._pending[(reason, category)] += quantity
            self.totals[(reason, category)] += quantity

    def take_report(self, force: bool = False) -> Optional[dict[str, Any]]:
        """A ``client_report`` payload of what was dropped since the last one, if due."""
        with self._lock:
            if not self._pending:
                return None
            if not force and time.monotonic() - self._last_report < REPORT_INTERVAL:
                return None
            pending, self._pending = self._pending, Counter()
            self._last_report = time.monotonic()
        return {
            "timestamp": time.time(),
            "discarded_events": [
                {"reason": reason, "category": category, "quantity": quantity}
                for (reason, category), quantity in sorted(pending.items())
            ],
        }

    def reset_after_fork(self) -> None:
        """In a forked child: a fresh lock, and the parent's unreported drops left to the parent
        (reporting them here too would count them twice)."""
        self._lock = threading.Lock()
        self._pending = Counter()
