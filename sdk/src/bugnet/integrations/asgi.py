"""ASGI: each HTTP request and websocket in its own isolation scope, its data on every event it
causes, and every exception that escapes the app reported as unhandled. In ASGI that includes an
exception raised while a response streams, or in a background task run after the response was
sent: both happen before the app's call returns.

``BugnetAsgiMiddleware(app)`` wraps any ASGI 3 app (an ASGI 2 class is adapted); the Starlette
and FastAPI integrations run their requests through the same :func:`run_request`. Lifespan
messages pass through untouched.

The request body is never read for the SDK's sake: ``receive`` is wrapped to keep a copy of the
body the app reads (up to ``max_request_body_size``), and the app gets the very messages it would
have got without the SDK. A body the app did not read stays unread, and the event says so.
"""

from __future__ import annotations

import inspect
import sys

from bugnet import _api, _scope
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations._web import (
    BODY_LIMITS,
    DEFAULT_FAILED_STATUS_CODES,
    cookies,
    failed_status_codes,
    parse_body,
)
from bugnet.integrations.wsgi import report

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable, MutableMapping
    from typing import Any, Callable, Optional

    from bugnet.types import Event, ExcInfo, Hint

    AsgiScope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    AsgiApp = Callable[[AsgiScope, Receive, Send], Awaitable[None]]

# The wrappers are not the app's code: keep their frames out of reported stacks.
__traceback_hide__ = True

# Key in the ASGI scope of a request being watched: its RequestData. Nested wrappers (a
# middleware around a Starlette app, a Starlette app mounted in another) find it there and
# watch the request once.
REQUEST_KEY = "bugnet.request"


class BugnetAsgiMiddleware:
    """Wrap an ASGI app: ``app = BugnetAsgiMiddleware(app)``.

    ``failed_request_status_codes``: which HTTP errors the app answered itself (Starlette's and
    FastAPI's ``HTTPException``, seen through their integration) are reported; by default the
    5xx ones. An exception that escapes the app is always reported. ``use_x_forwarded_for``:
    take the client's address from ``X-Forwarded-For`` (only behind a proxy you trust).
    """

    def __init__(
        self,
        app: Any,
        failed_request_status_codes: Any = None,
        use_x_forwarded_for: bool = False,
    ) -> None:
        self.app: AsgiApp = _asgi3(app)
        self.failed_request_status_codes = failed_status_codes(failed_request_status_codes)
        self._explicit_codes = failed_request_status_codes is not None
        self.use_x_forwarded_for = use_x_forwarded_for

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        codes = self.failed_request_status_codes if self._explicit_codes else None
        await run_request(self.app, scope, receive, send, "asgi", codes, self.use_x_forwarded_for)


def _asgi3(app: Any) -> AsgiApp:
    """``app`` as an ASGI 3 callable. An ASGI 2 app is a class (or says it is double callable):
    instantiated with the scope, the instance takes ``receive`` and ``send``."""
    if not (inspect.isclass(app) or getattr(app, "_asgi_double_callable", False)):
        return app  # type: ignore[no-any-return]

    async def asgi3(scope: AsgiScope, receive: Receive, send: Send) -> None:
        await app(scope)(receive, send)

    return asgi3


class Framework:
    """What a framework integration knows about its requests: the transaction (the route) and
    the logged-in user. The plain middleware knows neither."""

    def transaction(self, request: RequestData) -> Optional[str]:
        return None

    def user(self, request: RequestData) -> dict[str, Any]:
        return {}


async def run_request(
    app: AsgiApp,
    scope: AsgiScope,
    receive: Receive,
    send: Send,
    mechanism: str,
    failed_codes: Optional[frozenset[int]] = None,
    use_x_forwarded_for: bool = False,
    framework: Optional[Framework] = None,
) -> None:
    """Call ``app`` for one HTTP request or websocket inside a fresh isolation scope, reporting
    what escapes. ``failed_codes``: the HTTP errors answered by the app that are reported (None:
    the default, 5xx). Other scope types (lifespan) and requests already watched by an outer
    wrapper are passed through; an inner framework tells the outer wrapper what it knows."""
    watched = watched_request(scope)
    if watched is not None:
        if framework is not None and watched.framework is None:
            watched.adopt(mechanism, failed_codes, framework)
        await app(scope, receive, send)
        return
    if scope.get("type") not in ("http", "websocket") or not _api.get_client().is_active():
        await app(scope, receive, send)
        return
    with _scope.isolation_scope() as isolation:
        request = None
        with capture_internal_exceptions():
            request = RequestData(scope, mechanism, failed_codes, use_x_forwarded_for, framework)
            isolation.add_event_processor(request.processor)
            receive = request.recording(receive)
            scope[REQUEST_KEY] = request
        try:
            await app(scope, receive, send)
        except BaseException:
            if request is not None:
                request.report_escaped(sys.exc_info())
            else:
                report_escaped(sys.exc_info(), mechanism)
            raise
        finally:
            if request is not None:
                request.forget_reported()


