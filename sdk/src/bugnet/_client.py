"""The client: turns errors and messages into events and hands them to the transport.

The event pipeline is a list of plain steps ``(event, hint) -> event | None``; a step that
returns None drops the event and the drop is counted under that step's reason. Cheap decisions
(ignored type, dedupe, sampling) run before the exception's frames and locals are walked.
"""

from __future__ import annotations

import os
import sys

from bugnet import _scope
from bugnet._client_reports import DiscardCounter
from bugnet._envelope import Envelope, Item
from bugnet._fit import fit_event, normalize_shapes
from bugnet._guard import capture_internal_exceptions, report_internal_error, sdk_work
from bugnet._ids import new_event_id, random_fraction
from bugnet._scrub import FILTERED
from bugnet._serialize import to_jsonable
from bugnet._stacktrace import FrameOptions, current_stacktrace, exceptions_from_error
from bugnet._timestamps import format_timestamp
from bugnet._transport import HttpTransport, Transport
from bugnet._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

    from bugnet._options import Options
    from bugnet.integrations import Integration
    from bugnet.types import Event, ExcInfo, Hint, Mechanism

if TYPE_CHECKING:
    Step = Callable[[Event, Hint], Optional[Event]]

# Headers that carry cookies or the client's address: PII unless send_default_pii is set.
_PII_HEADERS = frozenset(
    {
        "cookie", "set-cookie", "x-forwarded-for", "x-real-ip", "forwarded", "x-client-ip",
        "cf-connecting-ip", "true-client-ip", "fastly-client-ip", "x-cluster-client-ip",
    }
)  # fmt: skip


