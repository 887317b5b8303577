"""Scopes: global → isolation → current, kept apart per thread, task and block."""

from __future__ import annotations

import threading

import bugnet
from bugnet.testing import capture_events


def test_top_level_setters_reach_events():
    with capture_events() as events:
        bugnet.set_tag("tenant", "acme")
        bugnet.set_tags({"region": "eu", "tier": 3})
        bugnet.set_user({"id": "42", "email": "jane@example.com"})
        bugnet.set_context("job", {"name": "cleanup", "attempt": 2})
        bugnet.set_extra("cart", {"items": 3})
        bugnet.set_level("warning")
        bugnet.add_breadcrumb(category="auth", message="User logged in")
        bugnet.capture_message("Disk quota exceeded")
    event = events[0]
    assert event["tags"] == {"tenant": "acme", "region": "eu", "tier": "3"}
    assert event["user"] == {"id": "42", "email": "jane@example.com"}
    assert event["contexts"]["job"] == {"name": "cleanup", "attempt": 2}
    assert event["extra"]["cart"] == {"items": 3}
    assert event["level"] == "warning"
    [crumb] = event["breadcrumbs"]["values"]
    assert crumb["category"] == "auth"
    assert crumb["message"] == "User logged in"
    assert crumb["timestamp"].endswith("Z")


def test_new_scope_changes_do_not_leak_out():
    with capture_events() as events:
        bugnet.set_tag("outer", "yes")
        with bugnet.new_scope() as scope:
            scope.set_tag("inner", "yes")
            bugnet.capture_message("inside")
        bugnet.capture_message("outside")
    assert events[0]["tags"] == {"outer": "yes", "inner": "yes"}
    assert events[1]["tags"] == {"outer": "yes"}


def test_isolation_scope_forks_what_top_level_setters_write():
    with capture_events() as events:
        bugnet.set_tag("base", "1")
        with bugnet.isolation_scope():
            bugnet.set_tag("request", "r1")
            bugnet.add_breadcrumb(message="during request")
            bugnet.capture_message("in request")
        bugnet.capture_message("after request")
    assert events[0]["tags"] == {"base": "1", "request": "r1"}
    assert [c["message"] for c in events[0]["breadcrumbs"]["values"]] == ["during request"]
    assert events[1]["tags"] == {"base": "1"}
    assert events[1]["breadcrumbs"]["values"] == []


def test_isolation_scope_starts_a_new_trace():
    with capture_events() as events:
        bugnet.capture_message("a")
        with bugnet.isolation_scope():
            bugnet.capture_message("b")
        bugnet.capture_message("c")
    traces = [e["contexts"]["trace"]["trace_id"] for e in events]
    assert traces[0] == traces[2] != traces[1]
    assert all(len(t) == 32 for t in traces)


def test_layers_merge_with_later_ones_winning_and_event_data_winning_over_all():
    with capture_events() as events:
        bugnet.get_global_scope().set_tag("layer", "global")
        bugnet.get_global_scope().set_tag("only_global", "g")
        bugnet.set_tag("layer", "isolation")
        with bugnet.new_scope() as scope:
            scope.set_tag("layer", "current")
            bugnet.capture_message("one")
            bugnet.capture_event({"message": "two", "tags": {"layer": "event"}})
    assert events[0]["tags"] == {"layer": "current", "only_global": "g"}
    assert events[1]["tags"] == {"layer": "event", "only_global": "g"}


def test_threads_do_not_see_each_others_scope_data():
    barrier = threading.Barrier(2)
    with capture_events() as events:
        bugnet.set_tag("parent", "p")

        def work(name: str) -> None:
            bugnet.set_tag("worker", name)
            bugnet.set_user({"id": name})
            bugnet.add_breadcrumb(message=f"crumb {name}")
            barrier.wait()  # both threads have written before either captures
            bugnet.capture_message(f"from {name}")

        threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bugnet.capture_message("from parent")
    by_message = {e["message"]: e for e in events}
    for name in ("a", "b"):
        event = by_message[f"from {name}"]
        assert event["tags"] == {"parent": "p", "worker": name}
        assert event["user"] == {"id": name}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [f"crumb {name}"]
    assert by_message["from parent"]["tags"] == {"parent": "p"}
    assert "user" not in by_message["from parent"]


