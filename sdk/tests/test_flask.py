"""The Flask integration against real Flask: its test client, and a real threaded WSGI server
for concurrent requests. Events are checked field by field."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import flask
import pytest
from concurrent_http import get_all, threaded_wsgi_server

import bugnet
from bugnet.integrations.flask import FlaskIntegration
from bugnet.testing import capture_events

logger = logging.getLogger("shop.views")
logger.setLevel(logging.INFO)  # what an app that logs at INFO configures


def make_app() -> flask.Flask:
    app = flask.Flask("shop")
    shop = flask.Blueprint("shop", "shop", url_prefix="/shop")

    @app.route("/boom/<int:order>")
    def boom(order: int) -> str:
        logger.info("looking up order %s", order)
        total = order * 2
        raise ZeroDivisionError(f"order {order} total {total}")

    @app.route("/ok")
    def ok() -> str:
        return "fine"

    @app.route("/forbidden")
    def forbidden() -> str:
        flask.abort(403)

    @app.route("/echo", methods=["POST"])
    def echo() -> Any:
        payload = flask.request.get_json()
        if payload.get("fail"):
            raise ValueError("bad payload")
        return payload

    @app.route("/form", methods=["POST"])
    def form() -> str:
        raise KeyError(flask.request.form["item"])

    @app.route("/unread", methods=["POST"])
    def unread() -> str:
        raise RuntimeError("did not read the body")

    @app.route("/logged")
    def logged() -> str:
        flask.current_app.logger.error("payment declined for %s", "cart-7")
        return "logged"

    @app.route("/stream")
    def stream() -> flask.Response:
        def generate() -> Iterator[str]:
            yield "first,"
            raise OSError("the stream broke")

        return flask.Response(generate())

    @shop.route("/cart/<name>")
    def cart(name: str) -> str:
        raise LookupError(name)

    app.register_blueprint(shop)
    return app


@pytest.fixture
def app() -> flask.Flask:
    return make_app()


def test_an_unhandled_exception_is_one_event_with_the_request(app: flask.Flask) -> None:
    with capture_events() as events:  # init() after the app was created
        client = app.test_client()
        client.set_cookie("session", "s3cret")
        response = client.get("/boom/21?coupon=x", headers={"User-Agent": "pytest"})
    assert response.status_code == 500
    assert len(events) == 1, [e.get("logentry") for e in events]
    event = events[0]
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["mechanism"] == {"type": "flask", "handled": False}
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["function"] == "boom"
    assert frame["in_app"] is True
    assert "raise ZeroDivisionError" in frame["context_line"]
    assert frame["vars"]["order"] == "21"
    assert frame["vars"]["total"] == "42"
    request = event["request"]
    assert request["method"] == "GET"
    assert request["url"] == "http://localhost/boom/21"
    assert request["query_string"] == "coupon=x"
    assert request["headers"]["User-Agent"] == "pytest"
    assert request["headers"]["Cookie"] == "[Filtered]"  # no send_default_pii
    assert request["cookies"] == "[Filtered]"
    assert "REMOTE_ADDR" not in request.get("env", {})
    assert "user" not in event
    assert event["transaction"] == "boom"
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
    assert "looking up order 21" in crumbs


def test_init_before_the_app_is_created_works_too() -> None:
    with capture_events() as events:
        app = make_app()
        app.test_client().get("/boom/1")
    assert [e["exception"]["values"][-1]["type"] for e in events] == ["ZeroDivisionError"]


def test_an_exception_an_error_handler_rendered_is_still_reported_once(app: flask.Flask) -> None:
    @app.errorhandler(Exception)
    def oops(error: Exception) -> tuple[str, int]:
        return "<h1>Sorry</h1>", 500

    with capture_events() as events:
        response = app.test_client().get("/boom/3")
    assert response.status_code == 500
    assert b"Sorry" in response.data
    assert len(events) == 1
    assert events[0]["exception"]["values"][-1]["mechanism"]["handled"] is False


def test_http_errors_below_500_are_not_reported(app: flask.Flask) -> None:
    with capture_events() as events:
        client = app.test_client()
        assert client.get("/nowhere").status_code == 404
        assert client.get("/forbidden").status_code == 403
        assert client.get("/ok").status_code == 200
    assert events == []


def test_failed_request_status_codes_widens_what_is_reported() -> None:
    integration = FlaskIntegration(failed_request_status_codes={403, *range(500, 600)})
    with capture_events(integrations=[integration]) as events:
        app = make_app()

        @app.route("/teapot")
        def teapot() -> str:
            flask.abort(500)

        client = app.test_client()
        assert client.get("/nowhere").status_code == 404
        assert client.get("/forbidden").status_code == 403
        assert client.get("/teapot").status_code == 500
    assert [e["exception"]["values"][-1]["type"] for e in events] == [
        "Forbidden",
        "InternalServerError",
    ]
    assert events[0]["transaction"] == "forbidden"


def test_failed_request_status_codes_is_checked() -> None:
    integration = FlaskIntegration(failed_request_status_codes=[403, range(500, 599)])
    assert integration.failed_request_status_codes == {403, *range(500, 599)}
    assert FlaskIntegration(failed_request_status_codes=set()).failed_request_status_codes == set()
    with pytest.raises(TypeError, match="failed_request_status_codes"):
        FlaskIntegration(failed_request_status_codes="500")
    with pytest.raises(TypeError, match="not a status code"):
        FlaskIntegration(failed_request_status_codes={"500"})


def test_blueprints_and_url_transaction_style() -> None:
    with capture_events(integrations=[FlaskIntegration(transaction_style="url")]) as events:
        make_app().test_client().get("/shop/cart/blue")
    assert events[0]["transaction"] == "/shop/cart/<name>"
    bugnet.get_client().close()
    with capture_events(integrations=[FlaskIntegration()]) as events:
        make_app().test_client().get("/shop/cart/blue")
    assert events[0]["transaction"] == "shop.cart"


def test_a_bad_transaction_style_is_refused() -> None:
    with pytest.raises(ValueError, match="transaction_style"):
        FlaskIntegration(transaction_style="route")


def test_a_json_body_the_app_read_is_on_the_event(app: flask.Flask) -> None:
    with capture_events() as events:
        response = app.test_client().post("/echo", json={"fail": True, "sku": "A-1"})
    assert response.status_code == 500
    assert events[0]["request"]["data"] == {"fail": True, "sku": "A-1"}
    with capture_events() as events:  # and the app still got its body
        response = app.test_client().post("/echo", json={"sku": "B-2"})
    assert response.get_json() == {"sku": "B-2"}
    assert events == []


def test_form_data_is_on_the_event(app: flask.Flask) -> None:
    with capture_events() as events:
        app.test_client().post("/form", data={"item": "mug", "password": "hunter2"})
    data = events[0]["request"]["data"]
    assert data["item"] == "mug"
    assert data["password"] != "hunter2"  # scrubbed by default


def test_a_small_unread_body_is_read_for_the_event(app: flask.Flask) -> None:
    with capture_events() as events:
        app.test_client().post("/unread", data=b"plain words", content_type="text/plain")
    assert events[0]["request"]["data"] == "plain words"


def test_a_body_over_the_limit_is_not_kept(app: flask.Flask) -> None:
    with capture_events(max_request_body_size="small") as events:
        app.test_client().post("/echo", json={"fail": True, "blob": "x" * 5000})
    assert "omitted" in events[0]["request"]["data"]
    with capture_events(max_request_body_size="never") as events:
        app.test_client().post("/echo", json={"fail": True})
    assert "data" not in events[0]["request"]


def test_with_send_default_pii_cookies_ip_and_the_logged_in_user_are_sent() -> None:
    import flask_login

    app = make_app()
    app.secret_key = "test"
    login = flask_login.LoginManager(app)

    class User(flask_login.UserMixin):
        def __init__(self, user_id: str) -> None:
            self.id = user_id
            self.email = f"{user_id}@example.com"

    login.user_loader(User)

    @app.route("/login-and-fail")
    def login_and_fail() -> str:
        flask_login.login_user(User("ada"))
        raise PermissionError("after login")

    with capture_events(send_default_pii=True) as events:
        client = app.test_client()
        client.set_cookie("theme", "dark")
        client.get("/login-and-fail", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    event = events[0]
    assert event["request"]["cookies"]["theme"] == "dark"
    assert event["request"]["env"]["REMOTE_ADDR"] == "203.0.113.9"
    assert event["user"]["id"] == "ada"
    assert event["user"]["email"] == "ada@example.com"
    assert event["user"]["ip_address"] == "203.0.113.9"


def test_app_logger_errors_are_events_with_the_request(app: flask.Flask) -> None:
    with capture_events() as events:
        app.test_client().get("/logged")
    assert len(events) == 1
    assert events[0]["logentry"]["formatted"] == "payment declined for cart-7"
    assert events[0]["request"]["url"].endswith("/logged")


def test_an_exception_while_streaming_is_reported(app: flask.Flask) -> None:
    with capture_events() as events:
        with pytest.raises(OSError):
            app.test_client().get("/stream").get_data()
    assert [e["exception"]["values"][-1]["type"] for e in events] == ["OSError"]
    assert events[0]["request"]["url"].endswith("/stream")


def test_the_integration_can_be_turned_off(app: flask.Flask) -> None:
    with capture_events(disabled_integrations=["flask"]) as events:
        app.test_client().get("/boom/2")
    assert all("request" not in e for e in events)  # Flask's log line only, without request


def test_concurrent_requests_never_share_tags_or_breadcrumbs() -> None:
    """A real threaded server: each request tags itself, waits for all others to be inside
    their views, then fails. Each event must carry only its own tag and breadcrumb."""
    app = make_app()
    count = 8
    barrier = threading.Barrier(count)

    @app.route("/tagged/<int:n>")
    def tagged(n: int) -> str:
        bugnet.set_tag("request_number", n)
        logger.warning("request %d inside", n)
        barrier.wait(timeout=10)
        raise RuntimeError(f"request {n}")

    with threaded_wsgi_server(app) as base, capture_events() as events:
        statuses = get_all([f"{base}/tagged/{n}" for n in range(count)])
    assert list(statuses.values()) == [500] * count
    assert len(events) == count
    for event in events:
        n = int(event["exception"]["values"][-1]["value"].split()[-1])
        assert event["tags"]["request_number"] == str(n)
        inside = [c["message"] for c in event["breadcrumbs"]["values"] if "inside" in c["message"]]
        assert inside == [f"request {n} inside"]
        assert event["request"]["url"].endswith(f"/tagged/{n}")


def test_importing_the_integration_without_flask_names_the_install() -> None:
    code = (
        "import sys; sys.modules['flask'] = None\n"
        "try:\n    import bugnet.integrations.flask\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install" in out.stdout
    assert "flask" in out.stdout


def test_the_event_is_json_serializable(app: flask.Flask) -> None:
    with capture_events() as events:
        app.test_client().post("/echo", json={"fail": True})
    json.dumps(events[0])
