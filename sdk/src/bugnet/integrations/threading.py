"""Threads: each new thread starts with a copy of its parent's scopes (so it sees the tags set
before it started, and its own changes stay its own), and an exception escaping ``run()`` is
reported as a crash."""

from __future__ import annotations

import threading

from bugnet import _api, _patching, _scope
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ThreadingIntegration(Integration):
    identifier = "threading"

    def __init__(self, propagate_scope: bool = True) -> None:
        self.propagate_scope = propagate_scope

    @classmethod
    def setup_once(cls) -> None:
        original_start = threading.Thread.start

        def start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
            if not getattr(self, "_bugnet_internal", False):
                with capture_internal_exceptions():
                    integration = _api.get_client().integrations.get(cls.identifier)
                    if integration is not None:
                        scopes = (
                            _scope.fork_scopes()
                            if getattr(integration, "propagate_scope", True)
                            else None
                        )
                        self.run = _wrap_run(self.run, scopes)  # type: ignore[method-assign]
            return original_start(self, *args, **kwargs)

        _patching.patch(threading.Thread, "start", start)


def _wrap_run(run: Any, scopes: Any) -> Any:
    def run_with_scopes() -> Any:
        if scopes is not None:
            _scope.use_scopes(scopes)
        else:
            _scope.use_scopes((_scope.Scope(), _scope.Scope()))
        try:
            return run()
        except Exception as exc:
            with capture_internal_exceptions():
                _api.get_client().capture_exception(
                    exc, mechanism={"type": "threading", "handled": False}
                )
            raise

    return run_with_scopes
