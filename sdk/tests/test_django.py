"""The Django integration against real Django (and Django REST framework): its test clients,
its own WSGI and ASGI handlers, a real threaded WSGI server, and a real ASGI server process.
Events are checked field by field."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")

import django

django.setup()

from concurrent_http import get_all, threaded_wsgi_server  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import AsyncClient, Client  # noqa: E402
from django_app import views  # noqa: E402

import bugnet  # noqa: E402
from bugnet.integrations.django import DjangoIntegration  # noqa: E402
from bugnet.testing import capture_events  # noqa: E402

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module", autouse=True)
def database() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def last(event: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = event["exception"]["values"][-1]
    return value


def types(events: list[dict[str, Any]]) -> list[str]:
    return [last(e)["type"] for e in events if "exception" in e]


def test_an_error_is_reported_once_with_request_transaction_locals_and_breadcrumbs(
    client: Client,
) -> None:
    with capture_events() as events:
        response = client.get("/boom/3/?size=large", HTTP_USER_AGENT="pytest")
    assert response.status_code == 500
    assert len(events) == 1  # Django's own "Internal Server Error" log line is deduplicated
    event = events[0]
    exception = last(event)
    assert exception["type"] == "ZeroDivisionError"
    assert exception["value"] == "order 3 total 6"
    assert exception["mechanism"] == {"type": "django", "handled": False}
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["function"] == "boom"
    assert frame["vars"]["total"] == "6"
    assert event["transaction"] == "/boom/<int:order>/"
    request = event["request"]
    assert request["method"] == "GET"
    assert request["url"] == "http://testserver/boom/3/"
    assert request["query_string"] == "size=large"
    assert request["headers"]["User-Agent"] == "pytest"
    assert "cookies" not in request
    assert "REMOTE_ADDR" not in request.get("env", {})
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
    assert "looking up order 3" in crumbs
    assert event["sdk"]["integrations"].count("django") == 1


def test_transaction_style_function_name(client: Client) -> None:
    integration = DjangoIntegration(transaction_style="function_name")
    with capture_events(integrations=[integration]) as events:
        client.get("/boom/1/")
    assert events[0]["transaction"] == "django_app.views.boom"


def test_bad_options_are_refused_and_sentry_tracing_options_accepted() -> None:
    with pytest.raises(ValueError, match="transaction_style"):
        DjangoIntegration(transaction_style="endpoint")
    with pytest.raises(TypeError, match="unknown"):
        DjangoIntegration(spans=True)
    assert DjangoIntegration(middleware_spans=False, cache_spans=True)


def test_an_exception_the_app_answered_itself_is_still_reported_once(client: Client) -> None:
    with capture_events() as events:
        response = client.get("/handled/")
    assert response.status_code == 500
    assert response.content == b"<h1>Sorry</h1>"
    assert types(events) == ["Handled"]
    assert len(events) == 1  # not Django's "Internal Server Error" log line of the response
    assert last(events[0])["mechanism"]["handled"] is False


def test_http_errors_are_not_reported_unless_asked(client: Client) -> None:
    with capture_events() as events:
        assert client.get("/missing/").status_code == 404
        assert client.get("/nowhere/").status_code == 404
        assert client.get("/forbidden/").status_code == 403
        assert client.get("/ok/").status_code == 200
    assert events == []
    codes = {403, 404, *range(500, 600)}
    with capture_events(integrations=[DjangoIntegration(failed_request_status_codes=codes)]) as ev:
        client.get("/missing/")
        client.get("/forbidden/")
    assert types(ev) == ["Http404", "PermissionDenied"]
    assert ev[0]["transaction"] == "/missing/"


def test_a_json_body_the_app_read_is_on_the_event_and_still_the_apps(client: Client) -> None:
    with capture_events() as events:
        response = client.post("/echo/", {"fail": True, "sku": "A-1"}, "application/json")
    assert response.status_code == 500
    assert events[0]["request"]["data"] == {"fail": True, "sku": "A-1"}
    with capture_events() as events:
        response = client.post("/echo/", {"sku": "B-2"}, "application/json")
    assert response.json() == {"sku": "B-2"}
    assert events == []


def test_form_data_is_on_the_event_and_scrubbed(client: Client) -> None:
    with capture_events() as events:
        client.post("/form/", {"item": "mug", "password": "hunter2"})
    assert types(events) == ["KeyError"]
    data = events[0]["request"]["data"]
    assert data["item"] == "mug"
    assert data["password"] != "hunter2"


def test_a_small_unread_body_is_read_for_the_event(client: Client) -> None:
    with capture_events() as events:
        client.post("/unread/", "plain words", content_type="text/plain")
    assert events[0]["request"]["data"] == "plain words"


def test_a_body_over_the_limit_is_not_kept(client: Client) -> None:
    with capture_events(max_request_body_size="small") as events:
        client.post("/echo/", {"fail": True, "blob": "x" * 5000}, "application/json")
    assert "omitted" in events[0]["request"]["data"]
    bugnet.get_client().close()
    with capture_events(max_request_body_size="never") as events:
        client.post("/echo/", {"fail": True}, "application/json")
    assert "data" not in events[0]["request"]


def test_with_send_default_pii_cookies_ip_and_the_logged_in_user_are_sent() -> None:
    user = User.objects.create_user("ada", "ada@example.com", "secret-pass")
    client = Client(raise_request_exception=False, REMOTE_ADDR="203.0.113.9")
    client.force_login(user)
    user_id = str(user.pk)
    try:
        with capture_events(send_default_pii=True) as events:
            client.get("/boom/5/")
    finally:
        user.delete()
    event = events[0]
    assert event["user"]["id"] == user_id
    assert event["user"]["username"] == "ada"
    assert event["user"]["email"] == "ada@example.com"
    assert event["user"]["ip_address"] == "203.0.113.9"
    assert "sessionid" in event["request"]["cookies"]
    assert event["request"]["env"]["REMOTE_ADDR"] == "203.0.113.9"


def test_logged_errors_are_events_with_the_request(client: Client) -> None:
    with capture_events() as events:
        client.get("/logged/")
    assert len(events) == 1
    assert events[0]["logentry"]["formatted"] == "payment declined for cart-7"
    assert events[0]["request"]["url"].endswith("/logged/")
    assert events[0]["transaction"] == "/logged/"


def test_sql_queries_are_breadcrumbs_without_their_values_unless_pii(client: Client) -> None:
    with capture_events() as events:
        client.get("/query/")
    assert types(events) == ["LookupError"]
    queries = [c for c in events[0]["breadcrumbs"]["values"] if c.get("category") == "query"]
    assert queries[-1]["message"] == "SELECT %s + %s"
    assert queries[-1]["type"] == "query"
    assert queries[-1]["data"]["db.system"] == "sqlite"
    assert "db.params" not in queries[-1]["data"]
    bugnet.get_client().close()
    with capture_events(send_default_pii=True) as events:
        client.get("/query/")
    queries = [c for c in events[0]["breadcrumbs"]["values"] if c.get("category") == "query"]
    assert queries[-1]["data"]["db.params"] == [20, 22]


def test_named_query_parameters_are_scrubbed_by_name() -> None:
    from django.db import connection

    with capture_events(send_default_pii=True) as events:
        with connection.cursor() as cursor:
            cursor.execute("SELECT %(password)s, %(n)s", {"password": "hunter2", "n": 1})
        bugnet.capture_message("after a query")
    crumb = [c for c in events[0]["breadcrumbs"]["values"] if c.get("category") == "query"][-1]
    assert crumb["data"]["db.params"]["n"] == 1
    assert crumb["data"]["db.params"]["password"] != "hunter2"


def test_a_template_syntax_error_shows_the_template_line(client: Client) -> None:
    with capture_events() as events:
        client.get("/template/syntax/")
    exception = last(events[0])
    assert exception["type"] == "TemplateSyntaxError"
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["filename"] == "broken.html"
    assert frame["abs_path"].endswith(os.path.join("templates", "broken.html"))
    assert frame["lineno"] == 5
    assert "frobnicate" in frame["context_line"]
    assert frame["pre_context"][-1].strip() == "{% if items %}"
    assert frame["in_app"] is True


def test_an_error_while_rendering_shows_the_template_line(client: Client) -> None:
    with capture_events() as events:
        client.get("/template/render/")
    exception = last(events[0])
    assert exception["type"] == "ArithmeticError"
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["filename"] == "renders_badly.html"
    assert frame["lineno"] == 4
    assert "order.total" in frame["context_line"]


def test_rest_framework_errors_that_become_500s_are_reported(client: Client) -> None:
    with capture_events() as events:
        assert client.get("/api/boom/").status_code == 500
        assert client.get("/api/unavailable/").status_code == 503
        assert client.get("/api/missing/").status_code == 404
    assert types(events) == ["ValueError", "Unavailable"]
    assert len(events) == 2  # not Django's "Service Unavailable" log line of the response
    assert events[0]["transaction"] == "/api/boom/"
    assert all(last(e)["mechanism"]["handled"] is False for e in events)


def test_an_async_view_error_is_reported_with_its_request() -> None:
    async def run() -> int:
        response = await AsyncClient(raise_request_exception=False).get("/async/boom/?q=1")
        return response.status_code

    with capture_events() as events:
        assert asyncio.run(run()) == 500
    assert types(events) == ["ConnectionError"]
    assert events[0]["request"]["query_string"] == "q=1"
    assert events[0]["transaction"] == "/async/boom/"


def wsgi_get(path: str) -> tuple[str, bytes]:
    """One request through Django's own WSGI handler, the response read to the end."""
    environ: dict[str, Any] = {"PATH_INFO": path, "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = WSGIHandler()(environ, lambda s, h, e=None: status.append(s))
    try:
        data = b"".join(body)
    finally:
        body.close()
    return status[0], data


def test_an_exception_while_streaming_is_reported_under_wsgi() -> None:
    with capture_events() as events:
        with pytest.raises(OSError):
            wsgi_get("/stream/")
    assert types(events) == ["OSError"]
    assert events[0]["request"]["url"] == "http://127.0.0.1/stream/"


def test_asgi_requests_on_one_loop_never_share_tags_or_breadcrumbs() -> None:
    """Django's own ASGI handler, many requests at once on one event loop."""
    handler = ASGIHandler()

    async def request(n: int) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"/async/tagged/{n}/",
            "raw_path": f"/async/tagged/{n}/".encode(),
            "query_string": b"",
            "headers": [(b"host", b"shop.test")],
            "client": ("198.51.100.7", 5000),
            "server": ("shop.test", 80),
        }
        sent: list[dict[str, Any]] = []
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await handler(scope, receive, send)
        return int(sent[0]["status"])

    async def run(count: int) -> list[int]:
        return await asyncio.gather(*(request(n) for n in range(count)))

    with capture_events() as events:
        assert asyncio.run(run(8)) == [500] * 8
    assert_own_tags(events, 8)
    assert events[0]["request"]["url"].startswith("http://shop.test/async/tagged/")


