"""The one boundary where SDK code running inside the app swallows its own errors.

Everything the SDK does on the app's behalf runs inside :func:`capture_internal_exceptions`.
An error there is logged to the ``bugnet`` logger and swallowed, never raised into the app.
Tests register a listener through :data:`internal_error_listeners` to turn such errors into
failures, so swallowing never hides a bug from the test suite.
"""

from __future__ import annotations

import contextvars

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

internal_error_listeners: list[Callable[[BaseException], None]] = []

# True while the SDK itself is working on this thread or task: the logging integration
# ignores records emitted meanwhile, so a logger.error in before_send cannot recurse.
_inside_sdk: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "bugnet_inside_sdk", default=False
)


def inside_sdk() -> bool:
    return _inside_sdk.get()


def report_internal_error(exc: BaseException) -> None:
    token = _inside_sdk.set(True)
    try:
        import logging

        logging.getLogger("bugnet").error(
            "internal error in the bugnet SDK (swallowed)", exc_info=exc
        )
        for listener in list(internal_error_listeners):
            listener(exc)
    except Exception:
        pass
    finally:
        _inside_sdk.reset(token)


class _CaptureInternalExceptions:
    """Run a block of SDK code on the app's behalf; log and swallow what it raises."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            return False
        if not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, SystemExit: not ours to swallow
        report_internal_error(exc)
        return True


class _SdkWork:
    """Mark a block as the SDK's own work (log records emitted inside are not captured)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _inside_sdk.set(True)

    def __exit__(self, *exc: object) -> None:
        _inside_sdk.reset(self._token)


_capture_internal_exceptions = _CaptureInternalExceptions()


def capture_internal_exceptions() -> _CaptureInternalExceptions:
    """``with capture_internal_exceptions():`` logs and swallows what the block raises."""
    return _capture_internal_exceptions


def sdk_work() -> _SdkWork:
    """``with sdk_work():`` marks the block as the SDK's own work."""
    return _SdkWork()


DEBUG, INFO, WARNING = 10, 20, 30


def log(level: int, message: str, *args: object) -> None:
    """Log an SDK message to the ``bugnet`` logger; ``logging`` is imported only when needed."""
    import logging

    with sdk_work():
        logging.getLogger("bugnet").log(level, message, *args)
