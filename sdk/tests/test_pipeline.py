"""The event pipeline: cheap drops first, then scope data, scrubbing, before_send; each drop
counted by reason; the app never sees an error from the SDK."""

from __future__ import annotations

import pytest

import bugnet
from bugnet.testing import capture_events


class Watched:
    """A local variable that records whether the SDK looked at it (repr is how it would)."""

    reprs = 0

    def __repr__(self) -> str:
        Watched.reprs += 1
        return "<Watched>"


def raise_with_watched_local(error: BaseException) -> None:
    watched = Watched()  # noqa: F841 - read by the SDK through the frame's locals
    raise error


def capture(error: BaseException) -> str | None:
    try:
        raise_with_watched_local(error)
    except BaseException:
        return bugnet.capture_exception()
    return None


class PaymentError(Exception):
    pass


class CardDeclined(PaymentError):
    pass


@pytest.fixture(autouse=True)
def _reset_watched():
    Watched.reprs = 0


def test_ignore_errors_by_class_covers_subclasses_and_skips_walking_frames():
    with capture_events(ignore_errors=[PaymentError]) as events:
        assert capture(CardDeclined("no")) is None
    assert events == []
    assert Watched.reprs == 0
    assert bugnet.get_client().discards.totals[("ignored", "error")] == 1


def test_ignore_errors_by_name_or_qualified_name():
    with capture_events(ignore_errors=["CardDeclined", "builtins.KeyError"]) as events:
        capture(CardDeclined("no"))
        capture(KeyError("k"))
        capture(ValueError("kept"))
    assert [e["exception"]["values"][-1]["type"] for e in events] == ["ValueError"]


def test_sample_rate_zero_drops_before_walking_frames():
    with capture_events(sample_rate=0.0) as events:
        capture(ValueError("x"))
        bugnet.capture_message("y")
    assert events == []
    assert Watched.reprs == 0
    assert bugnet.get_client().discards.totals[("sample_rate", "error")] == 2


def test_the_same_exception_object_is_sent_once_and_the_copy_is_not_walked():
    with capture_events() as events:
        error = ValueError("once")
        capture(error)
        reprs_after_first = Watched.reprs
        bugnet.capture_exception(error)
    assert len(events) == 1
    assert Watched.reprs == reprs_after_first
    assert bugnet.get_client().discards.totals[("event_processor", "error")] == 1


def test_before_send_can_modify_and_drop():
    def before_send(event, hint):
        if "exc_info" in hint and isinstance(hint["exc_info"][1], KeyError):
            return None
        event.setdefault("tags", {})["seen_by"] = "before_send"
        return event

    with capture_events(before_send=before_send) as events:
        capture(KeyError("dropped"))
        capture(ValueError("kept"))
    assert [e["exception"]["values"][-1]["type"] for e in events] == ["ValueError"]
    assert events[0]["tags"]["seen_by"] == "before_send"
    assert bugnet.get_client().discards.totals[("before_send", "error")] == 1


def test_before_send_sees_scope_data_and_scrubbed_values():
    seen = {}

    def before_send(event, hint):
        seen.update(event)
        return event

    with capture_events(before_send=before_send):
        bugnet.set_tag("tenant", "acme")
        bugnet.set_extra("password", "hunter2")
        bugnet.capture_message("x")
    assert seen["tags"] == {"tenant": "acme"}
    assert seen["extra"]["password"] == "[Filtered]"


def test_before_send_that_raises_sends_the_event_unchanged(swallowed_errors):
    def before_send(event, hint):
        raise RuntimeError("bug in the app's hook")

    with capture_events(before_send=before_send) as events:
        assert bugnet.capture_message("still sent") is not None
    assert [e["message"] for e in events] == ["still sent"]
    assert [type(e) for e in swallowed_errors] == [RuntimeError]
    swallowed_errors.clear()


def test_a_broken_transport_never_raises_into_the_app(swallowed_errors):
    class Broken(bugnet.Transport):
        def capture_envelope(self, envelope):
            raise OSError("disk on fire")

    bugnet.init(transport=Broken())
    assert bugnet.capture_message("x") is None
    try:
        raise ValueError("y")
    except ValueError:
        assert bugnet.capture_exception() is None
    assert len(swallowed_errors) == 2
    assert bugnet.get_client().discards.totals[("internal_sdk_error", "error")] == 2
    swallowed_errors.clear()


