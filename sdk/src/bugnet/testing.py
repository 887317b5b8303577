"""Helpers for testing code that reports to Bugnet, without a server.

    from bugnet.testing import capture_events

    def test_checkout_reports_payment_errors():
        with capture_events() as events:
            checkout(cart_with_bad_card)
        assert events[0]["exception"]["values"][-1]["type"] == "CardDeclined"

Events are exactly what would be sent: they went through the whole pipeline (scopes,
scrubbing, ``before_send``) and were serialized and parsed back.
"""

from __future__ import annotations

import json
import threading

from bugnet import _api
from bugnet._transport import Transport

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from bugnet._envelope import Envelope
    from bugnet.types import Event

__all__ = ["MemoryTransport", "capture_envelopes", "capture_events"]


class MemoryTransport(Transport):
    """A transport that keeps envelopes in memory (``envelopes``) and the events in them
    (``events``, parsed back from their JSON)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.envelopes: list[Envelope] = []
        self.events: list[Event] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        with self._lock:
            self.envelopes.append(envelope)
            for item in envelope.items:
                if item.type == "event":
                    self.events.append(json.loads(item.payload))


class _Capture:
    def __init__(self, options: dict[str, Any], what: str) -> None:
        self._options = options
        self._what = what
        self._transport = MemoryTransport()
        self._previous: Any = None

    def __enter__(self) -> Any:
        client = _api.get_client()
        if client.is_active() and not self._options:
            self._previous = client.transport
            client.transport = self._transport
        else:
            _api.init(transport=self._transport, **self._options)
        return self._transport.events if self._what == "events" else self._transport.envelopes

    def __exit__(self, *exc: object) -> None:
        client = _api.get_client()
        if self._previous is not None and client.transport is self._transport:
            client.transport = self._previous


def capture_events(**options: Any) -> Iterator[list[Event]]:
    """A context manager yielding the list of events sent inside the block.

    With an active client and no ``options``, its transport is swapped for the block; otherwise
    ``bugnet.init(**options)`` is called with an in-memory transport.
    """
    return _Capture(options, "events")  # type: ignore[return-value]


def capture_envelopes(**options: Any) -> Iterator[list[Envelope]]:
    """Like :func:`capture_events`, yielding the envelopes (client reports included)."""
    return _Capture(options, "envelopes")  # type: ignore[return-value]
