"""Argv: the command line the process was started with, as ``extra["sys.argv"]``."""

from __future__ import annotations

import sys

from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from bugnet.types import Event, Hint


class ArgvIntegration(Integration):
    identifier = "argv"

    def setup(self, client: Any) -> None:
        # Right after the scope data is merged, before scrubbing and before_send.
        for index, (step, _reason) in enumerate(client.late_steps):
            if getattr(step, "__name__", "") == "apply_scopes":
                client.late_steps.insert(index + 1, (_add_argv, "event_processor"))
                return
        client.late_steps.append((_add_argv, "event_processor"))


def _add_argv(event: Event, hint: Hint) -> Optional[Event]:
    if isinstance(sys.argv, list) and sys.argv:
        event.setdefault("extra", {}).setdefault("sys.argv", list(sys.argv))
    return event
