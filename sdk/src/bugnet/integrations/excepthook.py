"""Uncaught exceptions in scripts: reported through ``sys.excepthook`` as crashes."""

from __future__ import annotations

import sys

from bugnet import _api
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, Optional


class ExcepthookIntegration(Integration):
    identifier = "excepthook"

    def __init__(self, always_run: bool = False) -> None:
        # always_run: report even in an interactive session (where the hook is usually a REPL's).
        self.always_run = always_run

    @classmethod
    def setup_once(cls) -> None:
        original = sys.excepthook

        def excepthook(
            exc_type: type[BaseException],
            value: BaseException,
            tb: Optional[TracebackType],
        ) -> Any:
            with capture_internal_exceptions():
                client = _api.get_client()
                integration = client.integrations.get(cls.identifier)
                if (
                    integration is not None
                    and not issubclass(exc_type, KeyboardInterrupt)
                    and (getattr(integration, "always_run", False) or not hasattr(sys, "ps1"))
                ):
                    client.capture_exception(
                        (exc_type, value, tb), mechanism={"type": "excepthook", "handled": False}
                    )
            return original(exc_type, value, tb)

        from bugnet import _patching

        _patching.patch(sys, "excepthook", excepthook)