def assert_own_tags(events: list[dict[str, Any]], count: int) -> None:
    assert len(events) == count
    for event in events:
        n = int(last(event)["value"].split()[-1])
        assert event["tags"]["request_number"] == str(n)
        inside = [c["message"] for c in event["breadcrumbs"]["values"] if "inside" in c["message"]]
        assert inside == [f"request {n} inside"]
        assert event["request"]["url"].endswith(f"/tagged/{n}/")
        assert event["transaction"] in ("/tagged/<int:n>/", "/async/tagged/<int:n>/")


def test_concurrent_requests_on_a_threaded_server_never_share_tags_or_breadcrumbs() -> None:
    count = 8
    views.barrier = threading.Barrier(count)
    try:
        with threaded_wsgi_server(WSGIHandler()) as base, capture_events() as events:
            statuses = get_all([f"{base}/tagged/{n}/" for n in range(count)])
    finally:
        views.barrier = None
    assert list(statuses.values()) == [500] * count
    assert_own_tags(events, count)


def test_the_integration_can_be_turned_off(client: Client) -> None:
    with capture_events(disabled_integrations=["django"]) as events:
        client.get("/boom/2/")
    assert all("request" not in e for e in events)  # Django's log line only, without request


def test_importing_the_integration_without_django_names_the_install() -> None:
    code = (
        "import sys; sys.modules['django'] = None\n"
        "try:\n    import bugnet.integrations.django\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'bugnet[django]'" in out.stdout


# -- a real ASGI server process -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


SERVER_APP = """
import bugnet, os
bugnet.init(dsn=os.environ["TEST_DSN"], spool_dir=os.environ["TEST_SPOOL"], release="shop@1")
from django.core.asgi import get_asgi_application
app = get_asgi_application()
"""


@pytest.fixture
def asgi_server(tmp_path: Path, collector: Any) -> Iterator[int]:
    (tmp_path / "served.py").write_text(SERVER_APP)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TESTS)]),
        "DJANGO_SETTINGS_MODULE": "django_app.settings",
        "TEST_DSN": collector.dsn,
        "TEST_SPOOL": str(tmp_path / "spool"),
    }
    command = [sys.executable, "-m", "uvicorn", "served:app", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"], env=env, cwd=tmp_path, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.stderr.read().decode() if process.stderr else "")
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def test_a_real_asgi_server_reports_each_request_in_its_own_scope(
    asgi_server: int, collector: Any
) -> None:
    count = 6
    paths = [f"/async/tagged/{n}/" for n in range(count)] + ["/boom/4/?from=asgi", "/ok/"]
    base = f"http://127.0.0.1:{asgi_server}"
    statuses = get_all([base + path for path in paths])
    results = {path: statuses[base + path] for path in paths}
    assert results["/ok/"] == 200
    assert [results[p] for p in paths[:-1]] == [500] * (count + 1)
    received = collector.wait_for_events(count + 1, timeout=20)
    tagged = [e for e in received if "tagged" in e["request"]["url"]]
    assert_own_tags(tagged, count)
    (boom,) = [e for e in received if last(e)["type"] == "ZeroDivisionError"]
    assert boom["request"]["query_string"] == "from=asgi"
    assert boom["request"]["url"] == f"http://127.0.0.1:{asgi_server}/boom/4/"
    assert boom["transaction"] == "/boom/<int:order>/"
    assert boom["release"] == "shop@1"
    assert "request_number" not in boom.get("tags", {})
    assert json.dumps(boom)
