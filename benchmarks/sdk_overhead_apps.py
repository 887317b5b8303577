"""The web apps of ``sdk_overhead.py``'s per-request metric, and how a server would call them.

Each framework gets the same small app with one route, ``GET /items/<id>?q=...``: it reads the
path parameter, the query string and a cookie, logs one ``logger.info`` line (a breadcrumb for
both SDKs) and answers a small JSON object. No error is raised and no database is touched: this
is what every successful request pays. (A second route, ``CHECK_PATH``, is asked once before
timing, to see the SDK at work; it is never timed.) Each app is driven in-process, without sockets, the way
its server calls it: Flask and Django through their WSGI callable with a fresh copy of one
prepared environ per request (the body iterated and closed, as PEP 3333 asks), FastAPI through
its ASGI callable with a fresh copy of one prepared scope, on one event loop, each request
awaited in turn.

A framework is imported when its app is built (``build(name)``), after the SDK's ``init()``,
as an app's own modules import it after its settings did; nothing here is imported by the
harness itself.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
from typing import Any, Callable, Protocol

ITEM_ID = 42
PATH = f"/items/{ITEM_ID}"
CHECK_PATH = PATH + "/check"
QUERY = "q=blue+widget&page=2"
HOST = "shop.example.com"
COOKIE = "session=8c1f0e2d9a7b4c3e; theme=dark"
EXPECTED = {"id": ITEM_ID, "name": f"item {ITEM_ID}", "q": "blue widget", "logged_in": True}

# A browser's request, as a WSGI server puts it in the environ.
HEADERS = {
    "Host": HOST,
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "application/json, text/plain, */*",
    "Accept-Language": "en-GB,en;q=0.7",
    "Accept-Encoding": "gzip, deflate, br",
    "Referer": f"https://{HOST}/catalogue?page=2",
    "X-Request-Id": "0f6c2a9e-55d1-4a8e-9d4b-3f1b7c2e8a10",
    "Cookie": COOKIE,
}

# Every app logs through this logger, at INFO, with no handler of its own (the root has none
# either): the record is made and reaches Logger.callHandlers, where both SDKs hook in.
log = logging.getLogger("shop.items")
log.setLevel(logging.INFO)


def answer(item_id: int, q: str, session: str) -> dict[str, Any]:
    """The route's work, the same in every framework."""
    log.info("item %s looked up, q=%r", item_id, q)
    return {"id": item_id, "name": f"item {item_id}", "q": q, "logged_in": bool(session)}


# Set by the worker: what the SDK's scope looks like at this point of a request.
inspect_scope: Callable[[], dict[str, Any]] = dict


def checked_answer(item_id: int, q: str, session: str) -> dict[str, Any]:
    """The check route (``CHECK_PATH``, never timed): ``answer()``, with the SDK's scope seen
    before and after its log line, so the worker can tell that the SDK took the request in a
    scope of its own and kept the line as a breadcrumb."""
    before = inspect_scope()
    found = answer(item_id, q, session)
    return {**found, "check": {"before": before, "after": inspect_scope()}}


class Driver(Protocol):
    """Calls one app the way its server does. ``run(n)`` serves ``n`` requests in a row and
    returns the seconds they took; ``probe(path)`` serves one and returns (status, JSON body)."""

    def run(self, n: int) -> float: ...

    def probe(self, path: str = PATH) -> tuple[int, Any]: ...


# --------------------------------------------------------------------------- WSGI


def wsgi_environ() -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": PATH,
        "QUERY_STRING": QUERY,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "REMOTE_PORT": "52144",
        "CONTENT_TYPE": "",
        "CONTENT_LENGTH": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in HEADERS.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


