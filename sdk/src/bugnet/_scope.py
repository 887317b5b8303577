"""Scopes: the data attached to events, kept per request, task and thread.

Three layers are merged into every event, later ones winning: the *global* scope (process-wide),
the *isolation* scope (one per request, task or thread; the top-level ``set_tag`` & co. and
breadcrumbs go here) and the *current* scope (narrowed by ``new_scope()``). The isolation and
current scopes live in context variables, so concurrent requests, threads and asyncio tasks each
see their own.
"""

from __future__ import annotations

import contextvars
import time
from collections import deque

from bugnet._ids import new_event_id, new_span_id
from bugnet._timestamps import format_timestamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Union

    from bugnet.types import Breadcrumb, Event, EventProcessor, Hint, User

if TYPE_CHECKING:
    # A breadcrumb is stored either ready-made or as (converter, payload), turned into a dict
    # only when an event is sent: the logging integration stores LogRecords this way, which
    # keeps ``logger.info`` cheap.
    LazyBreadcrumb = tuple[Callable[[Any], Optional[Breadcrumb]], Any]
    StoredBreadcrumb = Union[Breadcrumb, LazyBreadcrumb]


DEFAULT_MAX_BREADCRUMBS = 100


class Scope:
    """Tags, user, contexts, extras, breadcrumbs and event processors for a stretch of work."""

    __slots__ = (
        "_breadcrumbs",
        "_contexts",
        "_event_processors",
        "_extras",
        "_fingerprint",
        "_level",
        "_parent_span_id",
        "_span_id",
        "_tags",
        "_trace_id",
        "_transaction",
        "_user",
        "last_event_id",
    )

    def __init__(self, max_breadcrumbs: int = DEFAULT_MAX_BREADCRUMBS) -> None:
        self._level: str | None = None
        self._tags: dict[str, str] = {}
        self._extras: dict[str, Any] = {}
        self._contexts: dict[str, dict[str, Any]] = {}
        self._user: User | None = None
        self._fingerprint: list[str] | None = None
        self._transaction: str | None = None
        self._breadcrumbs: deque[StoredBreadcrumb] = deque(maxlen=max_breadcrumbs)
        self._event_processors: list[EventProcessor] = []
        self._trace_id: str | None = None
        self._span_id: str | None = None
        self._parent_span_id: str | None = None
        self.last_event_id: str | None = None

    def fork(self) -> Scope:
        """A copy whose changes do not affect this scope."""
        new = Scope.__new__(Scope)
        new._level = self._level
        new._tags = dict(self._tags)
        new._extras = dict(self._extras)
        new._contexts = dict(self._contexts)
        new._user = self._user
        new._fingerprint = self._fingerprint
        new._transaction = self._transaction
        new._breadcrumbs = deque(self._breadcrumbs, maxlen=self._breadcrumbs.maxlen)
        new._event_processors = list(self._event_processors)
        new._trace_id = self._trace_id
        new._span_id = None
        new._parent_span_id = self._parent_span_id
        new.last_event_id = self.last_event_id
        return new

    # -- setters (the public API's vocabulary) ---------------------------------------------

    def set_tag(self, key: str, value: Any) -> None:
        self._tags[str(key)] = value if isinstance(value, str) else _tag_value(value)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    def remove_tag(self, key: str) -> None:
        self._tags.pop(key, None)

    def set_extra(self, key: str, value: Any) -> None:
        self._extras[key] = value

    def remove_extra(self, key: str) -> None:
        self._extras.pop(key, None)

    def set_context(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self._contexts.pop(key, None)
        else:
            self._contexts[key] = value

    def remove_context(self, key: str) -> None:
        self._contexts.pop(key, None)

    def set_user(self, user: User | dict[str, Any] | None) -> None:
        self._user = dict(user) if user else None  # type: ignore[assignment]

    def set_level(self, level: str | None) -> None:
        self._level = level

    def set_fingerprint(self, fingerprint: list[str] | None) -> None:
        self._fingerprint = list(fingerprint) if fingerprint is not None else None

    def set_transaction_name(self, name: str | None) -> None:
        self._transaction = name

    @property
    def transaction(self) -> str | None:
        return self._transaction

    @property
    def user(self) -> User | None:
        return self._user

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._tags)

    def add_event_processor(self, processor: EventProcessor) -> None:
        self._event_processors.append(processor)

    def add_breadcrumb(self, crumb: StoredBreadcrumb) -> None:
        self._breadcrumbs.append(crumb)

    def clear_breadcrumbs(self) -> None:
        self._breadcrumbs.clear()

    def set_max_breadcrumbs(self, limit: int) -> None:
        if self._breadcrumbs.maxlen != limit:
            self._breadcrumbs = deque(self._breadcrumbs, maxlen=limit)

    def clear(self) -> None:
        limit = self._breadcrumbs.maxlen
        self.__init__(limit if limit is not None else DEFAULT_MAX_BREADCRUMBS)  # type: ignore[misc]

    def trace_ids(self) -> tuple[str, str]:
        """This scope's trace id and span id, made on first use."""
        if self._trace_id is None:
            self._trace_id = new_event_id()
        if self._span_id is None:
            self._span_id = new_span_id()
        return self._trace_id, self._span_id

    def set_trace(self, trace_id: str, parent_span_id: str | None = None) -> None:
        """Continue an incoming trace (integrations call this with a request's headers)."""
        self._trace_id = trace_id
        self._parent_span_id = parent_span_id
        self._span_id = None


def _tag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


# -- where scopes live ----------------------------------------------------------------------

_global_scope = Scope()
_base_isolation_scope = Scope()
_base_current_scope = Scope()
_isolation_var: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "bugnet_isolation_scope", default=None
)
_current_var: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "bugnet_current_scope", default=None
)


