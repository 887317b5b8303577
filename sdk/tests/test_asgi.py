"""The ASGI middleware and the Starlette and FastAPI integrations, against the real frameworks:
their test client, httpx's ASGI transport for many concurrent requests on one event loop, and a
real uvicorn server in a subprocess reporting to a real collector. Events are checked field by
field."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from concurrent_http import get_all
from fastapi import BackgroundTasks, FastAPI
from fastapi import HTTPException as FastApiHTTPException
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import bugnet
from bugnet.integrations.asgi import BugnetAsgiMiddleware
from bugnet.integrations.fastapi import FastApiIntegration
from bugnet.integrations.starlette import StarletteIntegration
from bugnet.testing import capture_events
from collector import free_port

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client and warns once when it runs on httpx.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

logger = logging.getLogger("shop.views")
logger.setLevel(logging.INFO)  # what an app that logs at INFO configures


def exception_of(event: dict[str, Any]) -> dict[str, Any]:
    return event["exception"]["values"][-1]


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [exception_of(e)["type"] for e in events if "exception" in e]


def crumbs_of(event: dict[str, Any]) -> list[str]:
    return [c["message"] for c in event["breadcrumbs"]["values"]]


def client_for(app: Any, **kwargs: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, **kwargs)


# -- a Starlette app --------------------------------------------------------------------------


async def boom(request: Request) -> Response:
    order = request.path_params["order"]
    logger.info("looking up order %s", order)
    total = order * 2
    raise ZeroDivisionError(f"order {order} total {total}")


async def ok(request: Request) -> Response:
    return PlainTextResponse("fine")


async def forbidden(request: Request) -> Response:
    raise HTTPException(403)


async def teapot(request: Request) -> Response:
    raise HTTPException(500, "it broke on purpose")


async def echo(request: Request) -> Response:
    payload = await request.json()
    if payload.get("fail"):
        raise ValueError("bad payload")
    return JSONResponse(payload)


async def form(request: Request) -> Response:
    # Starlette's request.form() needs python-multipart; a urlencoded body is this simple.
    data = parse_qs((await request.body()).decode())
    raise KeyError(data["item"][0])


async def unread(request: Request) -> Response:
    raise RuntimeError("did not read the body")


async def streamed(request: Request) -> Response:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    raise RuntimeError(f"read {total} bytes")


async def logged(request: Request) -> Response:
    logging.getLogger("shop.payments").error("payment declined for %s", "cart-7")
    return PlainTextResponse("logged")


async def stream(request: Request) -> Response:
    async def generate() -> AsyncIterator[bytes]:
        yield b"first,"
        raise OSError("the stream broke")

    return StreamingResponse(generate())


async def cart(request: Request) -> Response:
    raise LookupError(request.path_params["name"])


async def socket_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    bugnet.set_tag("socket", "yes")
    await websocket.send_text("hello")
    raise ConnectionError("the socket broke")


def make_starlette(**kwargs: Any) -> Starlette:
    return Starlette(
        routes=[
            Route("/boom/{order:int}", boom),
            Route("/ok", ok),
            Route("/forbidden", forbidden),
            Route("/teapot", teapot),
            Route("/echo", echo, methods=["POST"]),
            Route("/form", form, methods=["POST"]),
            Route("/unread", unread, methods=["POST"]),
            Route("/streamed", streamed, methods=["POST"]),
            Route("/logged", logged),
            Route("/stream", stream),
            Mount("/shop", routes=[Route("/cart/{name}", cart)]),
            WebSocketRoute("/ws", socket_endpoint),
        ],
        **kwargs,
    )


def test_an_unhandled_exception_is_one_event_with_the_request() -> None:
    app = make_starlette()
    with capture_events() as events:  # init() after the app was created
        client = client_for(app, cookies={"session": "s3cret"})
        response = client.get("/boom/21?coupon=x", headers={"User-Agent": "pytest"})
    assert response.status_code == 500
    assert len(events) == 1, [e.get("logentry") for e in events]
    event = events[0]
    exception = exception_of(event)
    assert exception["type"] == "ZeroDivisionError"
    assert exception["value"] == "order 21 total 42"
    assert exception["mechanism"] == {"type": "starlette", "handled": False}
    frames = exception["stacktrace"]["frames"]
    assert frames[-1]["function"] == "boom"
    assert frames[-1]["in_app"] is True
    assert "raise ZeroDivisionError" in frames[-1]["context_line"]
    assert frames[-1]["vars"]["order"] == "21"
    assert frames[-1]["vars"]["total"] == "42"
    assert not [f for f in frames if (f.get("module") or "").startswith("bugnet")]
    request = event["request"]
    assert request["method"] == "GET"
    assert request["url"] == "http://testserver/boom/21"
    assert request["query_string"] == "coupon=x"
    assert request["headers"]["User-Agent"] == "pytest"
    assert request["headers"]["Host"] == "testserver"
    assert request["headers"]["Cookie"] == "[Filtered]"  # no send_default_pii
    assert request["cookies"] == "[Filtered]"
    assert "REMOTE_ADDR" not in request["env"]
    assert "data" not in request
    assert "user" not in event
    assert event["transaction"] == "/boom/{order:int}"
    assert "looking up order 21" in crumbs_of(event)
    assert {"starlette", "fastapi"} <= set(event["sdk"]["integrations"])


def test_init_before_the_app_is_created_works_too() -> None:
    with capture_events() as events:
        client_for(make_starlette()).get("/boom/1")
    assert types_of(events) == ["ZeroDivisionError"]


async def sorry(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("<h1>Sorry</h1>", status_code=500)


def sorry_in_a_thread(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("<h1>Sorry</h1>", status_code=500)


@pytest.mark.parametrize("handler", [sorry, sorry_in_a_thread], ids=["async", "sync"])
@pytest.mark.parametrize("key", [LookupError, Exception, 500], ids=["class", "Exception", "500"])
def test_an_exception_an_app_handler_rendered_as_500_is_reported_once(
    key: Any, handler: Any
) -> None:
    """Handlers for a class run in ExceptionMiddleware (the exception ends there); those for
    Exception and 500 in ServerErrorMiddleware (Starlette re-raises it)."""
    app = make_starlette(exception_handlers={key: handler})
    with capture_events() as events:
        response = client_for(app).get("/shop/cart/blue")
    assert response.status_code == 500
    assert "Sorry" in response.text
    assert types_of(events) == ["LookupError"]
    exception = exception_of(events[0])
    assert exception["mechanism"] == {"type": "starlette", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "cart"  # traceback still there
    assert events[0]["transaction"] == "/shop/cart/{name}"
    assert events[0]["request"]["url"] == "http://testserver/shop/cart/blue"


def test_an_exception_an_app_handler_answered_below_500_is_not_reported() -> None:
    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("no such cart", status_code=404)

    app = make_starlette(exception_handlers={LookupError: not_found})
    with capture_events() as events:
        assert client_for(app).get("/shop/cart/blue").status_code == 404
    assert events == []


def test_http_errors_below_500_are_not_reported_and_5xx_ones_are() -> None:
    with capture_events() as events:
        client = client_for(make_starlette())
        assert client.get("/nowhere").status_code == 404
        assert client.get("/forbidden").status_code == 403
        assert client.post("/ok").status_code == 405
        assert client.get("/ok").status_code == 200
        assert events == []
        assert client.get("/teapot").status_code == 500
    assert types_of(events) == ["HTTPException"]
    assert "it broke on purpose" in exception_of(events[0])["value"]
    assert events[0]["transaction"] == "/teapot"


def test_failed_request_status_codes_widens_what_is_reported() -> None:
    integration = StarletteIntegration(failed_request_status_codes={403, 404, *range(500, 600)})
    with capture_events(integrations=[integration]) as events:
        client = client_for(make_starlette())
        assert client.get("/forbidden").status_code == 403
        assert client.get("/nowhere").status_code == 404
        assert client.post("/ok").status_code == 405
    assert types_of(events) == ["HTTPException", "HTTPException"]
    assert [e["transaction"] for e in events] == ["/forbidden", "/nowhere"]  # unrouted: its path


def test_options_are_checked() -> None:
    for integration in (StarletteIntegration, FastApiIntegration, BugnetAsgiMiddleware):
        kwargs: dict[str, Any] = (
            {"app": make_starlette()} if integration is BugnetAsgiMiddleware else {}
        )
        codes = integration(failed_request_status_codes=[403, range(500, 599)], **kwargs)
        assert codes.failed_request_status_codes == {403, *range(500, 599)}
        with pytest.raises(TypeError, match="failed_request_status_codes"):
            integration(failed_request_status_codes="500", **kwargs)
    with pytest.raises(ValueError, match="transaction_style"):
        StarletteIntegration(transaction_style="route")
    with pytest.raises(ValueError, match="transaction_style"):
        FastApiIntegration(transaction_style="function")


@pytest.mark.parametrize(
    ("style", "expected"),
    [("url", "/shop/cart/{name}"), ("endpoint", f"{cart.__module__}.cart")],
)
def test_transaction_styles_through_mounts(style: str, expected: str) -> None:
    with capture_events(integrations=[StarletteIntegration(transaction_style=style)]) as events:
        client_for(make_starlette()).get("/shop/cart/blue")
    assert events[0]["transaction"] == expected


def test_a_json_body_the_app_read_is_on_the_event() -> None:
    with capture_events() as events:
        client = client_for(make_starlette())
        response = client.post("/echo", json={"fail": True, "sku": "A-1"})
        assert response.status_code == 500
        assert client.post("/echo", json={"sku": "B-2"}).json() == {"sku": "B-2"}
    assert len(events) == 1
    assert events[0]["request"]["method"] == "POST"
    assert events[0]["request"]["data"] == {"fail": True, "sku": "A-1"}
    assert events[0]["request"]["headers"]["Content-Type"] == "application/json"


def test_form_data_is_on_the_event() -> None:
    with capture_events() as events:
        client_for(make_starlette()).post("/form", data={"item": "mug", "password": "hunter2"})
    data = events[0]["request"]["data"]
    assert data["item"] == "mug"
    assert data["password"] != "hunter2"  # scrubbed by default


def test_a_body_the_app_did_not_read_is_noted_not_read() -> None:
    """Reading it would take an ``await receive()`` the event cannot make (see asgi.py)."""
    with capture_events() as events:
        client_for(make_starlette()).post(
            "/unread", content=b"plain words", headers={"Content-Type": "text/plain"}
        )
    assert events[0]["request"]["data"] == "[body of 11 bytes not read by the app]"


def test_a_streamed_body_is_recorded_as_the_app_reads_it_and_bounded() -> None:
    def chunks(count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield b"x" * 400

    with capture_events(max_request_body_size="small") as events:
        client = client_for(make_starlette())
        client.post("/streamed", content=chunks(2), headers={"Content-Type": "text/plain"})
        client.post("/streamed", content=chunks(5), headers={"Content-Type": "text/plain"})
    assert [exception_of(e)["value"] for e in events] == ["read 800 bytes", "read 2000 bytes"]
    assert "Content-Length" not in events[0]["request"]["headers"]  # chunked
    assert events[0]["request"]["data"] == "x" * 800
    assert events[1]["request"]["data"] == "[body of over 1000 bytes omitted]"


def test_a_body_over_the_limit_is_not_kept() -> None:
    with capture_events(max_request_body_size="small") as events:
        client_for(make_starlette()).post("/echo", json={"fail": True, "blob": "x" * 5000})
    assert events[0]["request"]["data"].startswith("[body of ")
    assert events[0]["request"]["data"].endswith(" bytes omitted]")
    with capture_events(max_request_body_size="never") as events:
        client_for(make_starlette()).post("/echo", json={"fail": True})
    assert "data" not in events[0]["request"]


class ShopUser(SimpleUser):
    @property
    def identity(self) -> str:
        return f"u-{self.username}"

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


class HeaderAuth(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> Any:
        name = conn.headers.get("X-User")
        return (AuthCredentials(["authenticated"]), ShopUser(name)) if name else None


def test_with_send_default_pii_cookies_ip_and_the_authenticated_user_are_sent() -> None:
    app = make_starlette(middleware=[Middleware(AuthenticationMiddleware, backend=HeaderAuth())])
    with capture_events(send_default_pii=True) as events:
        client = client_for(app, cookies={"theme": "dark"}, client=("203.0.113.9", 4321))
        client.get("/boom/1", headers={"X-User": "ada"})
        client.get("/boom/2")  # not logged in
    event = events[0]
    assert event["request"]["cookies"] == {"theme": "dark"}
    assert event["request"]["env"]["REMOTE_ADDR"] == "203.0.113.9"
    assert event["user"] == {
        "id": "u-ada",
        "username": "ada",
        "email": "ada@example.com",
        "ip_address": "203.0.113.9",
    }
    assert events[1]["user"] == {"ip_address": "203.0.113.9"}


def test_without_send_default_pii_the_user_is_not_sent() -> None:
    app = make_starlette(middleware=[Middleware(AuthenticationMiddleware, backend=HeaderAuth())])
    with capture_events() as events:
        client_for(app).get("/boom/1", headers={"X-User": "ada"})
    assert "user" not in events[0]


def test_the_apps_own_user_wins_over_the_authenticated_one() -> None:
    async def set_user(request: Request) -> Response:
        bugnet.set_user({"id": "from-the-app"})
        raise RuntimeError("with a user")

    app = make_starlette(middleware=[Middleware(AuthenticationMiddleware, backend=HeaderAuth())])
    app.router.routes.append(Route("/set-user", set_user))
    with capture_events(send_default_pii=True) as events:
        client_for(app).get("/set-user", headers={"X-User": "ada"})
    assert events[0]["user"]["id"] == "from-the-app"
    assert events[0]["user"]["username"] == "ada"


def test_a_base_http_middleware_of_the_app_shares_the_requests_scope() -> None:
    """BaseHTTPMiddleware runs the endpoint in another task: same request, same scope."""

    async def tag_the_request(request: Request, call_next: Any) -> Response:
        bugnet.set_tag("middleware", "was here")
        response: Response = await call_next(request)
        return response

    app = make_starlette(middleware=[Middleware(BaseHTTPMiddleware, dispatch=tag_the_request)])
    with capture_events() as events:
        assert client_for(app).get("/boom/4").status_code == 500
    assert types_of(events) == ["ZeroDivisionError"]
    assert events[0]["tags"] == {"middleware": "was here"}
    assert "looking up order 4" in crumbs_of(events[0])


def test_an_exception_in_the_apps_own_middleware_is_reported_once() -> None:
    async def refuse(request: Request, call_next: Any) -> Response:
        if request.url.path == "/ok":
            raise PermissionError("the middleware said no")
        response: Response = await call_next(request)
        return response

    app = make_starlette(middleware=[Middleware(BaseHTTPMiddleware, dispatch=refuse)])
    with capture_events() as events:
        assert client_for(app).get("/ok").status_code == 500
    assert types_of(events) == ["PermissionError"]
    mechanism = exception_of(events[0])["mechanism"]  # Starlette < 1 chains an exception to it
    assert (mechanism["type"], mechanism["handled"]) == ("starlette", False)
    assert events[0]["transaction"] == "/ok"


def test_a_middleware_that_renders_the_500_itself_does_not_hide_the_exception() -> None:
    async def catch_all(request: Request, call_next: Any) -> Response:
        try:
            response: Response = await call_next(request)
        except Exception:
            return PlainTextResponse("our own 500 page", status_code=500)
        return response

    app = make_starlette(middleware=[Middleware(BaseHTTPMiddleware, dispatch=catch_all)])
    with capture_events() as events:
        response = client_for(app).get("/boom/6")
    assert response.text == "our own 500 page"
    assert types_of(events) == ["ZeroDivisionError"]


def test_each_exception_is_reported_once_without_the_dedupe_step_too() -> None:
    """It passes ExceptionMiddleware, ServerErrorMiddleware and the app's entry on its way out:
    reported at the first, skipped by the others."""
    with capture_events(disabled_integrations=["dedupe"]) as events:
        client = client_for(make_fastapi())
        client.get("/items/1")
        client.get("/later")
    assert types_of(events) == ["ZeroDivisionError", "ConnectionRefusedError"]


def test_app_logger_errors_are_events_with_the_request() -> None:
    with capture_events() as events:
        assert client_for(make_starlette()).get("/logged").text == "logged"
    assert len(events) == 1
    assert events[0]["logentry"]["formatted"] == "payment declined for cart-7"
    assert events[0]["request"]["url"] == "http://testserver/logged"
    assert events[0]["transaction"] == "/logged"


def test_an_exception_while_streaming_is_reported() -> None:
    with capture_events() as events:
        response = client_for(make_starlette()).get("/stream")
    assert response.status_code == 200  # the response had started
    assert types_of(events) == ["OSError"]
    assert events[0]["request"]["url"] == "http://testserver/stream"
    assert events[0]["transaction"] == "/stream"


def test_a_websocket_exception_is_reported_with_the_connection() -> None:
    def talk() -> None:
        with TestClient(make_starlette()).websocket_connect("/ws?room=7") as websocket:
            assert websocket.receive_text() == "hello"
            websocket.receive_text()

    with capture_events() as events:
        with pytest.raises(ConnectionError):
            talk()
    assert types_of(events) == ["ConnectionError"]
    event = events[0]
    assert exception_of(event)["mechanism"] == {"type": "starlette", "handled": False}
    assert event["request"]["url"] == "ws://testserver/ws"
    assert event["request"]["query_string"] == "room=7"
    assert "method" not in event["request"]
    assert event["tags"] == {"socket": "yes"}
    assert event["transaction"] == "/ws"


def test_the_integration_can_be_turned_off() -> None:
    with capture_events(disabled_integrations=["starlette", "fastapi"]) as events:
        assert client_for(make_starlette()).get("/boom/2").status_code == 500
    assert events == []


# -- many requests at once ------------------------------------------------------------------


def test_concurrent_requests_on_one_event_loop_never_share_scope_data() -> None:
    """Many requests on one loop: each tags itself, logs, then waits (yielding to the others)
    until all are inside, logs an error and fails. Each event must carry only its own data."""
    count = 25
    inside: list[int] = []

    async def tagged(request: Request) -> Response:
        n = request.path_params["n"]
        bugnet.set_tag("request_number", n)
        bugnet.set_user({"id": str(n)})
        logger.warning("request %d inside", n)
        inside.append(n)
        while len(inside) < count:
            await asyncio.sleep(0.001)
        await asyncio.sleep((n % 5) / 1000)
        logger.error("request %d failing", n)
        raise RuntimeError(f"request {n}")

    app = Starlette(routes=[Route("/tagged/{n:int}", tagged)])

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            responses = await asyncio.gather(*(client.get(f"/tagged/{n}") for n in range(count)))
        return [r.status_code for r in responses]

    with capture_events() as events:
        assert asyncio.run(main()) == [500] * count
    assert len(events) == 2 * count
    for event in events:
        n = int(event["tags"]["request_number"])
        if "exception" in event:
            assert exception_of(event)["value"] == f"request {n}"
        else:
            assert event["logentry"]["formatted"] == f"request {n} failing"
        assert event["user"] == {"id": str(n)}
        assert [c for c in crumbs_of(event) if "inside" in c] == [f"request {n} inside"]
        assert event["request"]["url"] == f"http://shop.test/tagged/{n}"
        assert event["transaction"] == "/tagged/{n:int}"


def test_sync_endpoints_run_in_threads_keep_their_requests_scope() -> None:
    """``def`` endpoints run in Starlette's threadpool: all at once here, in different threads."""
    count = 8
    barrier = threading.Barrier(count)
    threads: set[int] = set()

    def tagged(request: Request) -> Response:
        n = request.path_params["n"]
        threads.add(threading.get_ident())
        bugnet.set_tag("request_number", n)
        logger.warning("request %d inside", n)
        barrier.wait(timeout=10)
        raise RuntimeError(f"request {n}")

    app = Starlette(routes=[Route("/tagged/{n:int}", tagged)])

    async def main() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            await asyncio.gather(*(client.get(f"/tagged/{n}") for n in range(count)))

    with capture_events() as events:
        asyncio.run(main())
    assert len(threads) == count
    assert len(events) == count
    for event in events:
        n = int(exception_of(event)["value"].split()[-1])
        assert event["tags"]["request_number"] == str(n)
        assert [c for c in crumbs_of(event) if "inside" in c] == [f"request {n} inside"]
        assert event["request"]["url"] == f"http://shop.test/tagged/{n}"