class WsgiDriver:
    """A WSGI server's loop: a fresh environ (and empty body) per request, the app called, the
    response iterated and closed."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.template = wsgi_environ()
        self.status = ""

    def _start_response(self, status: str, headers: list[Any], exc_info: Any = None) -> Any:
        self.status = status
        return None

    def run(self, n: int) -> float:
        app, template, start_response = self.app, self.template, self._start_response
        empty = b""
        start = time.perf_counter()
        for _ in range(n):
            environ = template.copy()
            environ["wsgi.input"] = io.BytesIO(empty)
            body = app(environ, start_response)
            try:
                for _chunk in body:
                    pass
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        return time.perf_counter() - start

    def probe(self, path: str = PATH) -> tuple[int, Any]:
        environ = self.template.copy()
        environ["wsgi.input"] = io.BytesIO(b"")
        environ["PATH_INFO"] = path
        body = self.app(environ, self._start_response)
        try:
            data = b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
        return int(self.status.split()[0]), json.loads(data)


def flask_app() -> Driver:
    import flask

    app = flask.Flask("shop")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        request = flask.request
        return answer(item_id, request.args.get("q", ""), request.cookies.get("session", ""))

    @app.get("/items/<int:item_id>/check")
    def check(item_id: int) -> Any:
        request = flask.request
        return checked_answer(
            item_id, request.args.get("q", ""), request.cookies.get("session", "")
        )

    return WsgiDriver(app)


def django_app() -> Driver:
    """Django with ``DEBUG=False``, the middleware of ``startproject`` that needs no database
    (sessions in signed cookies), and no database configured."""
    import django
    from django.conf import settings
    from django.http import JsonResponse
    from django.urls import path

    def item(request: Any, item_id: int) -> Any:
        found = answer(item_id, request.GET.get("q", ""), request.COOKIES.get("session", ""))
        return JsonResponse(found)

    def check(request: Any, item_id: int) -> Any:
        found = checked_answer(
            item_id, request.GET.get("q", ""), request.COOKIES.get("session", "")
        )
        return JsonResponse(found)

    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only-not-a-secret-0123456789abcdef",
        ALLOWED_HOSTS=[HOST],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        DATABASES={},
        USE_TZ=True,
    )
    global urlpatterns
    urlpatterns = [path("items/<int:item_id>", item), path("items/<int:item_id>/check", check)]
    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    return WsgiDriver(WSGIHandler())


urlpatterns: list[Any] = []  # Django's ROOT_URLCONF is this module; django_app() fills it


# --------------------------------------------------------------------------- ASGI


def asgi_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": QUERY.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()],
        "client": ("203.0.113.7", 52144),
        "server": (HOST, 443),
        "state": {},
    }


class AsgiDriver:
    """An ASGI server's part, on one event loop: a fresh scope per request, an empty body from
    ``receive``, the response messages taken by ``send``, each request awaited in turn."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.template = asgi_scope()
        self.loop = asyncio.new_event_loop()
        self.sent: list[dict[str, Any]] = []

    async def _receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def _serve(self, n: int) -> float:
        app, template, receive, send, sent = (
            self.app, self.template, self._receive, self._send, self.sent,
        )  # fmt: skip
        start = time.perf_counter()
        for _ in range(n):
            scope = template.copy()
            scope["state"] = {}
            await app(scope, receive, send)
            sent.clear()
        return time.perf_counter() - start

    def run(self, n: int) -> float:
        return self.loop.run_until_complete(self._serve(n))

    def probe(self, path: str = PATH) -> tuple[int, Any]:
        scope = {**self.template, "path": path, "raw_path": path.encode(), "state": {}}
        self.sent.clear()
        self.loop.run_until_complete(self.app(scope, self._receive, self._send))
        status = next(m["status"] for m in self.sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        self.sent.clear()
        return status, json.loads(body)


def fastapi_app() -> Driver:
    from fastapi import Cookie, FastAPI

    app = FastAPI()

    async def item(item_id: int, q: str = "", session: str = Cookie("")) -> Any:
        return answer(item_id, q, session)

    async def check(item_id: int, q: str = "", session: str = Cookie("")) -> Any:
        return checked_answer(item_id, q, session)

    # Annotations are strings in this module (``from __future__ import annotations``): give
    # FastAPI the real types, as a module without that import would.
    for endpoint in (item, check):
        endpoint.__annotations__ = {"item_id": int, "q": str, "session": str}
    app.get("/items/{item_id}")(item)
    app.get("/items/{item_id}/check")(check)
    return AsgiDriver(app)


BUILDERS: dict[str, Callable[[], Driver]] = {
    "flask": flask_app,
    "django": django_app,
    "fastapi": fastapi_app,
}


def build(framework: str) -> Driver:
    """Build ``framework``'s app and check that one request gets the expected answer."""
    driver = BUILDERS[framework]()
    status, body = driver.probe()
    if status != 200 or body != EXPECTED:
        raise RuntimeError(f"{framework} app answered {status} {body!r}, not 200 {EXPECTED!r}")
    return driver
