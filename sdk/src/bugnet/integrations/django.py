"""Django: every request in its own scope with its data, ``transaction`` from the URL pattern
(or the view's name), the logged-in user (with ``send_default_pii``), SQL queries as
breadcrumbs, the template line of a template error, and every exception that becomes a 500
reported once, under WSGI and ASGI, Django REST framework included.

Hooks, Django's own first:

- the ``got_request_exception`` signal reports what Django turns into a 500 (as raven did); the
  exception is ``sys.exc_info()`` there, also for async views, whose exception asgiref re-raises
  in the thread that runs the signal;
- the ``connection_created`` signal adds an execute wrapper (Django's documented way to watch
  queries) to each database connection;
- ``BaseHandler.get_response`` / ``get_response_async`` are wrapped to tie the request to the
  scope (Django has no signal that carries the request at its start); ``WSGIHandler.__call__``
  and ``ASGIHandler.__call__`` to open the request's isolation scope around everything Django
  does for it, the streaming of the response included;
- ``response_for_exception`` is wrapped for the HTTP errors (``Http404``, ``PermissionDenied``,
  ``BadRequest``...) that ``failed_request_status_codes`` asks for: Django answers them
  without a signal;
- Django REST framework: ``APIView.handle_exception`` is wrapped, because DRF's exception
  handler answers its own exceptions (and whatever a custom handler takes) without Django
  seeing them.

Django's own log line of the same exception ("Internal Server Error: /path") is the same
exception object: the dedupe step drops it.
"""

from __future__ import annotations

import sys
import time

from bugnet import _api, _import_hooks, _patching, _scope
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration, module_ready
from bugnet.integrations._web import checked_transaction_style, failed_status_codes, parse_body
from bugnet.integrations.wsgi import IN_REQUEST, RequestData, report, run_request

try:
    from django.core import signals
    from django.core.handlers import asgi as asgi_handler
    from django.core.handlers import base as base_handler
    from django.core.handlers import exception as exception_handling
    from django.core.handlers import wsgi as wsgi_handler
    from django.db.backends.signals import connection_created
except ImportError as exc:  # pragma: no cover - exercised without Django installed
    raise ImportError(
        "the Django integration needs Django: pip install 'bugnet[django]' (or pip install django)"
    ) from exc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType, TracebackType
    from typing import Any, Optional

    from bugnet._client import Client
    from bugnet.types import Event, Hint

__traceback_hide__ = True

TRANSACTION_STYLES = ("url", "function_name")
MAX_QUERY_LENGTH = 2048  # characters of SQL kept per breadcrumb


class DjangoIntegration(Integration):
    identifier = "django"

    def __init__(
        self,
        transaction_style: str = "url",
        failed_request_status_codes: Any = None,
        **tracing_options: Any,
    ) -> None:
        # sentry-sdk's tracing switches (middleware_spans, signals_spans, cache_spans...) are
        # accepted so a switch keeps working; Bugnet tracks errors and ignores them.
        unknown = set(tracing_options) - SENTRY_TRACING_OPTIONS
        if unknown:
            raise TypeError(f"DjangoIntegration() got unknown option(s): {sorted(unknown)}")
        self.transaction_style = checked_transaction_style(transaction_style, TRANSACTION_STYLES)
        self.failed_request_status_codes = failed_status_codes(failed_request_status_codes)

    @classmethod
    def setup_once(cls) -> None:
        _patch_handlers()
        signals.got_request_exception.connect(_got_request_exception, weak=False)
        connection_created.connect(_watch_connection, weak=False)
        _patching.on_undo(_disconnect)
        _patching.on_undo(_unwatch_connections)
        _watch_open_connections()
        _import_hooks.when_imported("rest_framework.views", _patch_rest_framework)

    def setup(self, client: Client) -> None:
        client.add_early_step(_drop_response_log, "event_processor")
        # Right after the exception is turned into frames: add the template's line.
        for index, (step, _reason) in enumerate(client.late_steps):
            if getattr(step, "__name__", "") == "_expand":
                client.late_steps.insert(index + 1, (_add_template_frame, "internal_sdk_error"))
                return


SENTRY_TRACING_OPTIONS = frozenset(
    {
        "middleware_spans", "signals_spans", "cache_spans", "signals_denylist",
        "http_methods_to_capture", "db_transaction_style",
    }
)  # fmt: skip


def _disconnect() -> None:
    signals.got_request_exception.disconnect(_got_request_exception)
    connection_created.disconnect(_watch_connection)


