"""Starlette: every request (and websocket) in its own scope with its data, ``transaction`` from
the route (``/items/{id}``, or the endpoint's name), the authenticated user (with
``send_default_pii``), and every exception that becomes a 500 reported once, also when an
exception handler of the app caught it and rendered a page.

Starlette has no signals, so two patches, each in one function below:

- ``Starlette.__call__``, the app's ASGI entry (FastAPI's ends in it), runs each request through
  :func:`bugnet.integrations.asgi.run_request`, outside every middleware of the app. Wrapped on
  the class, so apps created before or after ``init()`` are both covered. It reports what the
  app's own middleware raises. ``ServerErrorMiddleware`` renders a 500 page (with the app's
  ``500``/``Exception`` handler or its own) and re-raises the exception; a server's log line of
  it is the same exception object, which the dedupe step drops.
- ``ExceptionMiddleware.__call__``, the innermost middleware, wraps the app's exception handlers
  (its own and Starlette's ``HTTPException`` one) before they run, so that an exception a handler
  answered with a 5xx, or an ``HTTPException`` whose status is one of
  ``failed_request_status_codes``, is reported while its traceback is still there (Starlette
  drops it once the response is sent). An exception no handler took is reported as it leaves
  ``ExceptionMiddleware``, inside the app's own middleware: there the scope is the endpoint's,
  also when a ``BaseHTTPMiddleware`` ran the endpoint in a task (and so a scope) of its own.
  That is Starlette's own line between handled and unhandled: a middleware of the app that
  turns such an exception into a response does not make it handled. The layers further out
  report it no more.
"""

from __future__ import annotations

import functools
import inspect
import sys

from bugnet import _api, _patching
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration, module_ready
from bugnet.integrations._web import checked_transaction_style, failed_status_codes
from bugnet.integrations.asgi import (
    Framework,
    RequestData,
    http_error_status,
    run_request,
    watched_request,
)
from bugnet.integrations.wsgi import report

try:
    from starlette.applications import Starlette
    from starlette.middleware.exceptions import ExceptionMiddleware
    from starlette.routing import Match
except ImportError as exc:  # pragma: no cover - exercised without Starlette installed
    raise ImportError(
        "the Starlette integration needs Starlette: pip install 'bugnet[starlette]' "
        "(or pip install starlette)"
    ) from exc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

    from bugnet.integrations.asgi import AsgiScope, Receive, Send

__traceback_hide__ = True

TRANSACTION_STYLES = ("url", "endpoint")


class StarletteIntegration(Integration):
    """``transaction_style``: ``"url"`` names events by route (``/items/{id}``), ``"endpoint"``
    by the endpoint's qualified name. ``failed_request_status_codes``: which ``HTTPException``
    statuses are reported (default: 5xx); any other exception that becomes a 500 always is."""

    identifier = "starlette"

    def __init__(
        self, transaction_style: str = "url", failed_request_status_codes: Any = None
    ) -> None:
        self.transaction_style = checked_transaction_style(transaction_style, TRANSACTION_STYLES)
        self.failed_request_status_codes = failed_status_codes(failed_request_status_codes)

    @classmethod
    def setup_once(cls) -> None:
        _patch_starlette()


def _patch_starlette() -> None:
    original_call = Starlette.__call__
    original_exception_middleware_call = ExceptionMiddleware.__call__

    async def __call__(self: Starlette, scope: AsgiScope, receive: Receive, send: Send) -> None:
        integration = None
        with capture_internal_exceptions():
            integration = integration_for(self)
        if integration is None:
            await original_call(self, scope, receive, send)
            return
        await run_request(
            functools.partial(original_call, self),
            scope,
            receive,
            send,
            integration.identifier,
            integration.failed_request_status_codes,
            framework=StarletteApp(self),
        )

    async def exception_middleware_call(
        self: ExceptionMiddleware, scope: AsgiScope, receive: Receive, send: Send
    ) -> None:
        request = None
        with capture_internal_exceptions():
            request = watched_request(scope)
            if request is not None:
                _wrap_handlers(self._exception_handlers)
                _wrap_handlers(self._status_handlers)
        try:
            await original_exception_middleware_call(self, scope, receive, send)
        except BaseException:
            if request is not None:
                request.report_escaped(sys.exc_info())
            raise

    _patching.patch(Starlette, "__call__", __call__)
    _patching.patch(ExceptionMiddleware, "__call__", exception_middleware_call)


def integration_for(app: Any) -> Optional[StarletteIntegration]:
    """The integration whose settings apply to ``app``: FastAPI's for a FastAPI app (unless
    only Starlette's was configured explicitly), else Starlette's; None if both are off."""
    client = _api.get_client()
    starlette_one = client.integrations.get(StarletteIntegration.identifier)
    fastapi_one = client.integrations.get("fastapi") if _is_fastapi(app) else None
    if fastapi_one is not None:
        explicit = client.options.integrations
        prefer_starlette = starlette_one in explicit and fastapi_one not in explicit
        if not prefer_starlette and isinstance(fastapi_one, StarletteIntegration):
            return fastapi_one
    return starlette_one if isinstance(starlette_one, StarletteIntegration) else None


