"""Issue titles, culprits, levels and metadata: pure unit tests, no Django, no database."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import fixture_event

from bugnet_server.digest.titles import IssueDescription, describe


def frame(function: str, module: str = "app.orders", **fields: Any) -> dict[str, Any]:
    return {
        "function": function,
        "module": module,
        "filename": "orders.py",
        "in_app": True,
    } | fields


def error_event(
    type_: Any = "ValueError", value: Any = "bad input", frames: Any = None, **fields: Any
) -> dict[str, Any]:
    exception: dict[str, Any] = {"type": type_, "value": value}
    if frames is not None:
        exception["stacktrace"] = {"frames": frames}
    return {"platform": "python", "exception": {"values": [exception]}, **fields}


# --- the captured fixtures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "title", "culprit", "level"),
    [
        (
            "python/flask-exception",
            "ZeroDivisionError: division by zero",
            "__main__ in compute_ratio",
            "error",
        ),
        ("python/logging-error", "Payment failed for order A-1001 (amount 42)", "", "error"),
        ("python/capture-message", "Disk quota exceeded on /var/data", "", "warning"),
        (
            "python/chained-exception",
            "RuntimeError: invalid configuration",
            "__main__ in load_config",
            "error",
        ),
        ("python/exception-group", "ExceptionGroup: several failures", "__main__ in many", "error"),
        (
            "javascript-node/capture-exception",
            "TypeError: amount must be a number, got string",
            "parseAmount(app)",
            "error",
        ),
        ("javascript-node/capture-message", "Cache miss rate above 40%", "", "warning"),
    ],
)
def test_fixture_events_are_described_as_sentry_shows_them(
    name: str, title: str, culprit: str, level: str
) -> None:
    description = describe(fixture_event(name))
    assert (description.title, description.culprit, description.level) == (title, culprit, level)


def test_flask_exception_metadata_names_the_crash_frame() -> None:
    assert describe(fixture_event("python/flask-exception")).metadata == {
        "type": "ZeroDivisionError",
        "value": "division by zero",
        "logger": "",
        "filename": "flask_exception.py",
        "function": "compute_ratio",
    }


def test_logging_event_metadata_has_the_logger_and_no_error() -> None:
    metadata = describe(fixture_event("python/logging-error")).metadata
    assert metadata == {"type": "", "value": "", "logger": "myapp.billing"}


def test_synthetic_exception_metadata_has_no_type() -> None:
    metadata = describe(fixture_event("javascript-node/capture-message")).metadata
    assert metadata["type"] == ""
    assert metadata["value"] == "Cache miss rate above 40%"
    assert metadata["function"] == "Socket.?"


# --- titles ---------------------------------------------------------------------------------


def test_error_title_uses_the_first_line_of_the_value() -> None:
    event = error_event("KeyError", "\n  first line  \nsecond line")
    assert describe(event).title == "KeyError: first line"


def test_error_without_value_is_titled_by_its_type() -> None:
    assert describe(error_event("SystemExit", None)).title == "SystemExit"


def test_error_without_type_is_titled_error() -> None:
    assert describe(error_event(None, "it broke")).title == "Error: it broke"


def test_title_uses_the_last_exception_of_a_chain() -> None:
    event = {"exception": [{"type": "KeyError", "value": "a"}, {"type": "RuntimeError"}]}
    assert describe(event).title == "RuntimeError"


def test_message_title_prefers_formatted_then_template_then_legacy_message() -> None:
    both = {"logentry": {"message": "x %s", "formatted": "x 1\nmore"}, "message": "legacy"}
    assert describe(both).title == "x 1"
    assert describe({"logentry": {"message": "x %s"}}).title == "x %s"
    assert describe({"message": "legacy text"}).title == "legacy text"


def test_synthetic_exception_is_titled_by_value_then_crash_function() -> None:
    synthetic = {"mechanism": {"type": "mach", "synthetic": True}}
    with_value = {"type": "SIGSEGV", "value": "EXC_BAD_ACCESS", **synthetic}
    assert describe({"exception": [with_value]}).title == "EXC_BAD_ACCESS"
    frames = {"frames": [{"function": "objc_msgSend", "in_app": False}, {"function": "<unknown>"}]}
    without_value = {"type": "SIGSEGV", "stacktrace": frames, **synthetic}
    assert describe({"exception": [without_value]}).title == "objc_msgSend"


def test_event_without_error_or_message_is_unlabeled() -> None:
    assert describe({"platform": "python"}).title == "<unlabeled event>"
    assert describe({"message": "  \n "}).title == "<unlabeled event>"


def test_long_titles_are_cut_to_200_characters() -> None:
    title = describe(error_event("ValueError", "x" * 500)).title
    assert len(title) == 200
    assert title.endswith("...")


def test_non_string_type_and_value_are_shown_as_text() -> None:
    assert describe(error_event(404, 1.5)).title == "404: 1.5"
    assert describe(error_event("E", {"code": 7})).title == 'E: {"code":7}'


# --- culprits -------------------------------------------------------------------------------


def test_culprit_is_the_last_in_app_frame() -> None:
    frames = [
        frame("view", "app.views"),
        frame("split_order"),
        frame("call", "lib.x", in_app=False),
    ]
    assert describe(error_event(frames=frames)).culprit == "app.orders in split_order"


def test_culprit_is_the_last_frame_when_none_is_in_app() -> None:
    frames = [frame("a", "lib.a", in_app=False), frame("b", "lib.b", in_app=False)]
    assert describe(error_event(frames=frames)).culprit == "lib.b in b"


def test_culprit_skips_frames_the_in_app_rules_exclude() -> None:
    """A frame in site-packages is not in-app even when the SDK said so."""
    library = frame("get", "requests.api", abs_path="/venv/lib/site-packages/requests/api.py")
    frames = [frame("fetch", "app.client"), library]
    assert describe(error_event(frames=frames)).culprit == "app.client in fetch"


def test_culprit_uses_the_filename_without_module_and_question_mark_without_function() -> None:
    frames = [{"filename": "jobs/run.py", "in_app": True}]
    assert describe(error_event(frames=frames)).culprit == "jobs/run.py in ?"


def test_javascript_culprit_is_function_then_location() -> None:
    event = error_event(frames=[frame("render", "components/cart")], platform="javascript")
    assert describe(event).culprit == "render(components/cart)"


def test_native_culprit_is_the_function() -> None:
    event = error_event(frames=[{"function": "ns::run", "in_app": True}], platform="Native")
    assert describe(event).culprit == "ns::run"


def test_non_string_locations_are_ignored_in_the_culprit() -> None:
    frames = [{"module": {"a": 1}, "filename": "run.py", "function": ["x"], "in_app": True}]
    assert describe(error_event(frames=frames, transaction={"t": 1})).culprit == "run.py in ?"


def test_culprit_falls_back_to_the_transaction() -> None:
    assert describe(error_event(transaction="/orders/{id}")).culprit == "/orders/{id}"
    assert describe(error_event()).culprit == ""


def test_synthetic_errors_have_no_frame_culprit() -> None:
    exception = {
        "value": "v",
        "mechanism": {"synthetic": True},
        "stacktrace": {"frames": [frame("f")]},
    }
    assert describe({"exception": [exception], "transaction": "tick"}).culprit == "tick"


def test_long_culprits_are_cut_to_200_characters() -> None:
    culprit = describe(error_event(frames=[frame("f" * 300)])).culprit
    assert len(culprit) == 200


# --- level and metadata ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("warning", "warning"),
        ("WARN", "warning"),
        ("critical", "fatal"),
        ("log", "info"),
        (40, "error"),
        (10, "debug"),
        ("loud", "error"),
        (None, "error"),
        ([], "error"),
    ],
)
def test_level_is_normalized_like_relay_does(level: Any, expected: str) -> None:
    assert describe({"level": level}).level == expected


def test_metadata_value_is_capped_at_1024_characters() -> None:
    assert len(describe(error_event("E", "v" * 5000)).metadata["value"]) == 1024


def test_metadata_crash_location_skips_unknown_functions() -> None:
    frames = [frame("real", abs_path="/srv/a.py", filename=None), frame("<unknown>")]
    metadata = describe(error_event(frames=frames)).metadata
    assert (metadata["filename"], metadata["function"]) == ("/srv/a.py", "real")


# --- malformed input ------------------------------------------------------------------------


MALFORMED: list[Any] = [
    None,
    "event",
    [],
    {},
    {"exception": "x"},
    {"exception": {"values": [None, 5]}},
    {"exception": [{"type": {}, "value": [], "mechanism": "synthetic"}]},
    {"exception": [{"stacktrace": {"frames": [None, {"function": 5, "module": []}]}}]},
    {"exception": [{"type": "E", "stacktrace": {"frames": [{"platform": 3, "in_app": "1"}]}}]},
    {"logentry": {"formatted": {}, "message": 7}},
    {"logentry": []},
    {"message": ["a"]},
    {"threads": {"values": [{"crashed": True, "stacktrace": {"frames": "no"}}]}},
    {"platform": None, "transaction": 5, "logger": {}, "level": {"x": 1}},
]


@pytest.mark.parametrize("event", MALFORMED)
def test_malformed_events_are_described_without_error(event: Any) -> None:
    description = describe(event)
    assert isinstance(description, IssueDescription)
    assert 0 < len(description.title) <= 200
    assert all(isinstance(value, str) for value in description.metadata.values())


JUNK: list[Any] = [None, "", "x", 0, 2.5, True, [], [None], {}, {"values": None}]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items: Any = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        yield (*prefix, key)
        if isinstance(child, (dict, list)):
            yield from paths(child, (*prefix, key))


def replaced(event: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    node: Any = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copied


@pytest.mark.parametrize(
    "name", ["python/flask-exception", "python/logging-error", "javascript-node/capture-message"]
)
def test_any_field_of_a_real_event_may_hold_any_json_value(name: str) -> None:
    event = fixture_event(name)
    for key in ("request", "modules", "contexts", "breadcrumbs", "extra", "_meta"):
        event.pop(key, None)  # large and never read
    for path in paths(event):
        for junk in JUNK:
            description = describe(replaced(event, path, junk))
            assert 0 < len(description.title) <= 200, (path, junk)
            assert len(description.culprit) <= 200, (path, junk)