class Client:
    """Holds the options, the transport and the integrations of one ``init()``."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.discards = DiscardCounter()
        self.transport: Optional[Transport] = _make_transport(options, self.discards)
        self.integrations: dict[str, Integration] = {}
        self.frame_options = FrameOptions(
            include_locals=options.include_local_variables,
            include_source=options.include_source_context,
            in_app_include=options.in_app_include,
            in_app_exclude=options.in_app_exclude,
            max_value_length=options.max_value_length,
        )
        # Cheap steps run before the exception is expanded; each has its drop reason.
        self.early_steps: list[tuple[Step, str]] = [
            (self._ignore_errors, "ignored"),
            (self._sample, "sample_rate"),
        ]
        self.late_steps: list[tuple[Step, str]] = [
            (self._expand, "internal_sdk_error"),
            (self._add_defaults, "internal_sdk_error"),
            (_scope.apply_scopes, "event_processor"),
            (self._snapshot_app_data, "internal_sdk_error"),
            (self._strip_pii, "event_processor"),
            (self._scrub, "event_processor"),
            (self._before_send, "before_send"),
        ]
        # Run on the transport's thread just before serialization (cheap for the app).
        self.finalizers: list[Callable[[Event], None]] = []
        self._sdk_name = "bugnet.python"
        self._static_contexts: Optional[dict[str, dict[str, Any]]] = None

    def is_active(self) -> bool:
        return self.transport is not None

    def add_early_step(self, step: Step, reason: str) -> None:
        self.early_steps.insert(len(self.early_steps) - 1, (step, reason))  # before sampling

    def set_sdk_flavor(self, flavor: str) -> None:
        self._sdk_name = f"bugnet.python.{flavor}"

    # -- capture --------------------------------------------------------------------------

    def capture_event(self, event: Event, hint: Optional[Hint] = None) -> Optional[str]:
        """Run ``event`` through the pipeline and queue it; returns its id, or None if dropped."""
        if self.transport is None:
            return None
        hint = hint if hint is not None else {}
        with sdk_work():
            try:
                return self._capture(event, hint)
            except Exception as exc:
                report_internal_error(exc)
                self.discards.record("internal_sdk_error", "error")
                return None

    def _capture(self, event: Event, hint: Hint) -> Optional[str]:
        for step, reason in (*self.early_steps, *self.late_steps):
            result = step(event, hint)
            if result is None:
                self.discards.record(reason, "error")
                return None
            event = result
        event_id = event.get("event_id") or new_event_id()
        event["event_id"] = event_id
        _scope.get_isolation_scope().last_event_id = event_id
        assert self.transport is not None
        self.transport.capture_envelope(self._envelope(event))
        return event_id

    def capture_exception(
        self,
        error: Any = None,
        mechanism: Optional[Mechanism] = None,
        hint: Optional[Hint] = None,
        level: str = "error",
    ) -> Optional[str]:
        """Capture ``error`` (an exception, an exc_info tuple, or None for the one being handled)."""
        if self.transport is None:
            return None
        exc_info = exc_info_from(error)
        if exc_info[1] is None:
            return None
        hint = {**(hint or {}), "exc_info": exc_info}
        if mechanism is not None:
            hint["mechanism"] = mechanism
        return self.capture_event({"level": level}, hint)

    def capture_message(self, message: str, level: Optional[str] = None) -> Optional[str]:
        if self.transport is None:
            return None
        event: Event = {"message": str(message), "level": level or "info"}
        hint: Hint = {}
        if self.options.attach_stacktrace:
            hint["stacktrace"] = current_stacktrace(self.frame_options)
        return self.capture_event(event, hint)

    # -- pipeline steps -------------------------------------------------------------------

    def _ignore_errors(self, event: Event, hint: Hint) -> Optional[Event]:
        exc_info = hint.get("exc_info")
        if not self.options.ignore_errors or not exc_info or exc_info[0] is None:
            return event
        exc_type = exc_info[0]
        names = {exc_type.__name__, f"{exc_type.__module__}.{exc_type.__qualname__}"}
        for spec in self.options.ignore_errors:
            if isinstance(spec, str):
                if spec in names:
                    return None
            elif isinstance(spec, type) and issubclass(exc_type, spec):
                return None
        return event

    def _sample(self, event: Event, hint: Hint) -> Optional[Event]:
        rate = self.options.sample_rate
        if rate >= 1.0 or random_fraction() < rate:
            return event
        return None

    def _expand(self, event: Event, hint: Hint) -> Optional[Event]:
        exc_info = hint.get("exc_info")
        if exc_info and exc_info[1] is not None and "exception" not in event:
            mechanism: Mechanism = hint.get("mechanism") or {"type": "generic", "handled": True}
            event["exception"] = {
                "values": exceptions_from_error(exc_info[1], self.frame_options, mechanism)
            }
        stacktrace = hint.get("stacktrace")
        if stacktrace and "exception" not in event and "threads" not in event:
            event["threads"] = {
                "values": [
                    {"id": _thread_id(), "current": True, "stacktrace": {"frames": stacktrace}}
                ]
            }
        return event

    def _add_defaults(self, event: Event, hint: Hint) -> Optional[Event]:
        options = self.options
        normalize_shapes(event)
        event.setdefault("event_id", new_event_id())
        if "timestamp" not in event:
            event["timestamp"] = format_timestamp()
        elif not isinstance(event["timestamp"], str):
            event["timestamp"] = format_timestamp(event["timestamp"])
        event.setdefault("level", "error")
        event.setdefault("platform", "python")
        for key in ("release", "environment", "dist", "server_name"):
            value = getattr(options, key)
            if value is not None and key not in event:
                event[key] = value
        contexts = event.setdefault("contexts", {})
        for name, value in self.static_contexts().items():
            contexts.setdefault(name, value)
        event["sdk"] = {
            "name": self._sdk_name,
            "version": __version__,
            "packages": [{"name": "pypi:bugnet", "version": __version__}],
            "integrations": sorted(self.integrations),
        }
        return event

    def _snapshot_app_data(self, event: Event, hint: Hint) -> Optional[Event]:
        """Copy app-supplied data into plain, bounded JSON values, so the app may go on
        mutating its objects (and cycles or odd types cannot trip what follows)."""
        limit = self.options.max_value_length
        for key in ("extra", "contexts", "user", "request", "tags"):
            if key in event:
                event[key] = to_jsonable(event[key], limit)
        return event

    def static_contexts(self) -> dict[str, dict[str, Any]]:
        if self._static_contexts is None:
            import platform

            uname = platform.uname() if hasattr(os, "uname") else None
            self._static_contexts = {
                "runtime": {
                    "name": platform.python_implementation(),
                    "version": platform.python_version(),
                    "build": sys.version,
                },
                "os": {
                    "name": uname.system if uname else platform.system(),
                    "version": uname.release if uname else platform.release(),
                    "kernel_version": uname.version if uname else None,
                },
            }
        return {k: dict(v) for k, v in self._static_contexts.items()}

    def _strip_pii(self, event: Event, hint: Hint) -> Optional[Event]:
        if self.options.send_default_pii:
            return event
        request = event.get("request")
        if isinstance(request, dict):
            if request.get("cookies"):
                request["cookies"] = FILTERED
            headers = request.get("headers")
            if isinstance(headers, dict):
                for name in list(headers):
                    if str(name).lower() in _PII_HEADERS:
                        headers[name] = FILTERED
            elif isinstance(headers, list):  # [[name, value], ...] when a header repeats
                request["headers"] = [
                    [pair[0], FILTERED]
                    if isinstance(pair, (list, tuple))
                    and len(pair) == 2
                    and str(pair[0]).lower() in _PII_HEADERS
                    else pair
                    for pair in headers
                ]
            env = request.get("env")
            if isinstance(env, dict):
                env.pop("REMOTE_ADDR", None)
        return event

    def _scrub(self, event: Event, hint: Hint) -> Optional[Event]:
        self.options.event_scrubber.scrub_event(event)
        return event

    def _before_send(self, event: Event, hint: Hint) -> Optional[Event]:
        before_send = self.options.before_send
        if before_send is None:
            return event
        with capture_internal_exceptions():
            return before_send(event, hint)
        return event  # before_send raised: send the event as it was

    # -- envelopes ------------------------------------------------------------------------

    def _envelope(self, event: Event) -> Envelope:
        options = self.options
        headers: dict[str, Any] = {"event_id": event["event_id"]}
        trace = event.get("contexts", {}).get("trace", {})
        if options.dsn is not None and trace.get("trace_id"):
            dsc = {"trace_id": trace["trace_id"], "public_key": options.dsn.public_key}
            if options.release:
                dsc["release"] = options.release
            if options.environment:
                dsc["environment"] = options.environment
            headers["trace"] = dsc
        item = Item.from_json("event", event)
        item.prepare = self._finalize
        return Envelope(headers, [item])

    def _finalize(self, event: Event) -> bytes:
        """On the transport's thread: late enrichments, then JSON kept under 1 MiB."""
        for finalizer in self.finalizers:
            with capture_internal_exceptions():
                finalizer(event)
        return fit_event(event)

    # -- lifecycle ------------------------------------------------------------------------

    def flush(self, timeout: Optional[float] = None) -> bool:
        if self.transport is None:
            return True
        timeout = self.options.shutdown_timeout if timeout is None else timeout
        return self.transport.flush(timeout)

    def close(self, timeout: Optional[float] = None) -> None:
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.close(self.options.shutdown_timeout if timeout is None else timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_transport(options: Options, discards: DiscardCounter) -> Optional[Transport]:
    custom = options.transport
    if custom is not None:
        if isinstance(custom, Transport):
            return custom
        if isinstance(custom, type) and issubclass(custom, Transport):
            return custom()
        if callable(custom):
            return _FunctionTransport(custom)
        raise TypeError("transport must be a Transport, a Transport subclass or a callable")
    if options.dsn is None:
        return None
    return HttpTransport(options, discards)


class _FunctionTransport(Transport):
    """``transport=callable``: called with each envelope on the capturing thread."""

    def __init__(self, function: Callable[[Envelope], Any]) -> None:
        self._function = function

    def capture_envelope(self, envelope: Envelope) -> None:
        self._function(envelope)


def exc_info_from(error: Any) -> ExcInfo:
    if error is None:
        return sys.exc_info()
    if isinstance(error, BaseException):
        return type(error), error, error.__traceback__
    if isinstance(error, tuple) and len(error) == 3:
        return error
    raise TypeError(f"capture_exception() takes an exception or an exc_info tuple, not {error!r}")


def _thread_id() -> int:
    import threading

    return threading.get_ident()
