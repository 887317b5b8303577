"""The event vocabulary shared by the SDK, its tests and the server's tests.

These follow the Sentry event schema (see the protocol notes): every key is optional on the
wire, so every TypedDict here is ``total=False``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, TypedDict, Union

ExcInfo = Tuple[Optional[Type[BaseException]], Optional[BaseException], Optional[TracebackType]]
Hint = Dict[str, Any]
Level = str  # "fatal" | "error" | "warning" | "info" | "debug"


class Frame(TypedDict, total=False):
    filename: str
    abs_path: str
    module: Optional[str]
    function: str
    lineno: int
    pre_context: List[str]
    context_line: str
    post_context: List[str]
    in_app: bool
    vars: Dict[str, Any]


class Stacktrace(TypedDict, total=False):
    frames: List[Frame]


class Mechanism(TypedDict, total=False):
    type: str
    handled: bool
    synthetic: bool
    exception_id: int
    parent_id: int
    is_exception_group: bool
    source: str
    meta: Dict[str, Any]


class ExceptionValue(TypedDict, total=False):
    type: str
    value: str
    module: Optional[str]
    mechanism: Mechanism
    stacktrace: Stacktrace


class Breadcrumb(TypedDict, total=False):
    type: str
    category: str
    message: Optional[str]
    level: str
    timestamp: str
    data: Dict[str, Any]


class LogEntry(TypedDict, total=False):
    message: str
    formatted: str
    params: List[Any]


class User(TypedDict, total=False):
    id: str
    username: str
    email: str
    ip_address: str


class Event(TypedDict, total=False):
    event_id: str
    timestamp: str
    level: Level
    platform: str
    logger: str
    message: str
    logentry: LogEntry
    exception: Dict[str, List[ExceptionValue]]
    threads: Dict[str, List[Dict[str, Any]]]
    breadcrumbs: Dict[str, List[Breadcrumb]]
    tags: Dict[str, str]
    extra: Dict[str, Any]
    contexts: Dict[str, Dict[str, Any]]
    user: User
    request: Dict[str, Any]
    release: str
    dist: str
    environment: str
    server_name: str
    transaction: str
    transaction_info: Dict[str, Any]
    fingerprint: List[str]
    modules: Dict[str, str]
    sdk: Dict[str, Any]
    _meta: Dict[str, Any]


EventProcessor = Callable[[Event, Hint], Optional[Event]]
BeforeSend = Callable[[Event, Hint], Optional[Event]]
BeforeBreadcrumb = Callable[[Breadcrumb, Hint], Optional[Breadcrumb]]
ErrorSpec = Union[Type[BaseException], str]

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
