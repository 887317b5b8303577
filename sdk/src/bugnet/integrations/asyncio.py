"""Asyncio: every task starts with a copy of its creator's scopes, so concurrent tasks never see
each other's tags, user or breadcrumbs. Switched on when the app imports ``asyncio``."""

from __future__ import annotations

import contextvars
import sys

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

        if sys.version_info >= (3, 11):

            def create_task(self: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
                if kwargs.get("context") is None:
                    context = contextvars.copy_context()
                    context.run(_scope.use_scopes, _scope.fork_scopes())
                    kwargs["context"] = context
                return original(self, coro, *args, **kwargs)

        else:  # pragma: no cover - Python 3.9 and 3.10 have no context argument

            def create_task(self: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
                scopes = _scope.fork_scopes()

                async def with_scopes() -> Any:
                    _scope.use_scopes(scopes)
                    return await coro

                return original(self, with_scopes(), *args, **kwargs)

        _patching.patch(loop_class, "create_task", create_task)