def test_breadcrumbs_are_bounded_by_max_breadcrumbs_keeping_the_newest():
    with capture_events(max_breadcrumbs=3) as events:
        for index in range(10):
            bugnet.add_breadcrumb(message=f"crumb {index}")
        bugnet.capture_message("boom")
    messages = [c["message"] for c in events[0]["breadcrumbs"]["values"]]
    assert messages == ["crumb 7", "crumb 8", "crumb 9"]


def test_scope_event_processor_can_change_or_drop_events():
    with capture_events() as events:
        scope = bugnet.get_isolation_scope()

        def processor(event, hint):
            if event.get("message") == "drop me":
                return None
            event.setdefault("tags", {})["processed"] = "yes"
            return event

        scope.add_event_processor(processor)
        bugnet.capture_message("keep me")
        bugnet.capture_message("drop me")
    assert [e["message"] for e in events] == ["keep me"]
    assert events[0]["tags"] == {"processed": "yes"}
    assert bugnet.get_client().discards.totals[("event_processor", "error")] == 1


def test_fingerprint_and_transaction_come_from_the_scope():
    with capture_events() as events:
        scope = bugnet.get_current_scope()
        scope.set_fingerprint(["{{ default }}", "checkout"])
        scope.set_transaction_name("/checkout")
        bugnet.capture_message("x")
    assert events[0]["fingerprint"] == ["{{ default }}", "checkout"]
    assert events[0]["transaction"] == "/checkout"


def test_last_event_id_is_per_isolation_scope():
    with capture_events():
        outer = bugnet.capture_message("outer")
        with bugnet.isolation_scope():
            assert bugnet.last_event_id() == outer  # forked from the outer scope
            inner = bugnet.capture_message("inner")
            assert bugnet.last_event_id() == inner
        assert bugnet.last_event_id() == outer


def test_user_can_be_cleared():
    with capture_events() as events:
        bugnet.set_user({"id": "1"})
        bugnet.set_user(None)
        bugnet.capture_message("x")
    assert "user" not in events[0]


def test_app_objects_are_snapshotted_at_capture_time():
    """Extras are copied when the event is captured, so later mutation by the app can't change
    (or break the serialization of) an event still waiting in the queue."""
    cart = {"items": [1, 2]}
    with capture_events() as events:
        bugnet.set_extra("cart", cart)
        bugnet.capture_message("x")
        cart["items"].append(3)
    assert events[0]["extra"]["cart"] == {"items": [1, 2]}


def test_breadcrumbs_from_several_scopes_are_merged_in_time_order():
    with capture_events() as events:
        bugnet.get_global_scope().add_breadcrumb(
            {"message": "global, earliest", "timestamp": "2026-01-01T00:00:00Z"}
        )
        bugnet.add_breadcrumb(message="isolation, latest")
        with bugnet.new_scope() as scope:
            scope.add_breadcrumb({"message": "current, middle", "timestamp": 1_790_000_000.0})
            bugnet.capture_message("x")
    messages = [c["message"] for c in events[0]["breadcrumbs"]["values"]]
    assert messages == ["global, earliest", "current, middle", "isolation, latest"]


def test_an_incoming_trace_is_continued():
    with capture_events() as events:
        with bugnet.isolation_scope() as scope:
            scope.set_trace("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
            bugnet.capture_message("in request")
        bugnet.capture_message("outside")
    trace = events[0]["contexts"]["trace"]
    assert trace["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace["parent_span_id"] == "00f067aa0ba902b7"
    assert len(trace["span_id"]) == 16
    assert events[1]["contexts"]["trace"]["trace_id"] != trace["trace_id"]
    assert events[1]["contexts"]["trace"]["parent_span_id"] is None
