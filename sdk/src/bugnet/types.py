"""The event vocabulary shared by the SDK, its tests and the server's tests.

These follow the Sentry event schema (see the protocol notes): every key is optional on the
wire, so every TypedDict here is ``total=False``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, Optional, TypedDict, Union

ExcInfo = tuple[Optional[type[BaseException]], Optional[BaseException], Optional[TracebackType]]
Hint = dict[str, Any]
Level = str  # "fatal" | "error" | "warning" | "info" | "debug"


class Frame(TypedDict, total=False):
    filename: str
    abs_path: str
    module: Optional[str]
    function: str
    lineno: int
    colno: int
    raw_function: str
    pre_context: list[str]
    context_line: str
    post_context: list[str]
    in_app: bool
    vars: dict[str, Any]


class Stacktrace(TypedDict, total=False):
    frames: list[Frame]


class Mechanism(TypedDict, total=False):
    type: str
    handled: bool
    synthetic: bool
    exception_id: int
    parent_id: int
    is_exception_group: bool
    source: str
    description: str
    help_link: str
    data: dict[str, Any]
    meta: dict[str, Any]


class ExceptionValue(TypedDict, total=False):
    type: str
    value: str
    module: Optional[str]
    mechanism: Mechanism
    stacktrace: Stacktrace
    thread_id: Union[int, str]


class Breadcrumb(TypedDict, total=False):
    type: str
    category: str
    message: Optional[str]
    level: str
    timestamp: Union[str, float]  # epoch seconds until sent
    data: dict[str, Any]
    event_id: str


class LogEntry(TypedDict, total=False):
    message: str
    formatted: str
    params: list[Any]


class User(TypedDict, total=False):
    id: str
    username: str
    name: str
    email: str
    ip_address: str
    segment: str
    geo: dict[str, str]
    data: dict[str, Any]


class Event(TypedDict, total=False):
    event_id: str
    timestamp: str
    level: Level
    platform: str
    logger: str
    message: str
    logentry: LogEntry
    exception: dict[str, list[ExceptionValue]]
    threads: dict[str, list[dict[str, Any]]]
    breadcrumbs: dict[str, list[Breadcrumb]]
    tags: dict[str, str]
    extra: dict[str, Any]
    contexts: dict[str, dict[str, Any]]
    user: User
    request: dict[str, Any]
    release: str
    dist: str
    environment: str
    server_name: str
    transaction: str
    transaction_info: dict[str, Any]
    fingerprint: list[str]
    modules: dict[str, str]
    sdk: dict[str, Any]
    _meta: dict[str, Any]


EventProcessor = Callable[[Event, Hint], Optional[Event]]
BeforeSend = Callable[[Event, Hint], Optional[Event]]
BeforeBreadcrumb = Callable[[Breadcrumb, Hint], Optional[Breadcrumb]]
ErrorSpec = Union[type[BaseException], str]

__all__ = [
    "BeforeBreadcrumb",
    "BeforeSend",
    "Breadcrumb",
    "ErrorSpec",
    "Event",
    "EventProcessor",
    "ExcInfo",
    "ExceptionValue",
    "Frame",
    "Hint",
    "Level",
    "LogEntry",
    "Mechanism",
    "Stacktrace",
    "User",
]
