"""Dedupe: the same exception object is reported once, however many hooks see it (a framework's
signal, then its logged copy, then the excepthook)."""

from __future__ import annotations

from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from bugnet.types import Event, Hint

_MARK = "__bugnet_seen__"


class DedupeIntegration(Integration):
    identifier = "dedupe"

    def __init__(self) -> None:
        self._last_id: Optional[int] = None

    def setup(self, client: Any) -> None:
        client.add_early_step(self.drop_if_seen, "event_processor")

    def drop_if_seen(self, event: Event, hint: Hint) -> Optional[Event]:
        exc_info = hint.get("exc_info")
        exc = exc_info[1] if exc_info else None
        if exc is None:
            return event
        try:
            if getattr(exc, _MARK, False):
                return None
            setattr(exc, _MARK, True)
        except Exception:  # an exception type that refuses attributes: compare with the last
            if id(exc) == self._last_id:
                return None
        self._last_id = id(exc)
        return event