def _active() -> Optional[DjangoIntegration]:
    integration = _api.get_client().integrations.get(DjangoIntegration.identifier)
    return integration if isinstance(integration, DjangoIntegration) else None


# -- the request cycle ----------------------------------------------------------------------


def _patch_handlers() -> None:
    original_wsgi_call = wsgi_handler.WSGIHandler.__call__
    original_asgi_call = asgi_handler.ASGIHandler.__call__
    original_get_response = base_handler.BaseHandler.get_response
    original_get_response_async = base_handler.BaseHandler.get_response_async
    original_response_for_exception = exception_handling.response_for_exception
    original_process_exception = base_handler.BaseHandler.process_exception_by_middleware

    def wsgi_call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if _active() is None:
            return original_wsgi_call(self, environ, start_response)
        return run_request(
            lambda e, s: original_wsgi_call(self, e, s),
            environ,
            start_response,
            "django",
            request_data=False,
        )

    async def asgi_call(self: Any, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("type") != "http" or scope.get(IN_REQUEST) or _active() is None:
            return await original_asgi_call(self, scope, receive, send)
        scope[IN_REQUEST] = True
        with _scope.isolation_scope():
            try:
                return await original_asgi_call(self, scope, receive, send)
            except BaseException:
                report(sys.exc_info(), "django")
                raise

    def get_response(self: Any, request: Any) -> Any:
        integration = _active()
        if integration is None:
            return original_get_response(self, request)
        if _watched(request):
            _attach(request, integration)
            return original_get_response(self, request)
        with _scope.isolation_scope():  # a handler of its own, such as the test client's
            _attach(request, integration)
            return original_get_response(self, request)

    async def get_response_async(self: Any, request: Any) -> Any:
        integration = _active()
        if integration is None:
            return await original_get_response_async(self, request)
        if _watched(request):
            _attach(request, integration)
            return await original_get_response_async(self, request)
        with _scope.isolation_scope():
            _attach(request, integration)
            return await original_get_response_async(self, request)

    def response_for_exception(request: Any, exc: Exception) -> Any:
        response = original_response_for_exception(request, exc)
        with capture_internal_exceptions():
            integration = _active()
            # Only HTTP errors: the crashes went through the signal.
            if integration is not None and isinstance(exc, _http_errors()):
                _report_answered(request, exc, response, integration, _http_errors())
        return response

    def process_exception_by_middleware(self: Any, exception: Exception, request: Any) -> Any:
        response = original_process_exception(self, exception, request)
        # A middleware's process_exception() answered: the app handled the exception itself.
        # An HTTP error counts when failed_request_status_codes asks; anything else answered
        # with a 5xx was a crash.
        with capture_internal_exceptions():
            integration = _active()
            if integration is not None and response is not None:
                _report_answered(request, exception, response, integration, _http_errors())
        return response

    _patching.patch(wsgi_handler.WSGIHandler, "__call__", wsgi_call)
    _patching.patch(asgi_handler.ASGIHandler, "__call__", asgi_call)
    _patching.patch(base_handler.BaseHandler, "get_response", get_response)
    _patching.patch(base_handler.BaseHandler, "get_response_async", get_response_async)
    _patching.patch(exception_handling, "response_for_exception", response_for_exception)
    _patching.patch(
        base_handler.BaseHandler, "process_exception_by_middleware", process_exception_by_middleware
    )


def _report_answered(
    request: Any,
    exc: BaseException,
    response: Any,
    integration: DjangoIntegration,
    http_errors: tuple[type[BaseException], ...],
) -> None:
    """Report ``exc``, which a handler of the app's answered with ``response``: an HTTP error
    when its status is one of ``failed_request_status_codes``, anything else on a 5xx."""
    status = getattr(response, "status_code", None)
    if isinstance(exc, http_errors):
        if status in integration.failed_request_status_codes:
            _report(request, (type(exc), exc, exc.__traceback__))
    elif not isinstance(status, int) or status >= 500:
        _report(request, (type(exc), exc, exc.__traceback__))


REPORTED = "_bugnet_reported"  # set on a request whose failure was reported


def _report(request: Any, exc_info: Any) -> None:
    """Report the exception that failed ``request``, and remember that it was."""
    report(exc_info, "django")
    with capture_internal_exceptions():
        setattr(getattr(request, "_request", request), REPORTED, True)  # DRF wraps the request


def _drop_response_log(event: Event, hint: Hint) -> Optional[Event]:
    """Django logs every 5xx response ("Service Unavailable: /path"), without the exception:
    when the request's exception was reported, that line is the same failure again."""
    record = hint.get("log_record")
    if (
        record is not None
        and record.name == "django.request"
        and "exc_info" not in hint
        and getattr(getattr(record, "request", None), REPORTED, False)
    ):
        return None
    return event


def _watched(request: Any) -> bool:
    """Whether a WSGI or ASGI entry of ours opened this request's scope."""
    if request.META.get(IN_REQUEST):
        return True
    asgi_scope = getattr(request, "scope", None)
    return isinstance(asgi_scope, dict) and bool(asgi_scope.get(IN_REQUEST))


def _attach(request: Any, integration: DjangoIntegration) -> None:
    with capture_internal_exceptions():
        scope = _scope.get_isolation_scope()
        scope.set_transaction_name(request.path_info or "/")
        scope.add_event_processor(_RequestProcessor(request, integration.transaction_style))


def _http_errors() -> tuple[type[BaseException], ...]:
    from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
    from django.http import Http404
    from django.http.multipartparser import MultiPartParserError

    return (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


def _got_request_exception(sender: Any, request: Any = None, **extra: Any) -> None:
    if _active() is not None:
        _report(request, sys.exc_info())


class _RequestProcessor:
    """Adds the request, the route's transaction name and (with ``send_default_pii``) the
    logged-in user to each event of the request."""

    def __init__(self, request: Any, transaction_style: str) -> None:
        self.request = request
        self.transaction_style = transaction_style
        self.data = DjangoRequestData(request)

    def __call__(self, event: Event, hint: Hint) -> Event:
        request = self.request
        with capture_internal_exceptions():
            if "request" not in event:
                event["request"] = self.data.as_dict()
            name = _transaction_name(request, self.transaction_style)
            if name and event.get("transaction") in (None, request.path_info or "/"):
                event["transaction"] = name
            if self.data.pii:
                user = _logged_in_user(request)
                ip = self.data.client_ip()
                if ip and "ip_address" not in user:
                    user["ip_address"] = ip
                if user:
                    event["user"] = {**user, **event.get("user", {})}  # type: ignore[typeddict-item]
        return event


class DjangoRequestData(RequestData):
    """The request from Django's ``HttpRequest``: ``request.META`` is the WSGI environ (under
    ASGI, Django builds the same keys), and the body comes from what Django keeps of it."""

    def __init__(self, request: Any) -> None:
        super().__init__(request.META, record=False)
        self.request = request

    def scheme(self) -> str:
        return str(self.request.scheme)

    def _body_bytes(self) -> Any:
        request = self.request
        length = _content_length(request.META)
        if length is not None and length > self.limit:
            return f"[body of {length} bytes omitted]"
        body = request.__dict__.get("_body")
        if body is None and request.__dict__.get("_read_started"):
            # Django streamed it (a multipart form): show the fields it parsed.
            post = request.__dict__.get("_post")
            return _form_note(post) if post is not None else None
        if body is None:
            if length is None:
                return None  # chunked or unknown, and unread by the app: never read it for us
            body = request.body  # small and complete: Django keeps it for the app, too
        if len(body) > self.limit:
            return f"[body of {len(body)} bytes omitted]"
        return body

    def body(self) -> Any:
        raw = self._body_bytes() if self.limit and self.request.method not in _NO_BODY else None
        if raw is None or isinstance(raw, (str, dict)):
            return raw
        return parse_body(raw, str(self.request.META.get("CONTENT_TYPE", "")))


_NO_BODY = ("GET", "HEAD", "OPTIONS")


def _form_note(post: Any) -> Any:
    return {key: values[0] if len(values) == 1 else values for key, values in post.lists()}


def _content_length(meta: Any) -> Optional[int]:
    try:
        value = int(meta.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return None
    return value if value >= 0 else None


def _transaction_name(request: Any, style: str) -> Optional[str]:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    if style == "function_name":
        return str(match._func_path)
    route = getattr(match, "route", None)
    if route:
        return "/" + str(route).lstrip("^").rstrip("$").lstrip("/")
    return str(match._func_path)


def _logged_in_user(request: Any) -> dict[str, Any]:
    """``django.contrib.auth``'s user, when the request has one and someone is logged in. The
    lazy ``request.user`` is only evaluated outside an event loop (it may query the database)."""
    user = request.__dict__.get("_cached_user") or request.__dict__.get("_acached_user")
    if user is None and "user" in request.__dict__ and not _in_event_loop():
        user = request.user
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    out: dict[str, Any] = {}
    with capture_internal_exceptions():
        out["id"] = str(user.pk)
    with capture_internal_exceptions():
        out["username"] = str(user.get_username())
    email = getattr(user, "email", None)
    if isinstance(email, str) and email:
        out["email"] = email
    return out


def _in_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# -- SQL queries as breadcrumbs ---------------------------------------------------------------


def _record_query(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
    """An execute wrapper: the query (placeholders, never the values) as a breadcrumb; its
    parameters only with ``send_default_pii``, and scrubbed by name when they are named."""
    if _active() is None:
        return execute(sql, params, many, context)
    start = time.perf_counter()
    failed = True
    try:
        result = execute(sql, params, many, context)
        failed = False
        return result
    finally:
        with capture_internal_exceptions():
            data: dict[str, Any] = {
                "db.system": context["connection"].vendor,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
            }
            if many:
                data["db.executemany"] = True
            if params is not None and not many and _api.get_client().options.send_default_pii:
                data["db.params"] = params
            _api.add_breadcrumb(
                type="query",
                category="query",
                message=str(sql)[:MAX_QUERY_LENGTH],
                level="error" if failed else "info",
                data=data,
            )


def _watch_connection(sender: Any, connection: Any, **extra: Any) -> None:
    wrappers = connection.execute_wrappers
    if _record_query not in wrappers:
        wrappers.insert(0, _record_query)  # outermost: it times the others too


def _watch_open_connections() -> None:
    """Connections opened before ``init()`` (in this thread) get the wrapper too."""
    with capture_internal_exceptions():
        from django.conf import settings

        if not settings.configured:
            return
        from django.db import connections

        for connection in connections.all(initialized_only=True):
            _watch_connection(None, connection)


def _unwatch_connections() -> None:
    from django.conf import settings

    if not settings.configured:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        while _record_query in connection.execute_wrappers:
            connection.execute_wrappers.remove(_record_query)


# -- Django REST framework ---------------------------------------------------------------------


def _patch_rest_framework(module: Any) -> None:
    from rest_framework.exceptions import APIException  # type: ignore[import-untyped]

    original = module.APIView.handle_exception

    def handle_exception(self: Any, exc: Exception) -> Any:
        response = original(self, exc)
        # Reached only when DRF's exception handler answered (otherwise the call raised and
        # Django's signal reports it).
        with capture_internal_exceptions():
            integration = _active()
            if integration is not None:
                errors = (APIException, *_http_errors())
                _report_answered(self.request, exc, response, integration, errors)
        return response

    _patching.patch(module.APIView, "handle_exception", handle_exception)


# -- templates -----------------------------------------------------------------------------------


def _add_template_frame(event: Event, hint: Hint) -> Event:
    """For an error in a Django template, a last frame pointing at the template's line."""
    exc_info = hint.get("exc_info")
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else None
    if not exc_info or not values or exc_info[1] is None:
        return event
    with capture_internal_exceptions():
        frame = _template_frame(exc_info[1])
        if frame is not None:
            stacktrace: Any = values[-1].setdefault("stacktrace", {"frames": []})
            stacktrace.setdefault("frames", []).append(frame)
    return event


def _template_frame(exc: BaseException) -> Optional[dict[str, Any]]:
    from django.template.base import Node, Template

    token = getattr(exc, "token", None)  # a syntax error: the parser names the token
    origin = None
    source = None
    for frame in reversed(list(_frames(exc.__traceback__))):  # innermost first
        owner = frame.f_locals.get("self")
        if isinstance(owner, Node) and token is None and getattr(owner, "token", None):
            token, origin = owner.token, owner.origin  # an error while rendering this node
        elif isinstance(owner, Template) and (origin is None or owner.origin == origin):
            origin, source = owner.origin, owner.source
            break
    lineno = getattr(token, "lineno", None)
    if origin is None or not isinstance(lineno, int):
        return None
    if source is None and origin.loader is not None:
        with capture_internal_exceptions():
            source = origin.loader.get_contents(origin)  # type: ignore[attr-defined]
    lines = (source or "").splitlines()
    out: dict[str, Any] = {
        "filename": str(origin.template_name or origin.name),
        "abs_path": str(origin.name),
        "function": "django template",
        "lineno": lineno,
        "in_app": True,
    }
    if 0 < lineno <= len(lines):
        out["pre_context"] = lines[max(0, lineno - 6) : lineno - 1]
        out["context_line"] = lines[lineno - 1]
        out["post_context"] = lines[lineno : lineno + 5]
    return out


def _frames(tb: Optional[TracebackType]) -> Any:
    while tb is not None:
        frame: FrameType = tb.tb_frame
        yield frame
        tb = tb.tb_next


module_ready(__name__)