# -- the plain ASGI middleware --------------------------------------------------------------


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app without a framework: reads its body, logs, fails."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    logger.info("raw app got %d bytes", len(body))
    raise ValueError(f"raw {body.decode()}")


def test_the_middleware_watches_any_asgi_app() -> None:
    app = BugnetAsgiMiddleware(raw_app)

    async def main() -> int:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://shop.test") as client:
            response = await client.post("/api/raw?x=1", json={"sku": "A-1"})
        return response.status_code

    with capture_events() as events:
        assert asyncio.run(main()) == 500
    assert types_of(events) == ["ValueError"]
    event = events[0]
    assert exception_of(event)["value"] == 'raw {"sku":"A-1"}'
    assert exception_of(event)["mechanism"] == {"type": "asgi", "handled": False}
    assert event["transaction"] == "/api/raw"
    request = event["request"]
    assert request["method"] == "POST"
    assert request["url"] == "https://shop.test/api/raw"
    assert request["query_string"] == "x=1"
    assert request["data"] == {"sku": "A-1"}
    assert "raw app got 13 bytes" in crumbs_of(event)


def test_an_asgi2_app_is_adapted() -> None:
    class Asgi2App:
        def __init__(self, scope: dict[str, Any]) -> None:
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            raise LookupError(self.scope["path"])

    with capture_events() as events:
        response = client_for(BugnetAsgiMiddleware(Asgi2App)).get("/two")
    assert response.status_code == 500
    assert types_of(events) == ["LookupError"]
    assert events[0]["request"]["url"] == "http://testserver/two"


