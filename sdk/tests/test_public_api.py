"""The public surface: names, no-op behaviour without a DSN, init() validation."""

from __future__ import annotations

import pytest

import bugnet
from bugnet.testing import capture_events

PUBLIC_NAMES = {
    "BadDsn",
    "Client",
    "EventScrubber",
    "Scope",
    "Transport",
    "__version__",
    "add_breadcrumb",
    "capture_event",
    "capture_exception",
    "capture_message",
    "flush",
    "get_client",
    "get_current_scope",
    "get_global_scope",
    "get_isolation_scope",
    "init",
    "is_initialized",
    "isolation_scope",
    "last_event_id",
    "new_scope",
    "set_context",
    "set_extra",
    "set_level",
    "set_tag",
    "set_tags",
    "set_user",
}


def test_all_is_exactly_the_public_api():
    assert set(bugnet.__all__) == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert hasattr(bugnet, name)


def test_sentry_sdk_names_are_all_present():
    """Switching from sentry-sdk is a one-line change: every name an app commonly calls exists."""
    for name in (
        "init", "capture_exception", "capture_message", "capture_event", "add_breadcrumb",
        "set_user", "set_tag", "set_tags", "set_context", "set_extra", "set_level",
        "new_scope", "isolation_scope", "get_isolation_scope", "get_current_scope",
        "last_event_id", "flush", "get_client", "is_initialized",
    ):  # fmt: skip
        assert callable(getattr(bugnet, name))


def test_without_dsn_everything_is_a_no_op():
    client = bugnet.init()
    assert not bugnet.is_initialized()
    assert not client.is_active()
    assert bugnet.capture_message("hello") is None
    try:
        1 / 0
    except ZeroDivisionError:
        assert bugnet.capture_exception() is None
    bugnet.add_breadcrumb(message="ignored")
    assert bugnet.flush(0.1) is True
    assert client.integrations == {}


def test_dsn_from_environment(monkeypatch, collector):
    monkeypatch.setenv("SENTRY_DSN", collector.dsn)
    bugnet.init()
    assert bugnet.is_initialized()
    monkeypatch.setenv("BUGNET_DSN", "http://other@127.0.0.1:1/7")
    client = bugnet.init()
    assert client.options.dsn.project_id == "7"  # BUGNET_* wins over SENTRY_*


def test_release_environment_server_name_fall_back_to_env(monkeypatch):
    monkeypatch.setenv("SENTRY_RELEASE", "shop@1.0")
    monkeypatch.setenv("BUGNET_ENVIRONMENT", "staging")
    monkeypatch.setenv("BUGNET_SERVER_NAME", "web-3")
    with capture_events() as events:
        bugnet.capture_message("hi")
    assert events[0]["release"] == "shop@1.0"
    assert events[0]["environment"] == "staging"
    assert events[0]["server_name"] == "web-3"


def test_explicit_options_win_over_environment(monkeypatch):
    monkeypatch.setenv("BUGNET_RELEASE", "from-env")
    with capture_events(release="explicit") as events:
        bugnet.capture_message("hi")
    assert events[0]["release"] == "explicit"


@pytest.mark.parametrize(
    ("dsn", "why"),
    [
        ("ftp://key@host/1", "scheme"),
        ("http://host/1", "public key"),
        ("http://key@/1", "host"),
        ("http://key@host/project", "numeric project id"),
        ("http://key@host:99999/1", "port"),
        ("http://key@host:\u00b2/1", "port"),  # a digit to str.isdigit(), not to int()
    ],
)
def test_bad_dsn_says_what_is_wrong_and_the_expected_form(dsn, why):
    with pytest.raises(bugnet.BadDsn) as info:
        bugnet.init(dsn)
    assert why in str(info.value)
    assert "http[s]://<public_key>@<host>" in str(info.value)


def test_dsn_with_path_prefix_keeps_it():
    client = bugnet.init("https://abc@example.com:9000/sentry/7", spool_dir=None)
    assert client.options.dsn.envelope_url == "https://example.com:9000/sentry/api/7/envelope/"


def test_unknown_option_is_a_type_error_but_sentry_tracing_options_are_accepted():
    with pytest.raises(TypeError, match="no_such_option"):
        bugnet.init(no_such_option=True)
    client = bugnet.init(traces_sample_rate=1.0, profiles_sample_rate=0.5)
    assert not client.is_active()


def test_bad_sample_rate_is_rejected():
    with pytest.raises(ValueError, match="sample_rate"):
        bugnet.init(sample_rate=2)


def test_init_returns_a_context_manager_that_flushes_and_closes(collector):
    with bugnet.init(collector.dsn) as client:
        bugnet.capture_message("inside")
    assert not client.is_active()
    assert [e["message"] for e in collector.events()] == ["inside"]


def test_last_event_id_is_the_id_sent():
    with capture_events() as events:
        event_id = bugnet.capture_message("one")
        assert bugnet.last_event_id() == event_id
    assert events[0]["event_id"] == event_id


def test_capture_exception_accepts_exception_exc_info_or_current():
    with capture_events() as events:
        error = ValueError("given")
        bugnet.capture_exception(error)
        try:
            raise KeyError("current")
        except KeyError:
            bugnet.capture_exception()
            import sys

            info = sys.exc_info()
        bugnet.capture_exception(info)
    values = [e["exception"]["values"][-1]["value"] for e in events]
    assert values == ["given", "'current'"]  # the exc_info tuple is the same object: deduped
    assert bugnet.capture_exception() is None  # nothing being handled


def test_capture_with_scope_keywords_applies_to_that_event_only():
    with capture_events() as events:
        bugnet.capture_message("a", tags={"k": "v"}, user={"id": "7"}, level="warning")
        bugnet.capture_message("b")
    assert events[0]["tags"] == {"k": "v"}
    assert events[0]["user"] == {"id": "7"}
    assert events[0]["level"] == "warning"
    assert "tags" not in events[1]
    assert events[1]["level"] == "info"


def test_capture_event_takes_a_hand_made_event():
    with capture_events() as events:
        bugnet.capture_event({"message": "custom", "level": "warning", "tags": {"a": "b"}})
    assert events[0]["message"] == "custom"
    assert events[0]["tags"] == {"a": "b"}
    assert events[0]["platform"] == "python"


@pytest.mark.parametrize(
    "options",
    [
        {"shutdown_timeout": -1},
        {"http_timeout": "10"},
        {"spool_max_age": float("nan")},
        {"max_breadcrumbs": True},
        {"transport_queue_size": -5},
    ],
)
def test_bad_numbers_are_rejected_at_init(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        bugnet.init(**options)


def test_spool_dir_accepts_a_path_object(tmp_path):
    client = bugnet.init("http://k@127.0.0.1:9/1", spool_dir=tmp_path / "spool")
    assert client.options.spool_dir == str(tmp_path / "spool")
