"""Asyncio: every task starts with a copy of its creator's scopes, so concurrent tasks never see
each other's tags, user or breadcrumbs; and an exception that the event loop's exception handler
gets (a task that failed and was never awaited, "Task exception was never retrieved", or a
failed callback) is reported as unhandled. Switched on when the app imports ``asyncio``.

The loop's handler (the app's own, or asyncio's default that logs the error) is still called
as before. The default one logs the same exception object at ERROR: the dedupe step drops that
copy, so the exception is reported once.
"""

from __future__ import annotations

import contextvars

from bugnet import _api, _patching, _scope
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional


class AsyncioIntegration(Integration):
    identifier = "asyncio"

    @classmethod
    def setup_once(cls) -> None:
        import asyncio.base_events

        loop_class = asyncio.base_events.BaseEventLoop
        original = loop_class.create_task

        def create_task(self: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("context") is not None:
                return original(self, coro, *args, **kwargs)  # the caller chose its context
            # A task copies the context it is created in (on every Python we support): put
            # forks of the scopes there for the copy, then take them out again. The coroutine
            # itself is passed on untouched (a wrapper would change task.get_coro() and warn
            # "never awaited" for a task cancelled before it started).
            isolation, current = _scope.fork_scopes()
            isolation_token = _scope._isolation_var.set(isolation)
            current_token = _scope._current_var.set(current)
            try:
                return original(self, coro, *args, **kwargs)
            finally:
                _scope._current_var.reset(current_token)
                _scope._isolation_var.reset(isolation_token)

        _patching.patch(loop_class, "create_task", create_task)
        _patch_exception_handler(loop_class)


def _patch_exception_handler(loop_class: Any) -> None:
    # Patched on the loop class rather than set with set_exception_handler() on each new loop:
    # one place sees every loop, the one already running when init() is called inside it too,
    # and the app's own set_exception_handler() and get_exception_handler() work as before.
    # (uvloop's loop is not a BaseEventLoop and cannot be patched: it is not covered.)
    original = loop_class.call_exception_handler

    def call_exception_handler(self: Any, context: dict[str, Any]) -> None:
        with capture_internal_exceptions():
            _report(context)
        original(self, context)

    _patching.patch(loop_class, "call_exception_handler", call_exception_handler)


def _report(context: dict[str, Any]) -> None:
    exc = context.get("exception")
    client = _api.get_client()
    if not isinstance(exc, Exception) or AsyncioIntegration.identifier not in client.integrations:
        return
    # Captured in (a copy of) the failed task's or callback's context, so the event carries its
    # scopes, never those of whatever code the garbage collector interrupted to finalize the
    # task. Where Python does not expose that context (tasks before 3.12), in an empty one.
    origin = context.get("task") or context.get("future") or context.get("handle")
    origin_context = _context_of(origin) or contextvars.Context()
    origin_context.copy().run(
        client.capture_exception, exc, mechanism={"type": "asyncio", "handled": False}
    )


def _context_of(origin: Any) -> Optional[contextvars.Context]:
    get_context = getattr(origin, "get_context", None)  # tasks and handles, Python 3.12+
    found = get_context() if callable(get_context) else getattr(origin, "_context", None)
    return found if isinstance(found, contextvars.Context) else None
