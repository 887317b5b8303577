"""WSGI: each request in its own isolation scope, its data on every event it causes, and every
exception that escapes the app (also while the response streams) reported as unhandled.

``BugnetWsgiMiddleware(app)`` wraps any WSGI app; the Flask and Django integrations use the same
pieces for their own entry points. The request body is never read for the SDK's sake: what the
app reads is recorded (up to ``max_request_body_size``) as it goes by, and the app sees the same
bytes it would have seen without the SDK. A body the app did not read is left unread unless it
is small, complete (a Content-Length within the limit) and an event needs it, in which case it
is read then and handed back to the app through a fresh ``wsgi.input``.
"""

from __future__ import annotations

import sys

from bugnet import _api, _scope
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations._web import BODY_LIMITS, cookies, parse_body

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, Callable, Optional

    from bugnet.types import Event, Hint

# The wrappers are not the app's code: keep their frames out of reported stacks.
__traceback_hide__ = True


class BugnetWsgiMiddleware:
    """Wrap a WSGI app: ``app.wsgi_app = BugnetWsgiMiddleware(app.wsgi_app)``."""

    def __init__(self, app: Callable[..., Any], use_x_forwarded_for: bool = False) -> None:
        self.app = app
        self.use_x_forwarded_for = use_x_forwarded_for

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return run_request(self.app, environ, start_response, "wsgi", self.use_x_forwarded_for)


IN_REQUEST = "bugnet.in_request"  # set in the environ of a request already being watched


def run_request(
    app: Callable[..., Any],
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    mechanism: str,
    use_x_forwarded_for: bool = False,
    request_data: bool = True,
) -> Any:
    """Call ``app`` for one request inside a fresh isolation scope, reporting what escapes.
    ``request_data=False`` leaves the request's data to the caller (Django adds its own)."""
    if environ.get(IN_REQUEST) or not _api.get_client().is_active():
        return app(environ, start_response)  # an outer wrapper (or nobody) watches it
    environ[IN_REQUEST] = True
    with _scope.isolation_scope() as scope:
        scopes = (_scope.get_isolation_scope(), _scope.get_current_scope())
        if request_data:
            with capture_internal_exceptions():
                request = RequestData(environ, use_x_forwarded_for)
                scope.add_event_processor(request.processor)
                scope.set_transaction_name(environ.get("PATH_INFO") or "/")
        try:
            response = app(environ, start_response)
        except BaseException:
            report(sys.exc_info(), mechanism)
            raise
    return _ScopedResponse(response, scopes, mechanism)


def report(exc_info: Any, mechanism: str, handled: bool = False) -> None:
    """Report an exception that ended (or will end) the request as an error."""
    exc = exc_info[1]
    if exc is None or isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
        return
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return
    with capture_internal_exceptions():
        _api.get_client().capture_exception(
            exc_info, mechanism={"type": mechanism, "handled": handled}
        )


class _ScopedResponse:
    """The app's response iterable, iterated with the request's scopes active, reporting an
    exception raised while streaming, and closed as PEP 3333 asks."""

    __slots__ = ("_mechanism", "_response", "_scopes")

    def __init__(self, response: Any, scopes: tuple[Any, Any], mechanism: str) -> None:
        self._response = response
        self._scopes = scopes
        self._mechanism = mechanism

    def __iter__(self) -> Iterator[bytes]:
        iterator = self._step(iter, self._response)
        while True:
            try:
                chunk = self._step(next, iterator)
            except StopIteration:
                return
            yield chunk

    def _step(self, function: Callable[[Any], Any], argument: Any) -> Any:
        """``function(argument)`` with the request's scopes active; what it raises (but the
        end of the iteration) is reported."""
        iso_token = _scope._isolation_var.set(self._scopes[0])
        cur_token = _scope._current_var.set(self._scopes[1])
        try:
            return function(argument)
        except StopIteration:
            raise
        except BaseException:
            report(sys.exc_info(), self._mechanism)
            raise
        finally:
            _scope._current_var.reset(cur_token)
            _scope._isolation_var.reset(iso_token)

    def close(self) -> None:
        close = getattr(self._response, "close", None)
        if close is not None:
            try:
                close()
            except BaseException:
                report(sys.exc_info(), self._mechanism)
                raise