def _is_fastapi(app: Any) -> bool:
    fastapi = sys.modules.get("fastapi.applications")
    return fastapi is not None and isinstance(app, fastapi.FastAPI)


# -- exception handlers ---------------------------------------------------------------------

_WRAPPED = "__bugnet_reports__"


def _wrap_handlers(handlers: dict[Any, Any]) -> None:
    for key, handler in list(handlers.items()):
        if not getattr(handler, _WRAPPED, False):
            handlers[key] = _reporting_handler(handler)


def _reporting_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler``, then the report its answer calls for. Async if ``handler`` is, so that
    Starlette still runs a sync handler in its threadpool."""
    wrapper: Callable[..., Any]
    if _is_async_callable(handler):

        async def wrapper(conn: Any, exc: Exception) -> Any:
            response = await handler(conn, exc)
            _report_answered(conn, exc, response)
            return response

    else:

        def wrapper(conn: Any, exc: Exception) -> Any:
            response = handler(conn, exc)
            _report_answered(conn, exc, response)
            return response

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def _is_async_callable(handler: Any) -> bool:
    """Whether Starlette awaits ``handler`` (rather than running it in its threadpool): the
    rule Starlette applies, partials unwrapped."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    return inspect.iscoroutinefunction(handler) or (
        callable(handler) and inspect.iscoroutinefunction(handler.__call__)
    )


def _report_answered(conn: Any, exc: Exception, response: Any) -> None:
    """Report an exception an app's handler answered, if the answer was a failure: an
    ``HTTPException`` whose status is reported, or anything else answered with a 5xx (or with
    nothing, which the server turns into a 500). A websocket's handler closed it as asked."""
    with capture_internal_exceptions():
        scope = conn.scope
        request = watched_request(scope)
        if request is None or scope.get("type") != "http":
            return
        status = http_error_status(exc)
        if status is not None:
            failed = request.reports_status(status)
        else:
            code = getattr(response, "status_code", None)
            failed = not isinstance(code, int) or code >= 500
        if failed:
            report((type(exc), exc, exc.__traceback__), request.mechanism)


# -- transaction and user -------------------------------------------------------------------


class StarletteApp(Framework):
    """Names a request's transaction from the app's routes, and finds its user."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def transaction(self, request: RequestData) -> Optional[str]:
        integration = integration_for(self.app)
        style = integration.transaction_style if integration is not None else "url"
        # Matched again against the scope as it came in, only when an event is sent: the
        # router keeps no record of the mounts it went through.
        found = _find_route(self.app.routes, dict(request.start), "")
        if found is None:
            return None
        template, endpoint = found
        return template if style == "url" else _qualified_name(endpoint)

    def user(self, request: RequestData) -> dict[str, Any]:
        # Put in the scope by Starlette's AuthenticationMiddleware.
        user = request.scope.get("user")
        authentication = sys.modules.get("starlette.authentication")
        if authentication is None or not isinstance(user, authentication.BaseUser):
            return {}
        if not _app_property(user, "is_authenticated"):
            return {}
        found: dict[str, Any] = {}
        for key, name in (("id", "identity"), ("username", "display_name"), ("email", "email")):
            value = _app_property(user, name)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
                found[key] = str(value)
        return found


def _app_property(obj: Any, name: str) -> Any:
    """``obj.name``, or None when the app's property raises (BaseUser's own raise
    NotImplementedError): the app's error, not the SDK's."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _find_route(routes: Any, scope: dict[str, Any], prefix: str) -> Optional[tuple[str, Any]]:
    """(path template, endpoint) of the route the router picks for ``scope``: the first full
    match, else the first partial one (a 405), through mounts and hosts."""
    chosen = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            chosen = (route, child_scope)
            break
        if match is Match.PARTIAL and chosen is None:
            chosen = (route, child_scope)
    if chosen is None:
        return None
    route, child_scope = chosen
    template = prefix + str(getattr(route, "path", ""))  # a Host has no path
    inner = getattr(route, "routes", None)  # a Mount or a Host
    if inner is None:
        return template, getattr(route, "endpoint", None)
    found = _find_route(inner, {**scope, **child_scope}, template) if inner else None
    return found or (template, getattr(route, "app", None))


def _qualified_name(endpoint: Any) -> Optional[str]:
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    if endpoint is None:
        return None
    target = endpoint if hasattr(endpoint, "__qualname__") else type(endpoint)
    module = getattr(target, "__module__", None)
    name = str(target.__qualname__)
    return f"{module}.{name}" if module else name


module_ready(__name__)
