"""Asyncio: every task starts with a copy of its creator's scopes, so concurrent tasks never see
each other's tags, user or breadcrumbs. Switched on when the app imports ``asyncio``."""

from __future__ import annotations

from bugnet import _patching, _scope
from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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