class RequestData:
    """The request as events show it (Sentry's ``request`` interface), built only when an event
    is sent. Installs a recorder on ``wsgi.input`` to see the body the app reads."""

    def __init__(
        self, environ: dict[str, Any], use_x_forwarded_for: bool = False, record: bool = True
    ) -> None:
        self.environ = environ
        self.use_x_forwarded_for = use_x_forwarded_for
        options = _api.get_client().options
        self.limit = BODY_LIMITS.get(options.max_request_body_size, BODY_LIMITS["medium"])
        self.pii = bool(options.send_default_pii)
        stream = environ.get("wsgi.input")
        self.recorder: Optional[_RecordingInput] = None
        if record and stream is not None and self.limit:
            self.recorder = environ["wsgi.input"] = _RecordingInput(stream, self.limit)

    def processor(self, event: Event, hint: Hint) -> Event:
        with capture_internal_exceptions():
            if "request" not in event:
                event["request"] = self.as_dict()
            if self.pii and "user" not in event:
                ip = self.client_ip()
                if ip:
                    event["user"] = {"ip_address": ip}
        return event

    def as_dict(self) -> dict[str, Any]:
        environ = self.environ
        headers = dict(self.headers())
        scheme = self.scheme()
        host = headers.get("Host") or _server_host(environ, scheme)
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        request: dict[str, Any] = {
            "method": environ.get("REQUEST_METHOD"),
            "url": f"{scheme}://{host}{_decode_path(path)}",
            "query_string": environ.get("QUERY_STRING", ""),
            "headers": headers,
            "env": {
                "SERVER_NAME": environ.get("SERVER_NAME"),
                "SERVER_PORT": environ.get("SERVER_PORT"),
            },
        }
        # Cookies, credential headers and the client's address are removed from every event
        # without send_default_pii, in one place: the client's _strip_pii step.
        if headers.get("Cookie"):
            request["cookies"] = cookies(headers["Cookie"])
        ip = self.client_ip()
        if ip:
            request["env"]["REMOTE_ADDR"] = ip
        data = self.body()
        if data is not None:
            request["data"] = data
        return request

    def scheme(self) -> str:
        return str(self.environ.get("wsgi.url_scheme", "http"))

    def headers(self) -> Iterator[tuple[str, str]]:
        for key, value in self.environ.items():
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").title(), str(value)
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                yield key.replace("_", "-").title(), str(value)

    def client_ip(self) -> Optional[str]:
        if self.use_x_forwarded_for:
            forwarded = self.environ.get("HTTP_X_FORWARDED_FOR", "")
            if forwarded:
                return str(forwarded.split(",")[0].strip())
        ip = self.environ.get("REMOTE_ADDR")
        return str(ip) if ip else None

    def body(self) -> Any:
        """The body as data (JSON, form fields, text), bounded; None when there is none to show;
        ``[Filtered]``-style notes when it is too big or not text."""
        if not self.limit or self.environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
            return None
        raw = self._body_bytes()
        if raw is None:
            return None
        if isinstance(raw, str):
            return raw  # a note: too large, unread
        return parse_body(raw, str(self.environ.get("CONTENT_TYPE", "")))

    def _body_bytes(self) -> Any:
        recorder = self.recorder
        length = _content_length(self.environ)
        if recorder is None:
            return None
        if recorder.overflowed or (length is not None and length > self.limit):
            return f"[body of {length if length is not None else 'over ' + str(self.limit)} bytes omitted]"
        if recorder.read_any or length == 0:
            return recorder.recorded()
        if length is None:
            return None  # chunked or unknown, and unread by the app: never read it for us
        # Small, complete, unread: read it now and give the app the same bytes back.
        data = recorder.read(length)
        recorder.unread(data)
        return data


class _RecordingInput:
    """``wsgi.input`` that keeps a copy of the first ``limit`` bytes the app reads."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._kept = bytearray()
        self._pushback = b""
        self.read_any = False
        self.overflowed = False

    def _keep(self, data: bytes) -> bytes:
        if data:
            self.read_any = True
            if not self.overflowed:
                if len(self._kept) + len(data) > self._limit:
                    self.overflowed = True
                    self._kept.clear()
                else:
                    self._kept += data
        return data

    def recorded(self) -> bytes:
        return bytes(self._kept)

    def unread(self, data: bytes) -> None:
        self._pushback = data + self._pushback
        self._kept.clear()
        self.read_any = False

    def _take_pushback(self, size: int) -> bytes:
        if size is None or size < 0:
            data, self._pushback = self._pushback, b""
        else:
            data, self._pushback = self._pushback[:size], self._pushback[size:]
        return data

    def read(self, size: int = -1) -> bytes:
        if self._pushback:
            data = self._take_pushback(size)
            if size is None or size < 0:
                data += self._stream.read()
            return self._keep(data)
        return self._keep(self._stream.read(size) if size is not None else self._stream.read())

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int = -1) -> bytes:
        if self._pushback:
            line, sep, _rest = self._pushback.partition(b"\n")
            data = line + sep
            if size is not None and size >= 0:
                data = data[:size]
            self._pushback = self._pushback[len(data) :]
            return self._keep(data)
        return self._keep(self._stream.readline(size))

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _content_length(environ: dict[str, Any]) -> Optional[int]:
    try:
        value = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return None
    return value if value >= 0 else None


def _server_host(environ: dict[str, Any], scheme: str) -> str:
    name = str(environ.get("SERVER_NAME", ""))
    port = str(environ.get("SERVER_PORT", ""))
    if (scheme, port) in (("http", "80"), ("https", "443")) or not port:
        return name
    return f"{name}:{port}"


def _decode_path(path: str) -> str:
    # PEP 3333: the path is bytes as latin-1; URLs are UTF-8.
    try:
        return path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return path
