"""Celery: every task runs in its own scope (its name as ``transaction``, its id, arguments and
retry count in the ``celery`` context and tags), and a task that fails is reported once, in the
worker and in eager mode alike. What Celery counts as an outcome rather than a failure is not
reported: ``Retry`` (a breadcrumb instead), ``Ignore``, ``Reject`` and the task's expected
errors (``throws=``); once the retries run out, the final failure is.

Celery's signals do all of it; nothing is patched:

- ``task_prerun`` / ``task_postrun`` open and close the task's isolation scope. In a worker the
  scope starts without breadcrumbs, so a task never carries another task's log lines; run
  eagerly, a task keeps its caller's (a request that ran it, say).
- ``task_failure`` reports the failure, in the task's scope (or, for what the worker's main
  process reports, such as a hard time limit or a lost child, in a scope made for it).
  ``task_internal_error`` reports what escapes the task: with ``task_eager_propagates``, the
  task's own exception, which Celery then raises to the caller (the dedupe step drops a second
  report of that exception object by the caller or by another integration).
- ``task_retry`` records a breadcrumb; run eagerly, in the caller's scope, so the next attempt
  (and the caller's own events) show the retries.
- ``worker_process_shutdown`` runs in a prefork child just before it ends with ``os._exit``
  (atexit handlers never run there; with ``max_tasks_per_child=1`` that is after every task):
  the client is closed, which delivers what is queued within ``shutdown_timeout`` and spools
  what is left. ``worker_shutdown`` flushes the worker's main process, and beat's ends
  normally: there atexit closes the client.

Celery also logs each failure itself ("Task ... raised unexpected", "Task handler raised
error", "Hard time limit exceeded"): those records tell of a failure already reported, so they
do not become events of their own (they still reach the app's log handlers).
"""

from __future__ import annotations

import contextvars
import sys
import threading

from bugnet import _api, _patching, _scope
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration, module_ready

try:
    from celery import signals  # type: ignore[import-untyped]
    from celery.exceptions import TaskPredicate  # type: ignore[import-untyped]
    from celery.utils.serialization import (  # type: ignore[import-untyped]
        UnpickleableExceptionWrapper,
    )
except ImportError as exc:  # pragma: no cover - exercised without Celery installed
    raise ImportError(
        "the Celery integration needs Celery: pip install 'bugnet[celery]' (or pip install celery)"
    ) from exc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from bugnet._client import Client
    from bugnet.types import Breadcrumb, Event, Hint, Mechanism

__traceback_hide__ = True

MECHANISM = "celery"
# Task ids whose failure was reported, so that Celery's log records of the same failure (and
# its second signal of a hard time limit) are dropped.
REPORTED_IDS_KEPT = 256
_REPORTED = "__bugnet_celery_reported__"  # set on a reported exception, for the same reason


