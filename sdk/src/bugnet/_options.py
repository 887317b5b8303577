"""``init()`` options: one typed, frozen object, validated once.

Names and defaults follow sentry-sdk's where they exist, so switching is a one-line change.
Environment fallbacks are read in :func:`from_environment` and nowhere else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from bugnet._dsn import Dsn
from bugnet._scrub import EventScrubber

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Union

    from bugnet._transport import Transport
    from bugnet.integrations import Integration
    from bugnet.types import BeforeBreadcrumb, BeforeSend, ErrorSpec

_DEFAULT = object()
MiB = 1024 * 1024

# sentry-sdk options about tracing, profiling and sessions: accepted so an existing init() call
# keeps working, and ignored (Bugnet tracks errors).
IGNORED_SENTRY_OPTIONS = frozenset(
    {
        "traces_sample_rate", "traces_sampler", "profiles_sample_rate", "profiles_sampler",
        "profile_session_sample_rate", "profile_lifecycle", "enable_tracing",
        "trace_propagation_targets", "propagate_traces", "before_send_transaction",
        "auto_session_tracking", "enable_logs", "before_send_log", "_experiments",
        "socket_options", "keep_alive", "enable_backpressure_handling", "enable_db_query_source",
        "db_query_source_threshold_ms", "max_stack_frames", "add_full_stack", "instrumenter",
        "functions_to_trace", "trace_ignore_status_codes", "custom_repr", "error_sampler",
        "spotlight", "include_local_variables_in_logs", "send_default_pii_in_logs",
        "project_root",
        "enable_metrics", "before_send_metric", "cert_file", "key_file", "proxy_headers",
    }
)  # fmt: skip
_BODY_SIZES = ("never", "small", "medium", "always")


class Options:
    """Validated ``init()`` options: read-only; the class attributes are the defaults."""

    dsn: Optional[Dsn] = None
    release: Optional[str] = None
    environment: str = "production"
    server_name: Optional[str] = None
    dist: Optional[str] = None
    sample_rate: float = 1.0
    max_breadcrumbs: int = 100
    before_send: Optional[BeforeSend] = None
    before_breadcrumb: Optional[BeforeBreadcrumb] = None
    ignore_errors: tuple[ErrorSpec, ...] = ()
    send_default_pii: bool = False
    include_local_variables: bool = True
    include_source_context: bool = True
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    max_request_body_size: str = "medium"
    max_value_length: int = 1024
    attach_stacktrace: bool = False
    shutdown_timeout: float = 2.0
    transport_queue_size: int = 100
    debug: bool = False
    integrations: tuple[Integration, ...] = ()
    default_integrations: bool = True
    disabled_integrations: tuple[Any, ...] = ()
    auto_enabling_integrations: bool = True
    event_scrubber: EventScrubber = EventScrubber()
    send_client_reports: bool = True
    transport: Optional[Union[Transport, Callable[..., Any], type]] = None
    http_proxy: Optional[str] = None
    https_proxy: Optional[str] = None
    ca_certs: Optional[str] = None
    http_timeout: float = 10.0
    # Bugnet's own: the durable on-disk queue for what cannot be delivered now.
    spool_dir: Optional[str] = None
    spool_max_bytes: int = 64 * MiB
    spool_max_age: float = 7 * 24 * 3600.0

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - _FIELDS
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("options are read-only; use replace() for a changed copy")

    def replace(self, **changes: Any) -> Options:
        return Options(**{**self.__dict__, **changes})

    def __repr__(self) -> str:
        return f"Options({self.__dict__!r})"


_FIELDS = frozenset(Options.__annotations__)


def from_environment() -> dict[str, Any]:
    """The options the environment supplies (``BUGNET_*`` first, then ``SENTRY_*``)."""
    found: dict[str, Any] = {}
    for option in ("dsn", "release", "environment", "server_name", "spool_dir"):
        for prefix in ("BUGNET_", "SENTRY_"):
            value = os.environ.get(prefix + option.upper())
            if value:
                found[option] = value
                break
    debug = os.environ.get("BUGNET_DEBUG") or os.environ.get("SENTRY_DEBUG")
    if debug:
        found["debug"] = debug.lower() in ("1", "true", "yes", "on")
    return found


def default_spool_dir() -> str:
    """A per-user cache directory for the spool."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "bugnet", "spool")


def build_options(dsn: Optional[str], kwargs: dict[str, Any]) -> Options:
    """Validate ``init()`` arguments into :class:`Options`; raise TypeError/ValueError on misuse."""
    unknown = set(kwargs) - _FIELDS - IGNORED_SENTRY_OPTIONS
    if unknown:
        raise TypeError(f"bugnet.init() got unknown option(s): {', '.join(sorted(unknown))}")
    env = from_environment()
    values: dict[str, Any] = {k: v for k, v in kwargs.items() if k in _FIELDS}
    for key, value in env.items():
        if key != "spool_dir" and values.get(key) is None:
            values[key] = value
    raw_dsn = dsn if dsn is not None else env.get("dsn")
    values.pop("dsn", None)
    values["dsn"] = Dsn.parse(raw_dsn) if raw_dsn else None
    if "spool_dir" not in kwargs:
        values["spool_dir"] = env.get("spool_dir") or default_spool_dir()
    if values.get("server_name") is None:
        values["server_name"] = _hostname()
    if values.get("environment") is None:
        values["environment"] = "production"
    for name in ("ignore_errors", "in_app_include", "in_app_exclude", "integrations",
                 "disabled_integrations"):  # fmt: skip
        if name in values:
            values[name] = _as_tuple(values[name], name)
    rate = values.get("sample_rate", 1.0)
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"sample_rate must be a number between 0 and 1, got {rate!r}")
    for name in ("max_breadcrumbs", "transport_queue_size", "max_value_length", "spool_max_bytes"):
        value = values.get(name)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    for name in ("shutdown_timeout", "http_timeout", "spool_max_age"):
        value = values.get(name)
        if value is not None and (
            not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0
        ):
            raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    spool = values.get("spool_dir")
    if spool is not None and not isinstance(spool, (str, os.PathLike)):
        raise TypeError(f"spool_dir must be a path or None, got {type(spool).__name__}")
    if spool is not None:
        values["spool_dir"] = os.fspath(spool)
    body = values.get("max_request_body_size", "medium")
    if body not in _BODY_SIZES:
        raise ValueError(f"max_request_body_size must be one of {', '.join(_BODY_SIZES)}")
    for name in ("before_send", "before_breadcrumb"):
        if values.get(name) is not None and not callable(values[name]):
            raise TypeError(f"{name} must be a callable (event, hint) -> event | None")
    if values.get("event_scrubber") is None:
        values.pop("event_scrubber", None)
    return Options(**values)


def _as_tuple(value: Any, name: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, set, frozenset)):
        raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    return tuple(value)


def _hostname() -> Optional[str]:
    if hasattr(os, "uname"):
        return os.uname().nodename or None
    import socket  # pragma: no cover - Windows

    try:  # pragma: no cover
        return socket.gethostname()
    except OSError:  # pragma: no cover
        return None