def test_secrets_are_scrubbed_by_default_everywhere():
    def charge(card_token, amount):
        password = "hunter2"  # noqa: F841
        raise ValueError("declined")

    with capture_events() as events:
        bugnet.add_breadcrumb(message="login", data={"api_key": "abc", "user": "jane"})
        try:
            charge("tok_123", 5)
        except ValueError:
            bugnet.capture_exception()
    event = events[0]
    frame_vars = event["exception"]["values"][-1]["stacktrace"]["frames"][-1]["vars"]
    assert frame_vars["card_token"] == "[Filtered]"
    assert frame_vars["password"] == "[Filtered]"
    assert frame_vars["amount"] == "5"
    assert event["breadcrumbs"]["values"][0]["data"] == {"api_key": "[Filtered]", "user": "jane"}


def test_user_before_breadcrumb_can_drop_or_change_crumbs():
    def before_breadcrumb(crumb, hint):
        if crumb.get("category") == "noise":
            return None
        crumb["message"] = crumb["message"].upper()
        return crumb

    with capture_events(before_breadcrumb=before_breadcrumb) as events:
        bugnet.add_breadcrumb(category="noise", message="drop")
        bugnet.add_breadcrumb(category="app", message="keep")
        bugnet.capture_message("x")
    assert [c["message"] for c in events[0]["breadcrumbs"]["values"]] == ["KEEP"]


def test_unsendable_objects_in_app_data_become_reprs():
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    cyclic: list = []
    cyclic.append(cyclic)
    with capture_events() as events:
        bugnet.set_extra("obj", Opaque())
        bugnet.set_extra("cyclic", cyclic)
        bugnet.set_extra("nan", float("nan"))
        bugnet.set_context("weird", {"key": {1, 2}})
        bugnet.capture_message("x")
    extra = events[0]["extra"]
    assert extra["obj"] == "<Opaque>"
    assert isinstance(extra["cyclic"], list)
    assert extra["nan"] is None or extra["nan"] != extra["nan"] or isinstance(extra["nan"], str)
    assert events[0]["contexts"]["weird"]["key"] in ([1, 2], "{1, 2}")


def test_hand_made_events_may_use_the_bare_list_forms():
    with capture_events() as events:
        bugnet.add_breadcrumb(message="from scope")
        bugnet.capture_event(
            {
                "exception": [{"type": "Custom", "value": "v"}],
                "breadcrumbs": [{"message": "from event"}],
                "extra": {"token": "secret-value"},
            }
        )
    event = events[0]
    assert event["exception"]["values"][0]["type"] == "Custom"
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["from scope", "from event"]
    assert event["extra"]["token"] == "[Filtered]"


def test_without_send_default_pii_client_addresses_and_cookies_are_filtered():
    def add_request(event, hint):
        event["request"] = {
            "url": "https://shop.example/cart",
            "headers": [["X-Forwarded-For", "203.0.113.7"], ["Accept", "text/html"]],
            "cookies": {"theme": "dark"},
            "env": {"REMOTE_ADDR": "203.0.113.7", "SERVER_NAME": "shop"},
        }
        return event

    with capture_events() as events:
        bugnet.get_isolation_scope().add_event_processor(add_request)
        bugnet.capture_message("x")
    request = events[0]["request"]
    assert request["headers"] == [["X-Forwarded-For", "[Filtered]"], ["Accept", "text/html"]]
    assert request["cookies"] == "[Filtered]"
    assert request["env"] == {"SERVER_NAME": "shop"}


def test_sentry_style_scrubber_import_works():
    from bugnet.scrubber import DEFAULT_DENYLIST, EventScrubber

    assert "password" in DEFAULT_DENYLIST
    scrubber = EventScrubber(denylist=[*DEFAULT_DENYLIST, "iban"])
    with capture_events(event_scrubber=scrubber) as events:
        bugnet.set_extra("customer_iban", "DE89 3704")
        bugnet.capture_message("x")
    assert events[0]["extra"]["customer_iban"] == "[Filtered]"