class CeleryIntegration(Integration):
    """Report Celery task failures. ``propagate_traces``, ``monitor_beat_tasks`` and
    ``exclude_beat_tasks`` are sentry-sdk's tracing and cron options: accepted, so code written
    for sentry-sdk keeps working, and ignored (Bugnet tracks errors)."""

    identifier = "celery"

    def __init__(
        self,
        propagate_traces: bool = True,
        monitor_beat_tasks: bool = False,
        exclude_beat_tasks: Any = None,
    ) -> None:
        self._reported_ids: dict[Any, None] = {}  # the latest ones, oldest first
        self._lock = threading.Lock()

    @classmethod
    def setup_once(cls) -> None:
        receivers = (
            (signals.task_prerun, _task_prerun),
            (signals.task_postrun, _task_postrun),
            (signals.task_failure, _task_failure),
            (signals.task_internal_error, _task_internal_error),
            (signals.task_retry, _task_retry),
            (signals.worker_process_shutdown, _worker_process_shutdown),
            (signals.worker_shutdown, _worker_shutdown),
        )
        for signal, receiver in receivers:
            signal.connect(receiver, weak=False, dispatch_uid=_DISPATCH_UID)
            _patching.on_undo(_disconnecter(signal, receiver))

    def setup(self, client: Client) -> None:
        client.add_early_step(self.drop_celery_duplicates, "event_processor")

    def drop_celery_duplicates(self, event: Event, hint: Hint) -> Optional[Event]:
        """Drop the events Celery's own log records of a reported failure would make."""
        record = hint.get("log_record")
        if record is None or not str(getattr(record, "name", "")).startswith("celery."):
            return event
        # "Task ... raised unexpected: ..." (or "INTERNAL ERROR"), with the task's id.
        data = getattr(record, "data", None)
        if isinstance(data, dict) and self.was_reported(data.get("id")):
            return None
        # "Task handler raised error: ...", with the exception the main process reported.
        exc_info = getattr(record, "exc_info", None)
        if exc_info and self._error_was_reported(exc_info[1]):
            return None
        # Logged just before the main process reports the TimeLimitExceeded failure.
        message = getattr(record, "msg", None)
        if isinstance(message, str) and message.startswith("Hard time limit"):
            return None
        return event

    def remember(self, task_id: Any, error: BaseException) -> None:
        if task_id is not None:
            with self._lock:
                self._reported_ids[task_id] = None
                while len(self._reported_ids) > REPORTED_IDS_KEPT:
                    del self._reported_ids[next(iter(self._reported_ids))]
        try:
            setattr(error, _REPORTED, True)
        except Exception:  # an exception type that refuses attributes: its log may be sent too
            pass

    def was_reported(self, task_id: Any) -> bool:
        try:
            return task_id in self._reported_ids
        except TypeError:  # not hashable: not a task id
            return False

    def _error_was_reported(self, error: Any) -> bool:
        inner = getattr(error, "exc", None)  # billiard's ExceptionWithTraceback wraps it
        if isinstance(inner, BaseException):
            error = inner
        return getattr(error, _REPORTED, False) is True


_DISPATCH_UID = "bugnet.integrations.celery"


def _disconnecter(signal: Any, receiver: Any) -> Any:
    return lambda: signal.disconnect(receiver, dispatch_uid=_DISPATCH_UID)


def _active() -> Optional[CeleryIntegration]:
    integration = _api.get_client().integrations.get(CeleryIntegration.identifier)
    return integration if isinstance(integration, CeleryIntegration) else None


# -- one scope per task ---------------------------------------------------------------------


class _Run:
    """A task being run in this context: the isolation scope opened for it (on creation) and
    the one it was run from."""

    __slots__ = ("eager", "opener", "outer", "scopes", "task_id")

    def __init__(self, task_id: Any, eager: bool) -> None:
        self.task_id = task_id
        self.eager = eager
        self.outer = _scope.get_isolation_scope()
        self.opener = _scope.isolation_scope()
        self.scopes = (self.opener.__enter__(), _scope.get_current_scope())


# The tasks running in this context, innermost last (an eager task may run another).
_runs: contextvars.ContextVar[tuple[_Run, ...]] = contextvars.ContextVar(
    "bugnet_celery_runs", default=()
)
# The last task whose run ended with an exception escaping it: Celery signals that exception
# (task_internal_error) after task_postrun, and it is reported with the task's scopes.
_escaped: contextvars.ContextVar[Optional[_Run]] = contextvars.ContextVar(
    "bugnet_celery_escaped", default=None
)


def _task_prerun(sender: Any = None, **signal: Any) -> None:
    if _active() is None:
        return
    with capture_internal_exceptions():
        task_id = signal.get("task_id")
        request = getattr(sender, "request", None)
        eager = bool(getattr(request, "is_eager", False))
        run = _Run(task_id, eager)
        _runs.set((*_runs.get(), run))
        _escaped.set(None)
        isolation, current = run.scopes
        if not eager:
            # A worker's own log lines (and those of the tasks it ran before) are no part of
            # this task's story.
            isolation.clear_breadcrumbs()
            current.clear_breadcrumbs()
        _describe(isolation, sender, request, task_id, signal.get("args"), signal.get("kwargs"))


