"""Flask: every request in its own scope with its data, ``transaction`` from the route, the
logged-in user (flask-login, with ``send_default_pii``), and every exception that becomes a 500
reported once, also when an error handler of the app caught it and rendered a page.

Hooks, Flask's own first: the ``request_started`` signal names the transaction and adds the
user; ``got_request_exception`` reports what Flask turns into a 500. Flask has no signal for an
exception an ``@app.errorhandler`` took care of, so ``Flask.handle_user_exception`` is wrapped
(the one patch here, beside the WSGI entry ``Flask.__call__``, wrapped so that apps created
before or after ``init()`` are both covered). Flask's own log line of the same exception
("Exception on / [GET]") is the same exception object: the dedupe step drops it.
"""

from __future__ import annotations

import sys

from bugnet import _api, _patching, _scope
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration, module_ready
from bugnet.integrations._web import checked_transaction_style, failed_status_codes
from bugnet.integrations.wsgi import report, run_request

try:
    import flask
    from flask import signals
except ImportError as exc:  # pragma: no cover - exercised without Flask installed
    raise ImportError(
        "the Flask integration needs Flask: pip install 'bugnet[flask]' (or pip install flask)"
    ) from exc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from bugnet.types import Event, Hint

__traceback_hide__ = True

TRANSACTION_STYLES = ("endpoint", "url")


class FlaskIntegration(Integration):
    identifier = "flask"

    def __init__(
        self, transaction_style: str = "endpoint", failed_request_status_codes: Any = None
    ) -> None:
        self.transaction_style = checked_transaction_style(transaction_style, TRANSACTION_STYLES)
        self.failed_request_status_codes = failed_status_codes(failed_request_status_codes)

    @classmethod
    def setup_once(cls) -> None:
        original_call = flask.Flask.__call__
        original_handle_user_exception = flask.Flask.handle_user_exception

        def __call__(self: flask.Flask, environ: dict[str, Any], start_response: Any) -> Any:
            if _active() is None:
                return original_call(self, environ, start_response)
            return run_request(
                lambda e, s: original_call(self, e, s), environ, start_response, "flask"
            )

        def handle_user_exception(self: flask.Flask, e: Exception) -> Any:
            response = original_handle_user_exception(self, e)
            # Reached only when a handler (the app's, or Flask's own for HTTP errors) took the
            # exception; otherwise the call above raised. An HTTP error (abort(404)) is
            # reported when its code is one of failed_request_status_codes; anything else the
            # handler answered with a 5xx (or with something without a status) was a crash.
            with capture_internal_exceptions():
                integration = _active()
                if integration is not None:
                    if _is_http_exception(e):
                        if getattr(e, "code", None) in integration.failed_request_status_codes:
                            report((type(e), e, e.__traceback__), "flask")
                    else:
                        status = getattr(response, "status_code", None)
                        if status is None and isinstance(response, tuple) and len(response) > 1:
                            status = response[1]
                        if not isinstance(status, int) or status >= 500:
                            report((type(e), e, e.__traceback__), "flask")
            return response

        _patching.patch(flask.Flask, "__call__", __call__)
        _patching.patch(flask.Flask, "handle_user_exception", handle_user_exception)
        signals.request_started.connect(_request_started, weak=False)
        signals.got_request_exception.connect(_got_request_exception, weak=False)
        _patching.on_undo(lambda: signals.request_started.disconnect(_request_started))
        _patching.on_undo(lambda: signals.got_request_exception.disconnect(_got_request_exception))


def _active() -> FlaskIntegration | None:
    integration = _api.get_client().integrations.get(FlaskIntegration.identifier)
    return integration if isinstance(integration, FlaskIntegration) else None


def _is_http_exception(exc: BaseException) -> bool:
    from werkzeug.exceptions import HTTPException

    return isinstance(exc, HTTPException)


def _request_started(sender: flask.Flask, **extra: Any) -> None:
    integration = _active()
    if integration is None:
        return
    with capture_internal_exceptions():
        request = flask.request
        scope = _scope.get_isolation_scope()
        if integration.transaction_style == "url" and request.url_rule is not None:
            scope.set_transaction_name(request.url_rule.rule)
        elif request.endpoint:
            scope.set_transaction_name(request.endpoint)
        if _api.get_client().options.send_default_pii:
            scope.add_event_processor(_user_processor(sender))


def _user_processor(app: flask.Flask) -> Any:
    def add_user(event: Event, hint: Hint) -> Event:
        with capture_internal_exceptions():
            user = _logged_in_user(app)
            if user:
                event["user"] = {**user, **event.get("user", {})}  # type: ignore[typeddict-item]
        return event

    return add_user


def _logged_in_user(app: flask.Flask) -> dict[str, Any]:
    """flask-login's current user, if the app uses it and someone is logged in."""
    if "flask_login" not in sys.modules or not flask.has_request_context():
        return {}
    from flask_login import current_user  # type: ignore[import-untyped]

    user = current_user._get_current_object()
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    out: dict[str, Any] = {}
    with capture_internal_exceptions():
        out["id"] = str(user.get_id())
    for field in ("email", "username"):
        value = getattr(user, field, None)
        if isinstance(value, str) and value:
            out[field] = value
    return out


def _got_request_exception(sender: flask.Flask, exception: BaseException, **extra: Any) -> None:
    if _active() is not None:
        report((type(exception), exception, exception.__traceback__), "flask")


module_ready(__name__)
