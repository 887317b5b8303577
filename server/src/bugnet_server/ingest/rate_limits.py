"""Per-key rate limits (events per minute), counted in this process in fixed minute windows."""

from __future__ import annotations

import threading
import time


class MinuteCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minute = 0
        self._counts: dict[int, int] = {}

    def take(self, key_id: int, limit: int, amount: int = 1, now: float | None = None) -> int:
        """Count ``amount`` for ``key_id``; return 0 if within ``limit``, else seconds to wait."""
        now = time.time() if now is None else now
        minute = int(now // 60)
        with self._lock:
            if minute != self._minute:
                self._minute, self._counts = minute, {}
            used = self._counts.get(key_id, 0)
            if used + amount > limit:
                return max(1, int((minute + 1) * 60 - now + 0.999))
            self._counts[key_id] = used + amount
        return 0


counter = MinuteCounter()