def _task_postrun(sender: Any = None, task_id: Any = None, state: Any = None, **extra: Any) -> None:
    # Runs even when the integration was switched off meanwhile: a scope opened is closed.
    runs = _runs.get()
    if not runs:
        return
    with capture_internal_exceptions():
        index = len(runs) - 1
        while index >= 0 and runs[index].task_id != task_id:
            index -= 1
        if index < 0:
            return
        for run in reversed(runs[index:]):
            run.opener.__exit__(None, None, None)
        _runs.set(runs[:index])
        # No state: an exception escapes the task (see _task_internal_error).
        _escaped.set(runs[index] if state is None else None)


def _describe(
    scope: _scope.Scope, task: Any, request: Any, task_id: Any, args: Any, kwargs: Any
) -> None:
    """Put the task's name, id, arguments and retry count on ``scope``."""
    name = _task_name(task, request)
    same_task = request is not None and getattr(request, "id", None) == task_id
    context: dict[str, Any] = {
        "task_name": name,
        "task_id": task_id,
        "args": list(args) if isinstance(args, (list, tuple)) else args,
        "kwargs": dict(kwargs) if isinstance(kwargs, dict) else kwargs,
    }
    if same_task:
        context["retries"] = getattr(request, "retries", None) or 0
        delivery_info = getattr(request, "delivery_info", None) or {}
        queue = delivery_info.get("routing_key") if isinstance(delivery_info, dict) else None
        if queue:
            context["queue"] = queue
        for key in ("parent_id", "root_id"):
            value = getattr(request, key, None)
            if value and value != task_id:
                context[key] = value
        context["eager"] = bool(getattr(request, "is_eager", False))
    scope.set_transaction_name(name)
    scope.set_tag("celery.task_name", name)
    if task_id is not None:
        scope.set_tag("celery.task_id", task_id)
    scope.set_context("celery", context)


def _task_name(task: Any, request: Any) -> str:
    # A task sent with shadow="..." is logged (and reported) under that name.
    return str(getattr(request, "shadow", None) or getattr(task, "name", None) or "celery task")


def _current_run(task_id: Any) -> Optional[_Run]:
    for run in reversed(_runs.get()):
        if run.task_id == task_id:
            return run
    return None


class _using_scopes:
    """Make ``scopes`` this context's isolation and current scopes for the block."""

    __slots__ = ("_scopes", "_tokens")

    def __init__(self, scopes: tuple[_scope.Scope, _scope.Scope]) -> None:
        self._scopes = scopes

    def __enter__(self) -> None:
        self._tokens = (
            _scope._isolation_var.set(self._scopes[0]),
            _scope._current_var.set(self._scopes[1]),
        )

    def __exit__(self, *exc: object) -> None:
        _scope._current_var.reset(self._tokens[1])
        _scope._isolation_var.reset(self._tokens[0])


# -- failures -------------------------------------------------------------------------------


def _task_failure(sender: Any = None, **signal: Any) -> None:
    integration = _active()
    if integration is None:
        return
    with capture_internal_exceptions():
        _report(integration, sender, signal, _current_run(signal.get("task_id")))


def _task_internal_error(sender: Any = None, **signal: Any) -> None:
    integration = _active()
    escaped = _escaped.get()
    _escaped.set(None)
    if integration is None:
        return
    with capture_internal_exceptions():
        task_id = signal.get("task_id")
        run = _current_run(task_id)
        if run is None and escaped is not None and escaped.task_id == task_id:
            run = escaped
        _report(integration, sender, signal, run)


