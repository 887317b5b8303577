"""The module-level API: ``init`` and the functions that act on the active client and scopes."""

from __future__ import annotations

from bugnet import _scope
from bugnet._client import Client
from bugnet._guard import capture_internal_exceptions
from bugnet._options import Options, build_options
from bugnet._scope import Scope

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from bugnet.types import Breadcrumb, Event, Hint

_client: Client = Client(Options())
_SCOPE_KWARGS = ("tags", "extras", "contexts", "user", "level", "fingerprint")


def init(dsn: Optional[str] = None, **options: Any) -> Client:
    """Start reporting. Without a DSN (argument, ``BUGNET_DSN`` or ``SENTRY_DSN``) and without a
    ``transport``, nothing is reported and every function here is a cheap no-op.

    Options take sentry-sdk's names and defaults. Returns the client, which also works as a
    context manager that flushes and closes on exit. Raises ``BadDsn`` (a ``ValueError``) for a
    malformed DSN and ``TypeError`` for an unknown option, so a misconfiguration shows at start-up.
    """
    global _client
    built = build_options(dsn, options)
    previous, _client = _client, Client(built)
    if previous.is_active():
        previous.close(timeout=built.shutdown_timeout)
    if built.debug:
        _enable_debug_logging()
    _scope.set_max_breadcrumbs(built.max_breadcrumbs)
    if _client.is_active():
        from bugnet.integrations import setup_integrations

        setup_integrations(_client)
    return _client


def _enable_debug_logging() -> None:
    import logging

    sdk_logger = logging.getLogger("bugnet")
    if not any(getattr(h, "_bugnet_debug", False) for h in sdk_logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(" [bugnet] %(levelname)s: %(message)s"))
        handler._bugnet_debug = True  # type: ignore[attr-defined]
        sdk_logger.addHandler(handler)
    sdk_logger.setLevel(logging.DEBUG)


def get_client() -> Client:
    """The active client (an inactive one before ``init()`` or without a DSN)."""
    return _client


def is_initialized() -> bool:
    return _client.is_active()


class _scope_for_capture:
    """The current scope for one capture: ``scope`` (if given) plus the capture's keywords."""

    __slots__ = ("_kwargs", "_scope", "_token")

    def __init__(self, scope: Optional[Scope], kwargs: dict[str, Any]) -> None:
        unknown = set(kwargs) - set(_SCOPE_KWARGS)
        if unknown:
            raise TypeError(f"unknown keyword argument(s): {', '.join(sorted(unknown))}")
        self._scope = scope
        self._kwargs = kwargs
        self._token: Any = None

    def __enter__(self) -> None:
        scope, kwargs = self._scope, self._kwargs
        if scope is None and not kwargs:
            return
        target = (scope or _scope.get_current_scope()).fork()
        self._token = _scope._current_var.set(target)
        if kwargs.get("tags"):
            target.set_tags(kwargs["tags"])
        for key, value in (kwargs.get("extras") or {}).items():
            target.set_extra(key, value)
        for key, value in (kwargs.get("contexts") or {}).items():
            target.set_context(key, value)
        if kwargs.get("user"):
            target.set_user(kwargs["user"])
        if kwargs.get("level"):
            target.set_level(kwargs["level"])
        if kwargs.get("fingerprint"):
            target.set_fingerprint(kwargs["fingerprint"])

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _scope._current_var.reset(self._token)


def capture_exception(
    error: Any = None, scope: Optional[Scope] = None, **scope_kwargs: Any
) -> Optional[str]:
    """Report ``error`` (or the exception being handled); returns the event id or None.

    ``scope_kwargs`` (``tags``, ``extras``, ``contexts``, ``user``, ``level``, ``fingerprint``)
    apply to this event only.
    """
    client = _client
    if client.transport is None:
        return None
    with _scope_for_capture(scope, scope_kwargs):
        return client.capture_exception(error)


def capture_message(
    message: str, level: Optional[str] = None, scope: Optional[Scope] = None, **scope_kwargs: Any
) -> Optional[str]:
    """Report a message at ``level`` (default ``info``); returns the event id or None."""
    client = _client
    if client.transport is None:
        return None
    with _scope_for_capture(scope, scope_kwargs):
        return client.capture_message(message, level)


def capture_event(
    event: Event, hint: Optional[Hint] = None, scope: Optional[Scope] = None, **scope_kwargs: Any
) -> Optional[str]:
    """Report a hand-made event (a dict in the Sentry event schema)."""
    client = _client
    if client.transport is None:
        return None
    with _scope_for_capture(scope, scope_kwargs):
        return client.capture_event(dict(event), hint)  # type: ignore[arg-type]


def add_breadcrumb(
    crumb: Optional[Breadcrumb] = None, hint: Optional[Hint] = None, **kwargs: Any
) -> None:
    """Record a breadcrumb (``message``, ``category``, ``level``, ``type``, ``data``...)."""
    client = _client
    if client.transport is None:
        return
    with capture_internal_exceptions():
        data: dict[str, Any] = dict(crumb or {})
        data.update(kwargs)
        if not data:
            return
        add_breadcrumb_to_scope(client, data, hint or {})  # type: ignore[arg-type]


def add_breadcrumb_to_scope(client: Client, crumb: Breadcrumb, hint: Hint) -> None:
    import time

    from bugnet._serialize import to_jsonable

    options = client.options
    if options.max_breadcrumbs == 0:
        return
    crumb.setdefault("timestamp", time.time())
    crumb.setdefault("type", "default")
    crumb.setdefault("level", "info")
    if "data" in crumb:
        crumb["data"] = to_jsonable(crumb["data"], options.max_value_length)
    if options.before_breadcrumb is not None:
        result = options.before_breadcrumb(crumb, hint)
        if result is None:
            return
        crumb = result
    _scope.get_isolation_scope().add_breadcrumb(crumb)


def set_tag(key: str, value: Any) -> None:
    _scope.get_isolation_scope().set_tag(key, value)


def set_tags(tags: dict[str, Any]) -> None:
    _scope.get_isolation_scope().set_tags(tags)


def set_extra(key: str, value: Any) -> None:
    _scope.get_isolation_scope().set_extra(key, value)


def set_context(key: str, value: Optional[dict[str, Any]]) -> None:
    _scope.get_isolation_scope().set_context(key, value)


def set_user(user: Optional[dict[str, Any]]) -> None:
    _scope.get_isolation_scope().set_user(user)


def set_level(level: Optional[str]) -> None:
    _scope.get_isolation_scope().set_level(level)


def last_event_id() -> Optional[str]:
    """The id of the last event sent from this request, task or thread."""
    return _scope.get_isolation_scope().last_event_id


def flush(timeout: Optional[float] = None, callback: Any = None) -> bool:
    """Wait up to ``timeout`` seconds (default ``shutdown_timeout``) for queued events to be
    delivered or spooled; True if everything was."""
    return _client.flush(timeout)