def get_global_scope() -> Scope:
    return _global_scope


def get_isolation_scope() -> Scope:
    """The scope of this request, task or thread; the top-level ``set_*`` functions write here."""
    return _isolation_var.get() or _base_isolation_scope


def get_current_scope() -> Scope:
    """The innermost scope, as narrowed by :func:`new_scope`."""
    return _current_var.get() or _base_current_scope


class new_scope:
    """Fork the current scope for the block; changes inside do not leak out."""

    __slots__ = ("_token",)

    def __enter__(self) -> Scope:
        scope = get_current_scope().fork()
        self._token = _current_var.set(scope)
        return scope

    def __exit__(self, *exc: object) -> None:
        _current_var.reset(self._token)


class isolation_scope:
    """Fork both the isolation and the current scope: a fresh unit of work (a request, a task).

    The new isolation scope starts a new trace.
    """

    __slots__ = ("_cur_token", "_iso_token")

    def __enter__(self) -> Scope:
        isolation = get_isolation_scope().fork()
        isolation._trace_id = None
        isolation._parent_span_id = None
        self._iso_token = _isolation_var.set(isolation)
        self._cur_token = _current_var.set(get_current_scope().fork())
        return isolation

    def __exit__(self, *exc: object) -> None:
        _current_var.reset(self._cur_token)
        _isolation_var.reset(self._iso_token)


def fork_scopes() -> tuple[Scope, Scope]:
    """Forks of this context's isolation and current scopes, to carry into a thread or task."""
    return get_isolation_scope().fork(), get_current_scope().fork()


def use_scopes(scopes: tuple[Scope, Scope]) -> None:
    """Make ``scopes`` (from :func:`fork_scopes`) this context's isolation and current scopes."""
    _isolation_var.set(scopes[0])
    _current_var.set(scopes[1])


def reset_scopes(max_breadcrumbs: int = DEFAULT_MAX_BREADCRUMBS) -> None:
    """Forget all scope data (used by ``init()`` in tests and by the test helpers)."""
    global _global_scope, _base_isolation_scope, _base_current_scope
    _global_scope = Scope(max_breadcrumbs)
    _base_isolation_scope = Scope(max_breadcrumbs)
    _base_current_scope = Scope(max_breadcrumbs)
    _isolation_var.set(None)
    _current_var.set(None)


def set_max_breadcrumbs(limit: int) -> None:
    for scope in (_global_scope, get_isolation_scope(), get_current_scope()):
        scope.set_max_breadcrumbs(limit)


# -- applying scopes to an event ------------------------------------------------------------


def apply_scopes(event: Event, hint: Hint) -> Event | None:
    """Merge global, isolation and current scope data into ``event``; the event's own data wins.

    Returns None when an event processor drops the event.
    """
    scopes = (_global_scope, get_isolation_scope(), get_current_scope())
    tags: dict[str, str] = {}
    extras: dict[str, Any] = {}
    contexts: dict[str, dict[str, Any]] = {}
    user: User | None = None
    level = fingerprint = transaction = None
    for scope in scopes:
        tags.update(scope._tags)
        extras.update(scope._extras)
        contexts.update(scope._contexts)
        user = scope._user or user
        level = scope._level or level
        fingerprint = scope._fingerprint or fingerprint
        transaction = scope._transaction or transaction
    if tags:
        event["tags"] = {**tags, **event.get("tags", {})}
    if extras:
        event["extra"] = {**extras, **event.get("extra", {})}
    if contexts:
        event["contexts"] = {**contexts, **event.get("contexts", {})}
    if user and "user" not in event:
        event["user"] = dict(user)  # type: ignore[typeddict-item]
    if level:
        event["level"] = level
    if fingerprint and "fingerprint" not in event:
        event["fingerprint"] = list(fingerprint)
    if transaction and "transaction" not in event:
        event["transaction"] = transaction
    trace_id, span_id = scopes[1].trace_ids()
    event.setdefault("contexts", {}).setdefault(
        "trace",
        {"trace_id": trace_id, "span_id": span_id, "parent_span_id": scopes[1]._parent_span_id},
    )
    crumbs = _merged_breadcrumbs(scopes)
    event.setdefault("breadcrumbs", {"values": []})
    if crumbs:
        event["breadcrumbs"]["values"] = crumbs + list(event["breadcrumbs"].get("values", []))
    for scope in scopes:
        for processor in scope._event_processors:
            result = processor(event, hint)
            if result is None:
                return None
            event = result
    return event


def _merged_breadcrumbs(scopes: tuple[Scope, ...]) -> list[Breadcrumb]:
    stored: list[StoredBreadcrumb] = []
    sources = 0
    for scope in scopes:
        if scope._breadcrumbs:
            stored.extend(scope._breadcrumbs)
            sources += 1
    crumbs: list[Breadcrumb] = []
    for item in stored:
        crumb = item[0](item[1]) if isinstance(item, tuple) else dict(item)
        if crumb is not None:
            crumbs.append(crumb)  # type: ignore[arg-type]
    if sources > 1:
        crumbs.sort(key=_crumb_time)
    for crumb in crumbs:
        if not isinstance(crumb.get("timestamp"), str):
            crumb["timestamp"] = format_timestamp(crumb.get("timestamp"))
    return crumbs


def _crumb_time(crumb: Breadcrumb) -> float:
    value: Any = crumb.get("timestamp")
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    if isinstance(value, str):
        from datetime import datetime  # only for app-given ISO strings: rare

        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                from datetime import timezone

                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.timestamp()
        except ValueError:
            pass
    return time.time()