def test_lifespan_passes_through_untouched() -> None:
    seen: list[tuple[Any, ...]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((dict(scope), receive, send, bugnet.get_isolation_scope()))
        raise RuntimeError("lifespan failed")

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def main() -> Any:
        with pytest.raises(RuntimeError):
            await BugnetAsgiMiddleware(app)({"type": "lifespan"}, receive, send)
        return bugnet.get_isolation_scope()

    with capture_events() as events:
        outer_scope = asyncio.run(main())
    assert seen == [({"type": "lifespan"}, receive, send, outer_scope)]
    assert events == []  # the server reports a failed startup


@pytest.mark.parametrize(
    "where",
    [
        {"path": "/min"},
        {"root_path": "/api", "path": "/api/min"},
        {"root_path": "/api", "path": "/min"},
    ],
    ids=["no-root", "path-with-root", "path-without-root"],
)
def test_a_minimal_scope_still_makes_an_event(where: dict[str, str]) -> None:
    """Servers differ in what they put in the scope (and in whether ``path`` includes
    ``root_path``): the event is built from what is there."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("minimal")

    async def receive() -> dict[str, Any]:  # pragma: no cover - the app never reads
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:  # pragma: no cover - nor answers
        pass

    scope = {"type": "http", "method": "POST", **where}
    with capture_events(send_default_pii=True) as events:
        with pytest.raises(RuntimeError):
            asyncio.run(BugnetAsgiMiddleware(app)(scope, receive, send))
    url = "http://localhost" + where.get("root_path", "") + "/min"
    assert events[0]["request"] == {
        "method": "POST",
        "url": url,
        "query_string": "",
        "headers": {},
        "env": {},
    }
    assert events[0]["transaction"] == url[len("http://localhost") :]
    assert "user" not in events[0]


def test_a_middleware_around_a_starlette_app_watches_each_request_once() -> None:
    """The Starlette app inside tells the middleware its routes; the codes given to the
    middleware stay."""
    app = BugnetAsgiMiddleware(make_starlette(), failed_request_status_codes={403})
    with capture_events() as events:
        client = client_for(app)
        client.get("/forbidden")
        client.get("/teapot")  # 500 is not one of the codes given
        client.get("/boom/3")
    assert types_of(events) == ["HTTPException", "ZeroDivisionError"]
    assert [e["transaction"] for e in events] == ["/forbidden", "/boom/{order:int}"]
    assert {exception_of(e)["mechanism"]["type"] for e in events} == {"starlette"}


def test_a_starlette_app_mounted_in_another_is_watched_once() -> None:
    inner = make_starlette()
    outer = Starlette(routes=[Mount("/inner", app=inner)])
    with capture_events() as events:
        client_for(outer).get("/inner/boom/5")
    assert types_of(events) == ["ZeroDivisionError"]
    assert events[0]["transaction"] == "/inner/boom/{order:int}"
    assert events[0]["request"]["url"] == "http://testserver/inner/boom/5"


def test_without_init_requests_pass_through() -> None:
    assert not bugnet.is_initialized()
    assert client_for(BugnetAsgiMiddleware(make_starlette())).get("/ok").text == "fine"
    assert client_for(make_starlette()).get("/ok").text == "fine"


def test_the_client_address_can_come_from_x_forwarded_for() -> None:
    app = BugnetAsgiMiddleware(raw_app, use_x_forwarded_for=True)
    with capture_events(send_default_pii=True) as events:
        client_for(app).post("/raw", headers={"X-Forwarded-For": "198.51.100.7, 10.0.0.1"})
    assert events[0]["request"]["env"]["REMOTE_ADDR"] == "198.51.100.7"
    assert events[0]["user"] == {"ip_address": "198.51.100.7"}


# -- FastAPI ----------------------------------------------------------------------------------


def send_mail(to: str) -> None:
    logger.info("mailing %s", to)
    raise ConnectionRefusedError(f"no mail server for {to}")


def make_fastapi(**kwargs: Any) -> FastAPI:
    app = FastAPI(**kwargs)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, Any]:
        logger.info("reading item %s", item_id)
        raise ZeroDivisionError(f"item {item_id}")

    @app.get("/sync/{n}")
    def sync_item(n: int) -> dict[str, Any]:
        bugnet.set_tag("sync", n)
        logger.info("sync item %s in a thread", n)
        raise ValueError(f"sync {n}")

    @app.get("/forbidden")
    async def fastapi_forbidden() -> None:
        raise FastApiHTTPException(status_code=403, detail="not yours")

    @app.get("/number/{n}")
    async def number(n: int) -> dict[str, int]:
        return {"n": n}

    @app.post("/orders")
    async def create_order(order: dict[str, Any]) -> dict[str, Any]:
        if order.get("fail"):
            raise ValueError("bad order")
        return order

    @app.get("/later")
    async def later(background_tasks: BackgroundTasks) -> dict[str, bool]:
        bugnet.set_tag("job", "later")
        background_tasks.add_task(send_mail, "ada")
        return {"queued": True}

    return app


def test_fastapi_an_unhandled_exception_is_one_event_with_the_request() -> None:
    with capture_events() as events:
        response = client_for(make_fastapi()).get("/items/7?full=1")
    assert response.status_code == 500
    assert types_of(events) == ["ZeroDivisionError"]  # once, with both integrations on
    event = events[0]
    assert {"starlette", "fastapi"} <= set(event["sdk"]["integrations"])
    exception = exception_of(event)
    assert exception["mechanism"] == {"type": "fastapi", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "read_item"
    assert event["transaction"] == "/items/{item_id}"
    assert event["request"]["url"] == "http://testserver/items/7"
    assert event["request"]["query_string"] == "full=1"
    assert "reading item 7" in crumbs_of(event)


def test_fastapi_endpoint_transaction_style() -> None:
    integration = FastApiIntegration(transaction_style="endpoint")
    with capture_events(integrations=[integration]) as events:
        client_for(make_fastapi()).get("/items/7")
    assert events[0]["transaction"].endswith(".make_fastapi.<locals>.read_item")


def test_fastapi_sync_endpoints_keep_the_requests_scope_in_the_threadpool() -> None:
    with capture_events() as events:
        assert client_for(make_fastapi()).get("/sync/3").status_code == 500
    assert types_of(events) == ["ValueError"]
    event = events[0]
    assert exception_of(event)["stacktrace"]["frames"][-1]["function"] == "sync_item"
    assert event["tags"] == {"sync": "3"}
    assert "sync item 3 in a thread" in crumbs_of(event)
    assert event["request"]["url"] == "http://testserver/sync/3"
    assert event["transaction"] == "/sync/{n}"


@pytest.mark.parametrize("key", [ValueError, Exception])
def test_fastapi_an_exception_handler_that_renders_a_500_is_reported_once(key: Any) -> None:
    app = make_fastapi()

    @app.exception_handler(key)
    async def oops(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "sorry"}, status_code=500)

    with capture_events() as events:
        response = client_for(app).post("/orders", json={"fail": True, "sku": "A-1"})
    assert response.status_code == 500
    assert response.json() == {"error": "sorry"}
    assert types_of(events) == ["ValueError"]
    event = events[0]
    assert exception_of(event)["mechanism"] == {"type": "fastapi", "handled": False}
    assert event["request"]["data"] == {"fail": True, "sku": "A-1"}
    assert event["request"]["method"] == "POST"
    assert event["transaction"] == "/orders"


def test_fastapi_an_exception_handler_that_answers_below_500_is_not_reported() -> None:
    app = make_fastapi()

    @app.exception_handler(ValueError)
    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    with capture_events() as events:
        assert client_for(app).post("/orders", json={"fail": True}).status_code == 400
    assert events == []


def test_fastapi_http_and_validation_errors_are_not_reported_by_default() -> None:
    with capture_events() as events:
        client = client_for(make_fastapi())
        assert client.get("/forbidden").status_code == 403
        assert client.get("/nowhere").status_code == 404
        assert client.get("/number/abc").status_code == 422
        assert client.post("/orders", json={"sku": "B-2"}).json() == {"sku": "B-2"}
    assert events == []


def test_fastapi_failed_request_status_codes() -> None:
    integration = FastApiIntegration(failed_request_status_codes={403, *range(500, 600)})
    with capture_events(integrations=[integration]) as events:
        client = client_for(make_fastapi())
        assert client.get("/forbidden").status_code == 403
        assert client.get("/nowhere").status_code == 404
    assert types_of(events) == ["HTTPException"]
    assert "not yours" in exception_of(events[0])["value"]
    assert exception_of(events[0])["mechanism"]["type"] == "fastapi"
    assert events[0]["transaction"] == "/forbidden"


def test_fastapi_takes_an_explicit_starlette_configuration() -> None:
    integration = StarletteIntegration(failed_request_status_codes={403})
    with capture_events(integrations=[integration]) as events:
        client_for(make_fastapi()).get("/forbidden")
    assert [exception_of(e)["mechanism"]["type"] for e in events] == ["starlette"]


@pytest.mark.parametrize(("off", "mechanism"), [("starlette", "fastapi"), ("fastapi", "starlette")])
def test_fastapi_with_one_of_the_two_integrations_off(off: str, mechanism: str) -> None:
    with capture_events(disabled_integrations=[off]) as events:
        client_for(make_fastapi()).get("/items/1")
    assert types_of(events) == ["ZeroDivisionError"]
    assert exception_of(events[0])["mechanism"]["type"] == mechanism


def test_fastapi_a_failing_background_task_is_reported_in_its_requests_scope() -> None:
    with capture_events() as events:
        response = client_for(make_fastapi()).get("/later")
    assert response.status_code == 200  # sent before the task ran
    assert response.json() == {"queued": True}
    assert types_of(events) == ["ConnectionRefusedError"]
    event = events[0]
    assert exception_of(event)["stacktrace"]["frames"][-1]["function"] == "send_mail"
    assert event["tags"] == {"job": "later"}
    assert "mailing ada" in crumbs_of(event)
    assert event["request"]["url"] == "http://testserver/later"
    assert event["transaction"] == "/later"


@pytest.mark.parametrize(
    ("blocked", "module", "extra"),
    [("starlette", "starlette", "starlette"), ("fastapi", "fastapi", "fastapi")],
)
def test_importing_an_integration_without_its_framework_names_the_install(
    blocked: str, module: str, extra: str
) -> None:
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        f"try:\n    import bugnet.integrations.{module}\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"pip install 'bugnet[{extra}]'" in out.stdout


# -- a real server ----------------------------------------------------------------------------

SERVED_APP = """
import asyncio, logging, os, threading

import bugnet
from fastapi import FastAPI

bugnet.init(os.environ["SHOP_DSN"], spool_dir=os.environ["SHOP_SPOOL"], shutdown_timeout=5)
logger = logging.getLogger("shop")
logger.setLevel(logging.INFO)
COUNT = int(os.environ["SHOP_COUNT"])
app = FastAPI()
inside = []
barrier = threading.Barrier(COUNT)


@app.get("/tagged/{n}")
async def tagged(n: int):
    bugnet.set_tag("request_number", n)
    logger.warning("request %d inside", n)
    inside.append(n)
    while len(inside) < COUNT:
        await asyncio.sleep(0.005)
    raise RuntimeError(f"request {n}")


@app.get("/threaded/{n}")
def threaded(n: int):
    bugnet.set_tag("request_number", n)
    logger.warning("request %d inside", n)
    barrier.wait(timeout=10)
    raise RuntimeError(f"request {n}")
"""


@pytest.fixture
def served_app(tmp_path: Path, collector: Any) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A FastAPI app served by uvicorn in its own process, reporting to ``collector``."""
    (tmp_path / "shop_app.py").write_text(textwrap.dedent(SERVED_APP))
    port = free_port()
    env = {
        **os.environ,
        "SHOP_DSN": collector.dsn,
        "SHOP_SPOOL": str(tmp_path / "spool"),
        "SHOP_COUNT": "6",
    }
    log = (tmp_path / "server.log").open("w")
    command = [sys.executable, "-m", "uvicorn", "shop_app:app", "--app-dir", str(tmp_path)]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()


def test_a_real_server_reports_each_request_once_with_only_its_own_data(
    served_app: tuple[str, subprocess.Popen[str]], collector: Any, tmp_path: Path
) -> None:
    """uvicorn serving concurrent requests, on its event loop and in threads; its own log line
    of each exception ("Exception in ASGI application") is deduplicated."""
    base, server = served_app
    count = 6
    statuses: list[int] = []
    for kind in ("tagged", "threaded"):
        statuses += get_all([f"{base}/{kind}/{n}" for n in range(count)]).values()
    assert statuses == [500] * 2 * count
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=15) == 0
    log = (tmp_path / "server.log").read_text()
    assert log.count("Exception in ASGI application") == 2 * count  # its behaviour unchanged
    events = collector.wait_for_events(2 * count)
    assert len(events) == 2 * count, [e.get("logentry") for e in events]
    seen = set()
    for event in events:
        n = int(exception_of(event)["value"].split()[-1])
        kind = event["transaction"].split("/")[1]
        seen.add((kind, n))
        assert event["transaction"] == f"/{kind}/{{n}}"
        assert exception_of(event)["mechanism"] == {"type": "fastapi", "handled": False}
        assert event["tags"]["request_number"] == str(n)
        assert [c for c in crumbs_of(event) if "inside" in c] == [f"request {n} inside"]
        request = event["request"]
        assert request["method"] == "GET"
        assert request["url"] == f"{base}/{kind}/{n}"
        assert request["headers"]["Host"] == base.split("//")[1]
        assert "REMOTE_ADDR" not in request["env"]
    assert seen == {(kind, n) for kind in ("tagged", "threaded") for n in range(count)}


def test_the_event_is_json_serializable() -> None:
    with capture_events() as events:
        client_for(make_fastapi()).post("/orders", json={"fail": True})
        client_for(make_starlette()).post("/form", data={"item": "mug"})
    assert len(events) == 2
    json.dumps(events)