def _report(
    integration: CeleryIntegration, task: Any, signal: dict[str, Any], run: Optional[_Run]
) -> None:
    """Report the failure of a ``task_failure`` or ``task_internal_error`` signal."""
    task_id, exception = signal.get("task_id"), signal.get("exception")
    if not isinstance(exception, Exception) or isinstance(exception, TaskPredicate):
        return  # Retry, Ignore and Reject are outcomes, not failures
    if run is None and task_id is not None and integration.was_reported(task_id):
        # A hard time limit is signalled twice (the pool's failure, then the timeout), each
        # with an exception of its own: one report, and no log record of either sent.
        integration.remember(None, exception)
        return
    error = _original(exception)
    if _expected(task, error) or _expected(task, exception):
        return
    integration.remember(task_id, error)
    integration.remember(None, exception)
    exc_info = (type(error), error, error.__traceback__)
    mechanism: Mechanism = {"type": MECHANISM, "handled": False}
    client = _api.get_client()
    if run is not None:
        with _using_scopes(run.scopes):
            client.capture_exception(exc_info, mechanism=mechanism)
        return
    # Reported by the worker's main process (a hard time limit, a lost child), or from outside
    # any task run: a scope of its own, with the task's data and without the worker's history.
    with _scope.isolation_scope() as scope:
        scope.clear_breadcrumbs()
        _scope.get_current_scope().clear_breadcrumbs()
        request = getattr(task, "request", None)
        _describe(scope, task, request, task_id, signal.get("args"), signal.get("kwargs"))
        client.capture_exception(exc_info, mechanism=mechanism)


def _original(exception: BaseException) -> BaseException:
    """The exception the task raised, when Celery signals a picklable stand-in for it.

    Celery sends the failure to the result backend, so it swaps an exception that does not
    pickle for a picklable copy of a base class, or for an ``UnpickleableExceptionWrapper``.
    The signal is sent while the original is being handled: that one is reported.
    """
    raised = sys.exc_info()[1]
    if raised is None or raised is exception:
        return exception
    if isinstance(exception, UnpickleableExceptionWrapper):
        kind = type(raised)
        if exception.exc_cls_name == kind.__name__ and exception.exc_module == kind.__module__:
            return raised
    elif isinstance(raised, type(exception)) and raised.args == exception.args:
        return raised
    return exception


def _expected(task: Any, exception: BaseException) -> bool:
    """True for the exceptions listed in the task's ``throws``: Celery's expected errors."""
    throws = getattr(task, "throws", None)
    if not throws:
        return False
    if isinstance(throws, list):
        throws = tuple(throws)
    try:
        return isinstance(exception, throws)
    except TypeError:  # not a type or a tuple of types: Celery itself would fail on it
        return False


# -- retries --------------------------------------------------------------------------------


def _task_retry(sender: Any = None, request: Any = None, reason: Any = None, **extra: Any) -> None:
    if _active() is None:
        return
    with capture_internal_exceptions():
        task_id = getattr(request, "id", None)
        name = _task_name(sender, request)
        retry = (getattr(request, "retries", None) or 0) + 1
        crumb: Breadcrumb = {
            "type": "default",
            "category": "celery",
            "level": "warning",
            "message": f"{name} retry {retry}: {reason}",
            "data": {"task_name": name, "task_id": task_id, "retry": retry},
        }
        cause = getattr(reason, "exc", None)
        if isinstance(cause, BaseException):
            crumb["data"]["exception"] = f"{type(cause).__name__}: {cause}"
        run = _current_run(task_id)
        client = _api.get_client()
        if run is not None and run.eager:
            # The next attempt runs from the caller's scope: that is where the retry is told.
            with _using_scopes((run.outer, _scope.get_current_scope())):
                _api.add_breadcrumb_to_scope(client, crumb, {})
        else:
            _api.add_breadcrumb_to_scope(client, crumb, {})


# -- delivery before a process ends ---------------------------------------------------------


def _worker_process_shutdown(**extra: Any) -> None:
    # A prefork child, about to end with os._exit: atexit will not run.
    with capture_internal_exceptions():
        client = _api.get_client()
        if client.is_active() and CeleryIntegration.identifier in client.integrations:
            client.close()


def _worker_shutdown(**extra: Any) -> None:
    with capture_internal_exceptions():
        client = _api.get_client()
        if client.is_active() and CeleryIntegration.identifier in client.integrations:
            client.flush()


module_ready(__name__)