def watched_request(scope: AsgiScope) -> Optional[RequestData]:
    """The RequestData of a request being watched, or None."""
    request = scope.get(REQUEST_KEY)
    return request if isinstance(request, RequestData) else None


def report_escaped(exc_info: ExcInfo, mechanism: str) -> None:
    """Report an exception that escaped the app. A cancellation (the client went away, the
    server is shutting down) is not the app failing."""
    if isinstance(exc_info[1], (Exception, SystemExit)):
        report(exc_info, mechanism)


def http_error_status(exc: BaseException) -> Optional[int]:
    """The status of an exception raised to answer with that status (Starlette's and FastAPI's
    ``HTTPException``); None for any other exception."""
    starlette = sys.modules.get("starlette.exceptions")
    if starlette is not None and isinstance(exc, starlette.HTTPException):
        status = exc.status_code
        return status if isinstance(status, int) else None
    return None


class RequestData:
    """The request as events show it (Sentry's ``request`` interface), built only when an event
    is sent, from the ASGI scope as the server sent it (routing rewrites paths in place)."""

    def __init__(
        self,
        scope: AsgiScope,
        mechanism: str,
        failed_codes: Optional[frozenset[int]],
        use_x_forwarded_for: bool,
        framework: Optional[Framework],
    ) -> None:
        self.scope = scope  # live: a framework adds its route and user to it
        self.start = dict(scope)
        self.mechanism = mechanism
        self.failed_codes = failed_codes
        self.framework = framework
        self.use_x_forwarded_for = use_x_forwarded_for
        options = _api.get_client().options
        self.limit = BODY_LIMITS.get(options.max_request_body_size, BODY_LIMITS["medium"])
        self.pii = bool(options.send_default_pii)
        self._kept = bytearray()
        self.read_any = False
        self.overflowed = False
        self._reported: Optional[BaseException] = None

    def adopt(
        self, mechanism: str, failed_codes: Optional[frozenset[int]], framework: Framework
    ) -> None:
        """A framework app inside the wrapped one takes this request over; codes given to the
        outer middleware explicitly stay."""
        self.mechanism = mechanism
        self.framework = framework
        if self.failed_codes is None:
            self.failed_codes = failed_codes

    def report_escaped(self, exc_info: ExcInfo) -> None:
        """Report an exception escaping the app, or a layer of it: once, however many layers
        it passes on its way out (a framework reports it at the innermost one, in the scope
        of the code that raised it)."""
        if exc_info[1] is None or exc_info[1] is self._reported:
            return
        self._reported = exc_info[1]
        report_escaped(exc_info, self.mechanism)

    def forget_reported(self) -> None:
        self._reported = None  # its traceback holds the request's frames: let them go

    def reports_status(self, status: int) -> bool:
        """True if an HTTP error with ``status`` the app answered is to be reported."""
        codes = self.failed_codes
        return status in (DEFAULT_FAILED_STATUS_CODES if codes is None else codes)

    # -- the body, as the app reads it ---------------------------------------------------

    def recording(self, receive: Receive) -> Receive:
        """``receive``, keeping a copy of the body messages the app reads (up to the limit)."""
        if not self.limit or self.start.get("type") != "http":
            return receive

        async def receive_and_record() -> Message:
            message = await receive()
            with capture_internal_exceptions():
                self._record(message)
            return message

        return receive_and_record

    def _record(self, message: Message) -> None:
        if message.get("type") != "http.request" or self.overflowed:
            return
        self.read_any = True
        chunk = message.get("body") or b""
        if len(self._kept) + len(chunk) > self.limit:
            self.overflowed = True
            self._kept = bytearray()  # an event shows a note; the memory goes back at once
        else:
            self._kept += chunk

    def body(self, headers: dict[str, str]) -> Any:
        """The body as data (JSON, form fields, text), bounded; None when there is none to show;
        a note when it is too big or was not read."""
        start = self.start
        if not self.limit or start.get("type") != "http":
            return None
        if start.get("method") in ("GET", "HEAD", "OPTIONS"):
            return None
        length = _content_length(headers)
        if self.overflowed or (length is not None and length > self.limit):
            size = length if length is not None else f"over {self.limit}"
            return f"[body of {size} bytes omitted]"
        if self.read_any:
            return parse_body(bytes(self._kept), headers.get("Content-Type", ""))
        # Not read by the app. WSGI reads a small complete body for the event and hands it
        # back; here the event is built synchronously (in a log call, in capture_exception),
        # while only an ``await receive()`` on the server's loop could read it. So the event
        # notes that the body was there, and the app's stream is left as it was.
        if length:
            return f"[body of {length} bytes not read by the app]"
        return None

    # -- the event ------------------------------------------------------------------------

    def processor(self, event: Event, hint: Hint) -> Event:
        with capture_internal_exceptions():
            if "request" not in event:
                event["request"] = self.as_dict()
            framework = self.framework
            if "transaction" not in event:
                named = framework.transaction(self) if framework is not None else None
                event["transaction"] = named or self.path()
            if self.pii:
                user = dict(framework.user(self)) if framework is not None else {}
                ip = self.client_ip()
                if ip:
                    user.setdefault("ip_address", ip)
                if user:
                    event["user"] = {**user, **event.get("user", {})}  # type: ignore[typeddict-item]
        return event

    def as_dict(self) -> dict[str, Any]:
        start = self.start
        headers = _header_dict(start.get("headers") or ())
        request: dict[str, Any] = {}
        if start.get("type") == "http":
            request["method"] = start.get("method")
        request["url"] = (
            f"{self.scheme()}://{headers.get('Host') or self.server_host()}{self.path()}"
        )
        request["query_string"] = _text(start.get("query_string") or b"")
        request["headers"] = headers
        env: dict[str, Any] = {}
        server = start.get("server")
        if server:
            env["SERVER_NAME"] = str(server[0])
            if len(server) > 1 and server[1] is not None:
                env["SERVER_PORT"] = str(server[1])
        # Cookies, credential headers and the client's address are removed from every event
        # without send_default_pii, in one place: the client's _strip_pii step.
        if headers.get("Cookie"):
            request["cookies"] = cookies(headers["Cookie"])
        ip = self.client_ip()
        if ip:
            env["REMOTE_ADDR"] = ip
        request["env"] = env
        data = self.body(headers)
        if data is not None:
            request["data"] = data
        return request

    def scheme(self) -> str:
        default = "ws" if self.start.get("type") == "websocket" else "http"
        return str(self.start.get("scheme") or default)

    def path(self) -> str:
        """The path as the client asked for it. Servers differ on whether ``path`` includes
        ``root_path``; when it does not start with it, it does not."""
        path = str(self.start.get("path") or "/")
        root = str(self.start.get("root_path") or "")
        return path if path.startswith(root) else root + path

    def server_host(self) -> str:
        server = self.start.get("server")
        if not server:
            return "localhost"
        host, port = str(server[0]), server[1] if len(server) > 1 else None
        default_port = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(self.scheme())
        return host if port is None or port == default_port else f"{host}:{port}"

    def client_ip(self) -> Optional[str]:
        if self.use_x_forwarded_for:
            forwarded = _header_dict(self.start.get("headers") or ()).get("X-Forwarded-For", "")
            if forwarded:
                return forwarded.split(",")[0].strip()
        client = self.start.get("client")
        return str(client[0]) if client else None


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)


def _header_dict(raw: Iterable[Any]) -> dict[str, str]:
    """ASGI's ``[(b"name", b"value"), ...]`` as WSGI integrations show headers: ``Name: value``,
    a repeated header joined into one."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = _text(name).title(), _text(value)
        if key in headers:
            text = headers[key] + ("; " if key == "Cookie" else ", ") + text
        headers[key] = text
    return headers


def _content_length(headers: dict[str, str]) -> Optional[int]:
    try:
        value = int(headers.get("Content-Length") or -1)
    except ValueError:
        return None
    return value if value >= 0 else None
