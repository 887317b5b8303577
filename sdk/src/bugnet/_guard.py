"""The one boundary where SDK code running inside the app swallows its own errors.

Everything the SDK does on the app's behalf runs inside :func:`capture_internal_exceptions`.
An error there is logged to the ``bugnet`` logger and swallowed, never raised into the app.
Tests register a listener through :data:`internal_error_listeners` to turn such errors into
failures, so swallowing never hides a bug from the test suite.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable
    from collections.abc import Iterator

logger = logging.getLogger("bugnet")
internal_error_listeners: list[Callable[[BaseException], None]] = []

# True while the SDK itself is working on this thread or task: the logging integration
# ignores records emitted meanwhile, so a logger.error in before_send cannot recurse.
_inside_sdk: contextvars.ContextVar[bool] = contextvars.ContextVar("bugnet_inside_sdk", default=False)


def inside_sdk() -> bool:
    return _inside_sdk.get()


def report_internal_error(exc: BaseException) -> None:
    token = _inside_sdk.set(True)
    try:
        logger.error("internal error in the bugnet SDK (swallowed)", exc_info=exc)
        for listener in list(internal_error_listeners):
            listener(exc)
    except Exception:
        pass
    finally:
        _inside_sdk.reset(token)


@contextmanager
def capture_internal_exceptions() -> Iterator[None]:
    """Run a block of SDK code on the app's behalf; log and swallow what it raises."""
    try:
        yield
    except Exception as exc:
        report_internal_error(exc)


@contextmanager
def sdk_work() -> Iterator[None]:
    """Mark a block as the SDK's own work (log records emitted inside are not captured)."""
    token = _inside_sdk.set(True)
    try:
        yield
    finally:
        _inside_sdk.reset(token)
