"""Event normalization (``bugnet_server.digest.normalize``): pure, no Django, no database."""

from __future__ import annotations

import copy
import json
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bugnet_server.digest.normalize import NormalizedEvent, normalize_event
from bugnet_server.digest.serialization import MAX_EVENT_SIZE
from bugnet_server.digest.timestamps import parse_timestamp

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "envelopes"
NOW = 1795269456.0  # 2026-11-21T13:57:36Z, just after the fixtures were captured
LEVELS = {"fatal", "error", "warning", "info", "debug"}
PLATFORMS = {
    "as3", "c", "cfml", "cocoa", "csharp", "elixir", "haskell", "go", "groovy", "java",
    "javascript", "native", "node", "objc", "other", "perl", "php", "python", "ruby",
}  # fmt: skip
HEX32 = re.compile(r"[0-9a-f]{32}")


# --- helpers ---------------------------------------------------------------------------------


def read_envelope(path: Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """The envelope header and its (item header, payload) pairs, with or without ``length``."""
    data = path.read_bytes()
    header_line, _, rest = data.partition(b"\n")
    items = []
    while rest:
        item_line, _, rest = rest.partition(b"\n")
        item = json.loads(item_line)
        if "length" in item:
            payload, rest = rest[: item["length"]], rest[item["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((item, payload))
    return json.loads(header_line), items


def fixture_events() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    events = []
    for path in sorted(
        [*FIXTURES.glob("python/*.envelope"), *FIXTURES.glob("javascript-node/*.envelope")]
    ):
        header, items = read_envelope(path)
        for item, payload in items:
            if item["type"] in ("event", "transaction"):
                events.append((f"{path.parent.name}/{path.stem}", header, json.loads(payload)))
    return events


FIXTURE_EVENTS = fixture_events()
FIXTURE_IDS = [name for name, _, _ in FIXTURE_EVENTS]


def fixture(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for fixture_name, header, payload in FIXTURE_EVENTS:
        if fixture_name == name:
            return header, copy.deepcopy(payload)
    raise KeyError(name)


def normalize_fixture(header: dict[str, Any], payload: Any) -> NormalizedEvent:
    received = parse_timestamp(header["sent_at"])
    assert received is not None
    return normalize_event(
        payload,
        received_at=received + 0.05,
        sent_at=header["sent_at"],
        event_id=header.get("event_id"),
    )


def norm(raw: Any, **kwargs: Any) -> NormalizedEvent:
    kwargs.setdefault("received_at", NOW)
    result = normalize_event(raw, **kwargs)
    assert_canonical(result)
    return result


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def error_types(result: NormalizedEvent) -> list[tuple[str, str]]:
    return [(error["type"], error["name"]) for error in result.errors]


def is_str_pair_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
        for pair in value
    )


def assert_canonical(result: NormalizedEvent) -> None:
    """The shape every consumer relies on, whatever came in."""
    event = result.event
    json.dumps(event, allow_nan=False)
    assert len(json.dumps(event, separators=(",", ":"))) <= MAX_EVENT_SIZE
    assert HEX32.fullmatch(event["event_id"])
    assert isinstance(event["timestamp"], float)
    assert isinstance(event["received"], float)
    assert event["level"] in LEVELS
    assert event["platform"] in PLATFORMS
    assert event["type"] in {"error", "default", "transaction"}
    assert event.get("errors", []) == result.errors
    for error in result.errors:
        assert isinstance(error["type"], str)
        assert isinstance(error["name"], str)
    if "start_timestamp" in event:
        assert isinstance(event["start_timestamp"], float)
    for key in ("exception", "threads", "breadcrumbs"):
        if key in event:
            assert set(event[key]) == {"values"}
            assert isinstance(event[key]["values"], list)
            assert event[key]["values"]
    if "tags" in event:
        assert is_str_pair_list(event["tags"])
        keys = [key for key, _ in event["tags"]]
        assert len(keys) == len(set(keys))
    if "logentry" in event:
        assert isinstance(event["logentry"]["formatted"], str)
    if "fingerprint" in event:
        assert all(isinstance(part, str) for part in event["fingerprint"])
    for crumb in event.get("breadcrumbs", {}).get("values", []):
        assert isinstance(crumb["timestamp"], float)
        assert isinstance(crumb["type"], str)
        assert crumb["level"] in LEVELS
    for exception in event.get("exception", {}).get("values", []):
        assert exception.get("type") or exception.get("value")
        assert isinstance(exception.get("value", ""), str)
        if "mechanism" in exception:
            assert isinstance(exception["mechanism"]["type"], str)
    for frame in all_frames(event):
        assert isinstance(frame.get("in_app", True), bool)
        assert any(key in frame for key in ("filename", "abs_path", "function", "instruction_addr"))
    request = event.get("request", {})
    for key in ("headers", "cookies", "query_string"):
        if key in request:
            assert is_str_pair_list(request[key])
    user = event.get("user", {})
    assert isinstance(user.get("id", ""), str)
    for name, context in event.get("contexts", {}).items():
        assert isinstance(name, str)
        assert isinstance(context["type"], str)


def all_frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    holders = [
        *event.get("exception", {}).get("values", []),
        *event.get("threads", {}).get("values", []),
    ]
    stacktraces = [event.get("stacktrace")] + [holder.get("stacktrace") for holder in holders]
    return [frame for stacktrace in stacktraces if stacktrace for frame in stacktrace["frames"]]


def frames(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"filename": f"f{index}.py", "function": f"fn{index}", "lineno": index + 1, **extra}
        for index in range(count)
    ]


def exception_with(frame_list: list[Any]) -> dict[str, Any]:
    return {"exception": [{"type": "E", "value": "boom", "stacktrace": {"frames": frame_list}}]}


def test_normalization_imports_no_django() -> None:
    """The digest's normalizer is pure Python: importing it must not pull Django in."""
    code = (
        "import sys, bugnet_server.digest.normalize; "
        "sys.exit(any(name.split('.')[0] == 'django' for name in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


# --- real fixtures ---------------------------------------------------------------------------


def test_fixtures_cover_both_sdks() -> None:
    assert any(name.startswith("python/") for name in FIXTURE_IDS)
    assert any(name.startswith("javascript-node/") for name in FIXTURE_IDS)
    assert len(FIXTURE_IDS) >= 7


@pytest.mark.parametrize(("name", "header", "payload"), FIXTURE_EVENTS, ids=FIXTURE_IDS)
def test_fixture_event_normalizes_canonically_without_errors(
    name: str, header: dict[str, Any], payload: dict[str, Any]
) -> None:
    result = normalize_fixture(header, copy.deepcopy(payload))
    assert_canonical(result)
    assert result.errors == []
    assert "errors" not in result.event
    assert result.event["event_id"] == header["event_id"]
    assert result.event["timestamp"] == pytest.approx(parse_timestamp(payload["timestamp"]))


@pytest.mark.parametrize(("name", "header", "payload"), FIXTURE_EVENTS, ids=FIXTURE_IDS)
def test_normalized_fixture_normalizes_to_itself(
    name: str, header: dict[str, Any], payload: dict[str, Any]
) -> None:
    """The canonical form is a fixed point: normalizing it again changes nothing."""
    once = normalize_fixture(header, copy.deepcopy(payload))
    twice = normalize_fixture(header, copy.deepcopy(once.event))
    assert twice.event == once.event
    assert twice.errors == []


@pytest.mark.parametrize(("name", "header", "payload"), FIXTURE_EVENTS, ids=FIXTURE_IDS)
def test_input_payload_is_not_modified(
    name: str, header: dict[str, Any], payload: dict[str, Any]
) -> None:
    original = copy.deepcopy(payload)
    normalize_fixture(header, payload)
    assert payload == original


def test_flask_exception_keeps_what_grouping_and_the_ui_need() -> None:
    event = normalize_fixture(*fixture("python/flask-exception")).event
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["value"] == "division by zero"
    assert exception["mechanism"] == {"type": "flask", "handled": False}
    assert "module" not in exception  # null means absent
    stack = exception["stacktrace"]["frames"]
    assert [frame["function"] for frame in stack[-2:]] == ["ratio", "compute_ratio"]
    assert [frame["in_app"] for frame in stack] == [False] * 4 + [True] * 2
    assert stack[-1]["vars"] == {"total": "100", "parts": "0"}
    assert stack[0]["vars"]["environ"]["wsgi.version"] == ["1", "0"]
    assert event["request"]["url"] == "http://127.0.0.1:36535/ratio/0"
    assert event["request"]["query_string"] == [["verbose", "1"]]
    assert ["Cookie", "[Filtered]"] in event["request"]["headers"]
    assert event["tags"] == [["feature", "ratio"], ["server_name", "vm"]]
    assert event["transaction"] == "ratio"
    assert event["transaction_info"] == {"source": "component"}
    assert event["contexts"]["trace"]["type"] == "trace"
    assert event["modules"]["flask"] == "3.1.3"
    assert event["level"] == "error"
    assert event["platform"] == "python"
    assert event["type"] == "error"
    assert "breadcrumbs" not in event  # it was sent empty
    assert "_meta" not in event


def test_logging_error_keeps_template_params_and_breadcrumb() -> None:
    event = normalize_fixture(*fixture("python/logging-error")).event
    assert event["logentry"] == {
        "formatted": "Payment failed for order A-1001 (amount 42)",
        "message": "Payment failed for order %s (amount %d)",
        "params": ["A-1001", 42],
    }
    assert event["logger"] == "myapp.billing"
    (crumb,) = event["breadcrumbs"]["values"]
    assert crumb["type"] == "log"
    assert crumb["category"] == "myapp.billing"
    assert crumb["timestamp"] == pytest.approx(parse_timestamp("2026-11-21T13:57:01.922751Z"))


def test_python_capture_message_moves_the_legacy_message_to_formatted() -> None:
    event = normalize_fixture(*fixture("python/capture-message")).event
    assert event["logentry"] == {"formatted": "Disk quota exceeded on /var/data"}
    assert event["level"] == "warning"
    assert event["type"] == "default"
    assert event["user"] == {"id": "42", "email": "jane@example.com"}
    assert event["contexts"]["job"] == {"name": "nightly-cleanup", "attempt": 2, "type": "job"}
    assert event["environment"] == "staging"
    assert ["tenant", "acme"] in event["tags"]


def test_node_capture_message_keeps_float_timestamp_and_synthetic_exception() -> None:
    header, payload = fixture("javascript-node/capture-message")
    event = normalize_fixture(header, payload).event
    assert event["timestamp"] == 1795269455.975
    assert event["logentry"] == {"formatted": "Cache miss rate above 40%"}
    (exception,) = event["exception"]["values"]
    assert "type" not in exception
    assert exception["value"] == "Cache miss rate above 40%"
    assert exception["mechanism"]["synthetic"] is True
    assert event["platform"] == "node"


def test_chained_and_grouped_exceptions_keep_their_order_and_ids() -> None:
    chained = normalize_fixture(*fixture("python/chained-exception")).event
    assert [value["type"] for value in chained["exception"]["values"]] == [
        "KeyError",
        "RuntimeError",
    ]
    group = normalize_fixture(*fixture("python/exception-group")).event
    mechanisms = [value["mechanism"] for value in group["exception"]["values"]]
    assert [mechanism.get("exception_id") for mechanism in mechanisms] == [2, 1, 0]
    assert mechanisms[-1]["is_exception_group"] is True
    assert mechanisms[0]["source"] == "exceptions[1]"
    assert mechanisms[0]["parent_id"] == 0


def test_transaction_keeps_start_timestamp_and_type() -> None:
    header, payload = fixture("python/flask-transaction")
    event = normalize_fixture(header, payload).event
    assert event["type"] == "transaction"
    assert event["level"] == "info"
    assert event["start_timestamp"] == pytest.approx(parse_timestamp(payload["start_timestamp"]))
    assert event["contexts"]["response"] == {"status_code": 500, "type": "response"}


# --- basics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, [], [{"level": "error"}], "event", 3, 2.5, True])
def test_non_object_payload_becomes_an_event_with_an_invalid_data_error(raw: Any) -> None:
    result = norm(raw)
    assert error_types(result) == [("invalid_data", "event")]
    assert result.event["timestamp"] == NOW
    assert result.event["level"] == "error"
    assert result.event["platform"] == "other"
    assert result.event["type"] == "default"


def test_null_everywhere_means_absent() -> None:
    keys = [
        *("event_id", "timestamp", "level", "platform", "logger", "transaction", "server_name"),
        *("release", "dist", "environment", "modules", "extra", "fingerprint", "tags", "message"),
        *("logentry", "exception", "threads", "breadcrumbs", "request", "user", "contexts", "sdk"),
        *("culprit", "transaction_info", "start_timestamp", "stacktrace", "spans", "type"),
    ]
    result = norm(dict.fromkeys(keys))
    assert result.errors == []
    assert set(result.event) == {"event_id", "type", "timestamp", "received", "level", "platform"}


def test_nulls_inside_interfaces_mean_absent() -> None:
    raw = {
        "exception": {
            "values": [None, {"type": "E", "value": None, "module": None, "mechanism": None}]
        },
        "breadcrumbs": {"values": [None, {"message": "m", "data": None, "timestamp": None}]},
        "request": {"url": None, "headers": None, "env": None},
        "user": {"id": None, "ip_address": None},
        "contexts": {"os": None},
        "tags": {"a": None},
    }
    result = norm(raw)
    assert result.errors == []
    assert result.event["exception"] == {"values": [{"type": "E"}]}
    assert "user" not in result.event
    assert "contexts" not in result.event
    assert "tags" not in result.event


def test_received_is_the_receipt_time() -> None:
    assert norm({}, received_at=NOW + 1.5).event["received"] == NOW + 1.5


def test_event_id_from_the_envelope_header_wins() -> None:
    result = norm({"event_id": "a" * 32}, event_id="B" * 32)
    assert result.event["event_id"] == "b" * 32


def test_dashed_uppercase_event_id_becomes_32_lowercase_hex() -> None:
    result = norm({"event_id": "E0445DF3-2734-453E-BFE4-81B35DE7E401"})
    assert result.event["event_id"] == "e0445df32734453ebfe481b35de7e401"
    assert result.errors == []


def test_invalid_event_id_is_replaced_with_an_error() -> None:
    result = norm({"event_id": "not-a-uuid"})
    assert error_types(result) == [("invalid_data", "event_id")]
    assert result.event["event_id"] != "not-a-uuid"


def test_missing_event_id_is_generated_fresh_each_time() -> None:
    assert norm({}).event["event_id"] != norm({}).event["event_id"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("fatal", "fatal"),
        ("critical", "fatal"),
        ("error", "error"),
        ("warning", "warning"),
        ("warn", "warning"),
        ("info", "info"),
        ("log", "info"),
        ("debug", "debug"),
        ("WARNING", "warning"),
    ],
)
def test_level_aliases_map_to_the_five_levels(given: str, expected: str) -> None:
    result = norm({"level": given})
    assert result.event["level"] == expected
    assert result.errors == []


@pytest.mark.parametrize("given", ["verbose", 40, ["error"]])
def test_unknown_level_becomes_error_with_an_error(given: Any) -> None:
    result = norm({"level": given})
    assert result.event["level"] == "error"
    assert error_types(result) == [("invalid_data", "level")]


def test_unknown_platform_becomes_other() -> None:
    assert norm({"platform": "cobol"}).event["platform"] == "other"
    assert norm({"platform": ["python"]}).event["platform"] == "other"


def test_missing_platform_falls_back_to_the_project_platform() -> None:
    assert norm({}, project_platform="python").event["platform"] == "python"
    assert norm({}, project_platform="cobol").event["platform"] == "other"
    assert norm({"platform": "go"}, project_platform="python").event["platform"] == "go"


def test_missing_environment_stays_absent() -> None:
    assert "environment" not in norm({}).event


@pytest.mark.parametrize(
    "given", ["", "  ", "a/b", "a\nb", "tab\there", "none", "None", ".", "..", 5]
)
def test_invalid_environment_is_dropped_with_an_error(given: Any) -> None:
    result = norm({"environment": given})
    assert "environment" not in result.event
    assert error_types(result) == [("invalid_data", "environment")]


def test_long_environment_is_cut_to_64_characters() -> None:
    environment = norm({"environment": "e" * 100}).event["environment"]
    assert len(environment) == 64
    assert environment.endswith("...")


@pytest.mark.parametrize("given", ["latest", ".", "..", "a/b", "a\tb", "a\fb", "x" * 201, "", {}])
def test_invalid_release_is_dropped_with_an_error(given: Any) -> None:
    result = norm({"release": given})
    assert "release" not in result.event
    assert error_types(result) == [("invalid_data", "release")]


@pytest.mark.parametrize(
    ("given", "expected"), [(" shop@1.4.2 ", "shop@1.4.2"), (2, "2"), (1.5, "1.5")]
)
def test_release_is_trimmed_and_numbers_become_text(given: Any, expected: str) -> None:
    assert norm({"release": given}).event["release"] == expected


def test_dist_allows_only_its_characters_and_64_of_them() -> None:
    assert norm({"dist": "build-1.2_3"}).event["dist"] == "build-1.2_3"
    assert norm({"dist": 42}).event["dist"] == "42"
    bad = norm({"dist": "a b"})
    assert "dist" not in bad.event
    assert error_types(bad) == [("invalid_data", "dist")]
    assert len(norm({"dist": "d" * 70}).event["dist"]) == 64


def test_logger_with_a_newline_is_dropped_and_a_long_one_cut() -> None:
    bad = norm({"logger": "a\nb"})
    assert "logger" not in bad.event
    assert error_types(bad) == [("invalid_data", "logger")]
    logger = norm({"logger": "x" * 80}).event["logger"]
    assert len(logger) == 64
    assert logger.endswith("...")


def test_server_name_is_kept_and_added_as_a_tag() -> None:
    event = norm({"server_name": "web-1", "tags": {"server_name": "other", "a": "b"}}).event
    assert event["server_name"] == "web-1"
    assert event["tags"] == [["server_name", "web-1"], ["a", "b"]]


@pytest.mark.parametrize("field", ["culprit", "transaction"])
def test_culprit_and_transaction_are_cut_to_200(field: str) -> None:
    value = norm({field: "t" * 500}).event[field]
    assert len(value) == 200
    assert value.endswith("...")


def test_strings_within_the_allowance_are_kept_whole() -> None:
    value = "v" * (8192 + 200)
    result = norm({"exception": [{"type": "E", "value": value}]})
    assert result.event["exception"]["values"][0]["value"] == value


def test_strings_over_the_allowance_are_cut_to_the_soft_limit() -> None:
    result = norm({"exception": [{"type": "E" * 400, "value": "v" * 9000}]})
    exception = result.event["exception"]["values"][0]
    assert len(exception["value"]) == 8192
    assert exception["value"].endswith("...")
    assert len(exception["type"]) == 256
    assert result.errors == []  # cutting is routine, not an error


def test_unknown_top_level_keys_are_dropped_with_an_error() -> None:
    result = norm({"my_field": 1, "_meta": {"x": {}}, "errors": [{"type": "forged"}]})
    assert error_types(result) == [("invalid_attribute", "my_field")]
    assert "my_field" not in result.event
    assert "_meta" not in result.event


def test_client_sent_errors_are_not_trusted() -> None:
    assert "errors" not in norm({"errors": [{"type": "forged", "name": "x"}]}).event


def test_legacy_interface_names_are_understood() -> None:
    event = norm(
        {
            "sentry.interfaces.Exception": {"values": [{"type": "E", "value": "v"}]},
            "sentry.interfaces.Message": {"message": "hello"},
            "sentry.interfaces.User": {"id": 7},
            "sentry.interfaces.Http": {"url": "http://x/"},
        }
    ).event
    assert event["exception"]["values"][0]["type"] == "E"
    assert event["logentry"] == {"formatted": "hello"}
    assert event["user"] == {"id": "7"}
    assert event["request"]["url"] == "http://x/"


def test_type_is_inferred_unless_transaction() -> None:
    assert norm({"type": "transaction"}).event["type"] == "transaction"
    assert norm({"type": "csp", "exception": [{"type": "E"}]}).event["type"] == "error"
    assert norm({"type": "error"}).event["type"] == "default"


# --- tags ------------------------------------------------------------------------------------


def test_tags_as_an_object_keep_their_order() -> None:
    assert norm({"tags": {"z": "1", "a": "2"}}).event["tags"] == [["z", "1"], ["a", "2"]]


def test_tags_as_pairs_convert_numbers_and_booleans() -> None:
    result = norm(
        {"tags": [["count", 3], ["ratio", 0.5], ["ok", True], ["no", False], [7, "seven"]]}
    )
    assert result.event["tags"] == [
        ["count", "3"],
        ["ratio", "0.5"],
        ["ok", "True"],
        ["no", "False"],
        ["7", "seven"],
    ]
    assert result.errors == []


def test_tag_keys_are_trimmed_and_spaces_become_dashes() -> None:
    assert norm({"tags": {"  my tag  ": " value "}}).event["tags"] == [["my-tag", "value"]]


@pytest.mark.parametrize("key", ["bad/key", "", "   ", "ünï", "a\nb", "k=v", None, True, [1]])
def test_tags_with_invalid_keys_are_dropped_with_an_error(key: Any) -> None:
    result = norm({"tags": [[key, "v"], ["good", "v"]]})
    assert result.event["tags"] == [["good", "v"]]
    assert error_types(result) == [("invalid_data", "tags.0")]


@pytest.mark.parametrize("value", ["line\nbreak", "", "   ", {"a": 1}, [1]])
def test_tags_with_invalid_values_are_dropped_with_an_error(value: Any) -> None:
    result = norm({"tags": {"k": value, "good": "v"}})
    assert result.event["tags"] == [["good", "v"]]
    assert error_types(result) == [("invalid_data", "tags.k")]


def test_long_tag_keys_and_values_are_cut_to_200() -> None:
    ((key, value),) = norm({"tags": {"k" * 300: "v" * 300}}).event["tags"]
    assert len(key) == len(value) == 200
    assert value.endswith("...")


def test_repeated_tag_keys_keep_the_last_value() -> None:
    assert norm({"tags": [["a", "1"], ["b", "2"], ["a", "3"]]}).event["tags"] == [
        ["a", "3"],
        ["b", "2"],
    ]


@pytest.mark.parametrize(
    ("tags", "name"), [("a=b", "tags"), ([["a", "b", "c"]], "tags.0"), (["ab"], "tags.0")]
)
def test_malformed_tags_are_dropped_with_an_error(tags: Any, name: str) -> None:
    result = norm({"tags": tags})
    assert "tags" not in result.event
    assert error_types(result) == [("invalid_data", name)]


# --- logentry --------------------------------------------------------------------------------


def test_message_equal_to_formatted_keeps_only_formatted() -> None:
    event = norm({"logentry": {"message": "same", "formatted": "same", "params": []}}).event
    assert event["logentry"] == {"formatted": "same"}


def test_message_alone_moves_to_formatted() -> None:
    assert norm({"logentry": {"message": "alone"}}).event["logentry"] == {"formatted": "alone"}
    with_params = norm({"logentry": {"message": "no placeholders", "params": [1]}}).event
    assert with_params["logentry"] == {"formatted": "no placeholders"}


def test_logentry_given_as_a_string_is_the_formatted_message() -> None:
    assert norm({"logentry": "plain"}).event["logentry"] == {"formatted": "plain"}


def test_logentry_wins_over_the_legacy_message() -> None:
    event = norm({"logentry": {"formatted": "new"}, "message": "old"}).event
    assert event["logentry"] == {"formatted": "new"}


@pytest.mark.parametrize(
    ("template", "params", "formatted"),
    [
        ("%s has %d items", ["cart", 3], "cart has 3 items"),
        ("%(user)s paid %(amount).2f", {"user": "ann", "amount": 2.5}, "ann paid 2.50"),
        ("100%% of %s", ["disk"], "100% of disk"),
        ("{} and {}", ["a", "b"], "a and b"),
        ("{0}, {0}, {1}", ["x", "y"], "x, x, y"),
        ("hello {name}!", {"name": "bob"}, "hello bob!"),
        ("{{literal}} {}", [1], "{literal} 1"),
        ("pi is {:.2f}", [3.14159], "pi is 3.14"),
        ("{!r} quoted", ["a"], "'a' quoted"),
    ],
)
def test_formatted_is_built_from_message_and_params(
    template: str, params: Any, formatted: str
) -> None:
    result = norm({"logentry": {"message": template, "params": params}})
    assert result.event["logentry"] == {
        "formatted": formatted,
        "message": template,
        "params": params,
    }
    assert result.errors == []


def formatted_message(template: str, params: Any) -> str:
    result = norm({"logentry": {"message": template, "params": params}})
    return str(result.event["logentry"]["formatted"])


@pytest.mark.parametrize(
    ("template", "params", "formatted"),
    [
        ("%s and %s", ["only one"], "only one and %s"),
        ("%s", ["a", "extra"], "a"),
        ("amount %d", ["not a number"], "amount not a number"),
        ("%(missing)s here", {"other": 1}, "%(missing)s here"),
        ("{} and {}", ["one"], "one and {}"),
        ("{name}", ["positional"], "{name}"),
        ("{0:%Y}", [5], "5"),
        ("%999999999d", [1], "1"),
        ("{:999999999}", [1], "1"),
        ("%c", [1 << 40], str(1 << 40)),
        ("trailing %", ["x"], "trailing %"),
        pytest.param("{" + "9" * 5000 + "}", [1], "{" + "9" * 5000 + "}", id="huge-index"),
        pytest.param("%(" + "k" * 100 + ")s", {"k": 1}, "%(" + "k" * 100 + ")s", id="long-key"),
    ],
)
def test_formatting_with_mismatched_params_never_raises(
    template: str, params: Any, formatted: str
) -> None:
    assert formatted_message(template, params) == formatted


def test_formatting_output_is_bounded() -> None:
    template = "%(a)s" * 1600
    formatted = formatted_message(template, {"a": "x" * 1500})
    assert len(formatted) == 8192
    assert formatted.endswith("...")


def test_logentry_with_neither_message_nor_formatted_is_dropped() -> None:
    result = norm({"logentry": {"params": ["a"]}})
    assert "logentry" not in result.event
    assert error_types(result) == [("missing_attribute", "logentry")]


def test_logentry_numbers_become_text_and_bad_params_are_dropped() -> None:
    result = norm({"logentry": {"message": 404, "params": "oops"}})
    assert result.event["logentry"] == {"formatted": "404"}
    assert error_types(result) == [("invalid_data", "logentry.params")]


def test_logentry_params_are_a_medium_databag() -> None:
    result = norm({"logentry": {"message": "%s", "params": ["p" * 5000]}})
    (param,) = result.event["logentry"]["params"]
    assert len(param) < 2048
    assert param.endswith("...")


# --- exceptions ------------------------------------------------------------------------------


def test_exception_as_a_bare_list_or_single_object() -> None:
    assert norm({"exception": [{"type": "A"}]}).event["exception"] == {"values": [{"type": "A"}]}
    assert norm({"exception": {"type": "B"}}).event["exception"] == {"values": [{"type": "B"}]}


@pytest.mark.parametrize(
    ("value", "text"),
    [(42, "42"), (1.5, "1.5"), (True, "True"), ({"a": 1}, '{"a":1}'), ([1, "x"], '[1,"x"]')],
)
def test_exception_value_becomes_a_string(value: Any, text: str) -> None:
    result = norm({"exception": [{"type": "E", "value": value}]})
    assert result.event["exception"]["values"][0]["value"] == text


def test_exception_without_type_or_value_is_dropped_with_an_error() -> None:
    result = norm({"exception": [{"module": "m"}, {"type": "Kept"}]})
    assert result.event["exception"]["values"] == [{"type": "Kept"}]
    assert error_types(result) == [("missing_attribute", "exception.values.0.type")]


def test_exception_of_the_wrong_type_is_dropped_with_an_error() -> None:
    result = norm({"exception": "boom"})
    assert "exception" not in result.event
    assert error_types(result) == [("invalid_data", "exception")]


def test_mechanism_without_type_defaults_to_generic() -> None:
    event = norm({"exception": [{"type": "E", "mechanism": {"handled": False}}]}).event
    assert event["exception"]["values"][0]["mechanism"] == {"type": "generic", "handled": False}


def test_mechanism_of_the_wrong_type_is_dropped_with_an_error() -> None:
    result = norm({"exception": [{"type": "E", "mechanism": "generic"}]})
    assert "mechanism" not in result.event["exception"]["values"][0]
    assert error_types(result) == [("invalid_data", "exception.values.0.mechanism")]


def test_mechanism_fields_are_type_checked() -> None:
    result = norm(
        {
            "exception": [
                {"type": "E", "mechanism": {"type": "x", "handled": "no", "exception_id": 1.0}}
            ]
        }
    )
    assert result.event["exception"]["values"][0]["mechanism"] == {"type": "x", "exception_id": 1}
    assert error_types(result) == [("invalid_data", "exception.values.0.mechanism.handled")]


# --- stack traces ----------------------------------------------------------------------------


def test_only_the_last_250_frames_are_kept() -> None:
    event = norm(exception_with(frames(1000))).event
    kept = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert len(kept) == 250
    assert kept[0]["lineno"] == 751
    assert kept[-1]["lineno"] == 1000


def test_middle_frames_lose_their_data_when_more_than_50_remain() -> None:
    many = frames(100, vars={"x": "1"}, pre_context=["a"], post_context=["b"], context_line="c")
    kept = norm(exception_with(many)).event["exception"]["values"][0]["stacktrace"]["frames"]
    with_data = [index for index, frame in enumerate(kept) if "vars" in frame]
    assert with_data == [*range(25), *range(75, 100)]
    assert all(
        "pre_context" not in kept[index] and "post_context" not in kept[index]
        for index in range(25, 75)
    )
    assert all(frame["context_line"] == "c" for frame in kept)  # the line itself stays


def test_in_app_frames_keep_their_data_first() -> None:
    many = frames(60, vars={"x": "1"}, in_app=False)
    for index in range(25, 35):
        many[index]["in_app"] = True
    kept = norm(exception_with(many)).event["exception"]["values"][0]["stacktrace"]["frames"]
    assert all("vars" in kept[index] for index in range(25, 35))
    assert sum("vars" in frame for frame in kept) == 50


def test_fifty_frames_keep_all_their_data() -> None:
    kept = norm(exception_with(frames(50, vars={"x": "1"}))).event["exception"]["values"][0]
    assert all("vars" in frame for frame in kept["stacktrace"]["frames"])


@pytest.mark.parametrize("in_app", ["true", 1, "yes"])
def test_non_boolean_in_app_is_dropped_with_an_error(in_app: Any) -> None:
    result = norm(exception_with(frames(1, in_app=in_app)))
    assert "in_app" not in result.event["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert error_types(result) == [
        ("invalid_data", "exception.values.0.stacktrace.frames.0.in_app")
    ]


def test_frame_fields_are_type_checked() -> None:
    result = norm(
        exception_with([{"function": "f", "lineno": "12", "colno": 3.0, "instruction_addr": 4096}])
    )
    frame = result.event["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame == {"function": "f", "colno": 3, "instruction_addr": "0x1000"}
    assert error_types(result) == [
        ("invalid_data", "exception.values.0.stacktrace.frames.0.lineno")
    ]


def test_frame_addresses_platform_context_and_vars_are_type_checked() -> None:
    frame = {
        "function": "f",
        "instruction_addr": "0x1a",
        "symbol_addr": [1],
        "platform": "cobol",
        "pre_context": "line",
        "vars": "x",
        "post_context": ["a", None, 3],
    }
    result = norm(exception_with([frame]))
    kept = result.event["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert kept == {"function": "f", "instruction_addr": "0x1a", "post_context": ["a", "", "3"]}
    prefix = "exception.values.0.stacktrace.frames.0."
    assert error_types(result) == [
        ("invalid_data", prefix + field)
        for field in ("symbol_addr", "platform", "pre_context", "vars")
    ]


def test_registers_and_raw_stacktrace_are_kept() -> None:
    exception = {
        "type": "SIGSEGV",
        "thread_id": 5,
        "stacktrace": {"frames": frames(1), "registers": {"rip": "0x1"}},
        "raw_stacktrace": {"frames": frames(2)},
    }
    kept = norm({"exception": [exception]}).event["exception"]["values"][0]
    assert kept["stacktrace"]["registers"] == {"rip": "0x1"}
    assert len(kept["raw_stacktrace"]["frames"]) == 2
    assert kept["thread_id"] == 5


def test_exception_thread_id_is_a_number_or_text() -> None:
    assert (
        norm({"exception": [{"type": "E", "thread_id": "main"}]}).event["exception"]["values"][0][
            "thread_id"
        ]
        == "main"
    )
    result = norm({"exception": [{"type": "E", "thread_id": {"id": 1}}]})
    assert "thread_id" not in result.event["exception"]["values"][0]
    assert error_types(result) == [("invalid_data", "exception.values.0.thread_id")]


def test_exception_value_too_deep_to_serialize_is_replaced() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    value = norm({"exception": [{"type": "E", "value": deep}]}).event["exception"]["values"][0][
        "value"
    ]
    assert value == "[unrepresentable]"


def test_frames_without_a_location_are_dropped() -> None:
    result = norm(exception_with([{"lineno": 3}, "frame", {"function": "ok"}]))
    assert result.event["exception"]["values"][0]["stacktrace"]["frames"] == [{"function": "ok"}]
    assert error_types(result) == [
        ("missing_attribute", "exception.values.0.stacktrace.frames.0"),
        ("invalid_data", "exception.values.0.stacktrace.frames.1"),
    ]


def test_stacktrace_without_frames_is_dropped() -> None:
    result = norm(exception_with([]))
    assert result.event["exception"]["values"][0] == {"type": "E", "value": "boom"}
    assert error_types(result) == [("invalid_data", "exception.values.0.stacktrace.frames")]


def test_frame_vars_given_as_a_list_are_indexed() -> None:
    frame = norm(exception_with(frames(1, vars=["a", "b"]))).event["exception"]["values"][0]
    assert frame["stacktrace"]["frames"][0]["vars"] == {"0": "a", "1": "b"}


def test_frame_vars_are_a_medium_databag() -> None:
    big = {f"v{index}": "x" * 100 for index in range(100)}
    frame = norm(exception_with(frames(1, vars=big))).event["exception"]["values"][0]["stacktrace"][
        "frames"
    ][0]
    assert len(compact(frame["vars"])) <= 2048
    assert list(frame["vars"])[:3] == ["v0", "v1", "v2"]  # the first ones are kept


def test_threads_keep_ids_and_stacktraces() -> None:
    raw = {
        "threads": [
            {"id": 1, "name": "main", "crashed": True, "stacktrace": {"frames": frames(2)}},
            {"id": "worker-2", "current": "yes"},
            {"current": True, "stacktrace": {"frames": frames(1)}},  # Python sends no id
        ]
    }
    result = norm(raw)
    values = result.event["threads"]["values"]
    assert values[0]["id"] == 1
    assert len(values[0]["stacktrace"]["frames"]) == 2
    assert values[1] == {"id": "worker-2"}
    assert values[2]["current"] is True
    assert error_types(result) == [("invalid_data", "threads.values.1.current")]


def test_top_level_stacktrace_is_normalized() -> None:
    event = norm({"stacktrace": {"frames": frames(300)}}).event
    assert len(event["stacktrace"]["frames"]) == 250


# --- breadcrumbs -----------------------------------------------------------------------------


def test_breadcrumbs_keep_their_order_and_get_defaults() -> None:
    raw = {
        "timestamp": NOW - 10,
        "breadcrumbs": [
            {"message": "late", "timestamp": NOW - 20},
            {"message": "early", "timestamp": "2026-11-21T13:50:00Z"},
            {"message": "untimed"},
        ],
    }
    values = norm(raw).event["breadcrumbs"]["values"]
    assert [crumb["message"] for crumb in values] == ["late", "early", "untimed"]
    assert values[1]["timestamp"] == parse_timestamp("2026-11-21T13:50:00Z")
    assert values[2]["timestamp"] == NOW - 10
    assert all(crumb["type"] == "default" and crumb["level"] == "info" for crumb in values)


def test_breadcrumb_fields_are_normalized() -> None:
    raw = {
        "breadcrumbs": {
            "values": [{"ty": "http", "level": "warn", "data": {"url": "/x"}, "category": "c"}]
        }
    }
    (crumb,) = norm(raw).event["breadcrumbs"]["values"]
    assert crumb == {
        "type": "http",
        "level": "warning",
        "data": {"url": "/x"},
        "category": "c",
        "timestamp": NOW,
    }


def test_bad_breadcrumbs_are_dropped_or_repaired_with_errors() -> None:
    raw = {
        "timestamp": NOW,
        "breadcrumbs": ["crumb", {"message": "m", "timestamp": "soon", "level": "loud"}],
    }
    result = norm(raw)
    (crumb,) = result.event["breadcrumbs"]["values"]
    assert crumb == {"message": "m", "timestamp": NOW, "type": "default", "level": "info"}
    assert error_types(result) == [
        ("invalid_data", "breadcrumbs.values.0"),
        ("invalid_data", "breadcrumbs.values.1.timestamp"),
        ("invalid_data", "breadcrumbs.values.1.level"),
    ]


def test_breadcrumb_with_an_invalid_ty_gets_the_default_type() -> None:
    result = norm({"breadcrumbs": [{"ty": 5}]})
    assert result.event["breadcrumbs"]["values"][0]["type"] == "default"
    assert error_types(result) == [("invalid_data", "breadcrumbs.values.0.ty")]


def test_breadcrumb_data_is_a_medium_databag() -> None:
    raw = {"breadcrumbs": [{"data": {"blob": "b" * 10000}}]}
    (crumb,) = norm(raw).event["breadcrumbs"]["values"]
    assert len(crumb["data"]["blob"]) < 2048


# --- timestamps ------------------------------------------------------------------------------

BASE = 1795269420.0  # 2026-11-21T13:57:00Z


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-11-21T13:57:00.484639Z", BASE + 0.484639),
        ("2026-11-21T15:57:00.123456789+02:00", BASE + 0.123456789),  # Go: nanoseconds, offset
        ("2026-11-21T08:57:00-05:00", BASE),
        ("2026-11-21T13:57:00+0000", BASE),
        ("2026-11-21T13:57:00", BASE),  # no offset: UTC
        ("2026-11-21 13:57:00z", BASE),
        (BASE + 0.975, BASE + 0.975),
        (int(BASE), BASE),
        (f"{BASE + 0.5}", BASE + 0.5),
        ("1795269420", BASE),
        ("2026-11-21T13:56:60Z", BASE),  # a leap second (as RFC 3339 writes one): 13:57:00
        ("2026-11-21T13:56:60.5Z", BASE + 0.5),
    ],
)
def test_timestamps_in_every_accepted_form(given: Any, expected: float) -> None:
    assert parse_timestamp(given) == pytest.approx(expected, abs=1e-6)
    result = norm({"timestamp": given}, received_at=BASE + 1)
    assert result.event["timestamp"] == pytest.approx(expected, abs=1e-6)
    assert result.errors == []


@pytest.mark.parametrize(
    "given",
    [
        *("yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "", "1e400", "2026-11-21"),
        *(True, [], {}, -5, 1e300, 10**400, math.nan),
    ],
)
def test_unusable_timestamp_becomes_receipt_time_with_an_error(given: Any) -> None:
    result = norm({"timestamp": given})
    assert result.event["timestamp"] == NOW
    assert error_types(result) == [("invalid_data", "timestamp")]


def test_missing_timestamp_becomes_receipt_time() -> None:
    result = norm({})
    assert result.event["timestamp"] == NOW
    assert result.errors == []


def test_clock_drift_shifts_every_timestamp() -> None:
    hour_behind = -3600.0  # the device clock is an hour behind the server's
    sent_at = "2026-11-21T12:57:36Z"  # NOW - 1 h
    raw = {
        "timestamp": NOW - 3600 - 5,
        "start_timestamp": NOW - 3600 - 6,
        "breadcrumbs": [{"timestamp": NOW - 3600 - 30}, {"message": "untimed"}],
    }
    result = norm(raw, sent_at=sent_at)
    event = result.event
    assert event["timestamp"] == pytest.approx(NOW - 5)
    assert event["start_timestamp"] == pytest.approx(NOW - 6)
    crumbs = event["breadcrumbs"]["values"]
    assert crumbs[0]["timestamp"] == pytest.approx(NOW - 30)
    assert crumbs[1]["timestamp"] == event["timestamp"]
    assert result.errors == [{"type": "clock_drift", "name": "timestamp", "value": -hour_behind}]


def test_clock_drift_also_shifts_spans() -> None:
    raw = {
        "type": "transaction",
        "timestamp": NOW + 7200,
        "spans": [{"op": "db", "start_timestamp": NOW + 7199, "timestamp": NOW + 7200}],
    }
    result = norm(raw, sent_at="2026-11-21T15:57:36Z")
    (span,) = result.event["spans"]
    assert span == {"op": "db", "start_timestamp": NOW - 1, "timestamp": NOW}
    assert result.event["timestamp"] == NOW


def test_drift_under_55_minutes_is_left_alone() -> None:
    sent_at = "2026-11-21T13:03:36Z"  # NOW - 54 min
    result = norm({"timestamp": NOW - 54 * 60}, sent_at=sent_at)
    assert result.event["timestamp"] == NOW - 54 * 60
    assert result.errors == []


def test_unusable_sent_at_disables_drift_correction() -> None:
    result = norm({"timestamp": NOW - 100}, sent_at="last tuesday")
    assert result.event["timestamp"] == NOW - 100
    assert result.errors == []


def test_timestamp_over_60_seconds_ahead_becomes_receipt_time() -> None:
    assert norm({"timestamp": NOW + 59}).event["timestamp"] == NOW + 59
    result = norm({"timestamp": NOW + 61, "start_timestamp": NOW + 51})
    assert result.event["timestamp"] == NOW
    assert result.event["start_timestamp"] == NOW - 10  # the duration survives
    assert error_types(result) == [("future_timestamp", "timestamp")]


def test_timestamp_over_30_days_old_becomes_receipt_time() -> None:
    month = 30 * 24 * 3600
    assert norm({"timestamp": NOW - month + 1}).event["timestamp"] == NOW - month + 1
    result = norm({"timestamp": NOW - month - 1})
    assert result.event["timestamp"] == NOW
    assert result.errors == [
        {"type": "past_timestamp", "name": "timestamp", "value": NOW - month - 1}
    ]


def test_drift_correction_comes_before_the_range_check() -> None:
    two_days = 2 * 24 * 3600.0
    result = norm({"timestamp": NOW + two_days}, sent_at="2026-11-23T13:57:36Z")
    assert result.event["timestamp"] == NOW
    assert error_types(result) == [("clock_drift", "timestamp")]


# --- request and user ------------------------------------------------------------------------


def test_query_string_and_fragment_move_out_of_the_url() -> None:
    request = norm({"request": {"url": "https://shop/a/b?x=1&y=&x=2#top", "method": "post"}}).event[
        "request"
    ]
    assert request == {
        "url": "https://shop/a/b",
        "method": "POST",
        "query_string": [["x", "1"], ["y", ""], ["x", "2"]],
        "fragment": "top",
    }


def test_an_explicit_query_string_wins_over_the_url() -> None:
    request = norm({"request": {"url": "/p?from=url", "query_string": "from=field"}}).event[
        "request"
    ]
    assert request["url"] == "/p"
    assert request["query_string"] == [["from", "field"]]


@pytest.mark.parametrize(
    "query",
    [
        "a=1&b=two",
        "?a=1&b=two",
        {"a": 1, "b": "two"},
        [["a", "1"], ["b", "two"]],
        {"a": ["1"], "b": "two"},
    ],
)
def test_query_string_in_any_form_becomes_pairs(query: Any) -> None:
    assert norm({"request": {"query_string": query}}).event["request"]["query_string"] == [
        ["a", "1"],
        ["b", "two"],
    ]


def test_headers_become_pairs_and_repeats_survive() -> None:
    given = [
        ["Accept", "text/html"],
        ["X-Forwarded-For", "1.1.1.1"],
        ["X-Forwarded-For", "2.2.2.2"],
        ["X-Num", 5],
    ]
    headers = norm({"request": {"headers": given}}).event["request"]["headers"]
    assert headers == [
        ["Accept", "text/html"],
        ["X-Forwarded-For", "1.1.1.1"],
        ["X-Forwarded-For", "2.2.2.2"],
        ["X-Num", "5"],
    ]
    assert norm({"request": {"headers": {"Host": "h"}}}).event["request"]["headers"] == [
        ["Host", "h"]
    ]


def test_cookies_text_becomes_pairs() -> None:
    request = norm({"request": {"cookies": "session=abc; theme=dark ;junk"}}).event["request"]
    assert request["cookies"] == [["session", "abc"], ["theme", "dark"]]


def test_malformed_request_parts_are_dropped_with_errors() -> None:
    result = norm(
        {"request": {"headers": "Host: x", "method": "G E T", "url": 5, "cookies": [["a"]]}}
    )
    assert "request" not in result.event
    assert sorted(name for _, name in error_types(result)) == [
        "request.cookies.0",
        "request.headers",
        "request.method",
        "request.url",
    ]


def test_request_method_must_be_text() -> None:
    result = norm({"request": {"method": 5, "url": "/"}})
    assert result.event["request"] == {"url": "/"}
    assert error_types(result) == [("invalid_data", "request.method")]


def test_unusable_header_names_and_values_are_dropped_with_errors() -> None:
    given = [[{"a": 1}, "v"], ["Bad", {"x": 1}], ["Multi", ["a", "b"]], ["Null", None]]
    result = norm({"request": {"headers": given}})
    assert result.event["request"]["headers"] == [["Multi", "a"], ["Multi", "b"]]
    assert error_types(result) == [
        ("invalid_data", "request.headers.0"),
        ("invalid_data", "request.headers.1"),
    ]


def test_header_object_errors_name_the_header() -> None:
    result = norm({"request": {"headers": {"Good": "1", "Bad": {"x": 1}}}})
    assert result.event["request"]["headers"] == [["Good", "1"]]
    assert error_types(result) == [("invalid_data", "request.headers.Bad")]


def test_request_data_is_bounded() -> None:
    request = norm({"request": {"data": "d" * 20000, "env": {"SERVER_NAME": "x"}}}).event["request"]
    assert len(request["data"]) <= 8192
    assert request["env"] == {"SERVER_NAME": "x"}


def test_user_id_becomes_text_and_unknown_keys_go_to_data() -> None:
    result = norm({"user": {"id": 42, "email": "e" * 100, "plan": "pro", "data": {"seats": 3}}})
    user = result.event["user"]
    assert user == {"id": "42", "email": "e" * 72 + "...", "data": {"seats": 3, "plan": "pro"}}


def test_auto_ip_means_the_connection_address() -> None:
    event = norm({"user": {"id": "1", "ip_address": "{{auto}}"}}, client_ip="203.0.113.9").event
    assert event["user"] == {"id": "1", "ip_address": "203.0.113.9"}


def test_auto_ip_without_a_connection_address_is_left_out() -> None:
    assert norm({"user": {"id": "1", "ip_address": "{{auto}}"}}).event["user"] == {"id": "1"}


def test_infer_ip_auto_uses_the_connection_address() -> None:
    raw = {
        "sdk": {
            "name": "sentry.javascript.browser",
            "version": "1",
            "settings": {"infer_ip": "auto"},
        }
    }
    assert norm(raw, client_ip="198.51.100.1").event["user"] == {"ip_address": "198.51.100.1"}


def test_infer_ip_never_turns_inference_off() -> None:
    raw = {
        "user": {"ip_address": "{{auto}}"},
        "request": {"env": {"REMOTE_ADDR": "10.0.0.1"}},
        "sdk": {"name": "s", "settings": {"infer_ip": "never"}},
    }
    assert "user" not in norm(raw, client_ip="198.51.100.1").event


def test_remote_addr_is_used_when_the_user_has_no_ip() -> None:
    raw = {"user": {"id": "1"}, "request": {"env": {"REMOTE_ADDR": "10.0.0.1"}}}
    assert norm(raw, client_ip="198.51.100.1").event["user"] == {
        "id": "1",
        "ip_address": "10.0.0.1",
    }


def test_an_explicit_user_ip_wins() -> None:
    raw = {"user": {"ip_address": "2001:db8::1"}, "request": {"env": {"REMOTE_ADDR": "10.0.0.1"}}}
    assert norm(raw, client_ip="198.51.100.1").event["user"] == {"ip_address": "2001:db8::1"}


def test_no_ip_is_invented_without_a_reason() -> None:
    assert "user" not in norm({}, client_ip="198.51.100.1").event
    assert norm({"user": {"id": "1"}}, client_ip="198.51.100.1").event["user"] == {"id": "1"}


def test_invalid_user_ip_is_dropped_with_an_error() -> None:
    result = norm({"user": {"id": "1", "ip_address": "999.1.1.1"}})
    assert result.event["user"] == {"id": "1"}
    assert error_types(result) == [("invalid_data", "user.ip_address")]


# --- contexts, sdk, modules, fingerprint, databags -------------------------------------------


def test_context_type_defaults_to_its_key() -> None:
    contexts = norm(
        {"contexts": {"os": {"name": "Linux"}, "gpu0": {"type": "gpu", "name": "x"}}}
    ).event["contexts"]
    assert contexts == {"os": {"name": "Linux", "type": "os"}, "gpu0": {"type": "gpu", "name": "x"}}


def test_non_object_context_is_dropped_with_an_error() -> None:
    result = norm({"contexts": {"os": "Linux", "runtime": {"name": "CPython"}}})
    assert list(result.event["contexts"]) == ["runtime"]
    assert error_types(result) == [("invalid_data", "contexts.os")]


def test_contexts_are_bounded() -> None:
    context = norm({"contexts": {"big": {"blob": "b" * 50000}}}).event["contexts"]["big"]
    assert len(compact(context)) <= 8192 + 100
    assert context["type"] == "big"


def test_sdk_needs_a_name() -> None:
    result = norm({"sdk": {"version": "1.0"}})
    assert "sdk" not in result.event
    assert error_types(result) == [("missing_attribute", "sdk.name")]


def test_sdk_fields_are_normalized() -> None:
    raw = {
        "sdk": {
            "name": "n",
            "version": "1",
            "integrations": ["a", 5],
            "packages": [{"name": "p", "version": "2"}, "x"],
            "settings": {"infer_ip": "sometimes"},
        }
    }
    result = norm(raw)
    assert result.event["sdk"] == {
        "name": "n",
        "version": "1",
        "integrations": ["a", "5"],
        "packages": [{"name": "p", "version": "2"}],
    }
    assert error_types(result) == [
        ("invalid_data", "sdk.packages.1"),
        ("invalid_data", "sdk.settings.infer_ip"),
    ]


def test_sdk_packages_must_be_a_list() -> None:
    result = norm({"sdk": {"name": "n", "packages": {"name": "p"}}})
    assert result.event["sdk"] == {"name": "n"}
    assert error_types(result) == [("invalid_data", "sdk.packages")]


def test_transaction_parts_are_kept_and_bounded() -> None:
    raw = {
        "type": "transaction",
        "spans": [
            {"op": "db", "start_timestamp": "2026-11-21T13:57:00Z", "timestamp": "later"},
            "span",
        ],
        "measurements": {"lcp": {"value": 1.5, "unit": "second"}},
        "debug_meta": {"images": []},
        "transaction_info": {"source": "made-up"},
    }
    result = norm(raw)
    assert result.event["spans"] == [{"op": "db", "start_timestamp": BASE}]
    assert result.event["measurements"] == {"lcp": {"value": 1.5, "unit": "second"}}
    assert result.event["debug_meta"] == {"images": []}
    assert "transaction_info" not in result.event
    assert error_types(result) == [
        ("invalid_data", "transaction_info.source"),
        ("invalid_data", "spans.0.timestamp"),
        ("invalid_data", "spans.1"),
    ]


def test_modules_are_text_and_bounded() -> None:
    result = norm({"modules": {"a": "1.0", "b": 2, "c": {"v": 1}}})
    assert result.event["modules"] == {"a": "1.0", "b": "2"}
    assert error_types(result) == [("invalid_data", "modules.c")]
    many = {f"package-{index}": "1.0.0" for index in range(2000)}
    assert len(compact(norm({"modules": many}).event["modules"])) <= 8192


def test_fingerprint_converts_numbers_and_drops_the_rest() -> None:
    result = norm({"fingerprint": ["{{ default }}", 42, 1.5, True, {"a": 1}, None]})
    assert result.event["fingerprint"] == ["{{ default }}", "42", "1.5"]
    assert error_types(result) == [
        ("invalid_data", "fingerprint.3"),
        ("invalid_data", "fingerprint.4"),
    ]


def test_fingerprint_that_is_not_a_list_is_dropped() -> None:
    result = norm({"fingerprint": "custom"})
    assert "fingerprint" not in result.event
    assert error_types(result) == [("invalid_data", "fingerprint")]


def test_deep_nesting_in_extra_becomes_text_at_depth_seven() -> None:
    deep: Any = "bottom"
    for _ in range(20):
        deep = {"d": deep}
    extra = norm({"extra": {"deep": deep}}).event["extra"]
    node = extra["deep"]
    for _ in range(5):
        node = node["d"]
    assert isinstance(node["d"], str)
    assert node["d"].startswith('{"d":')


def test_extreme_nesting_never_raises() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    result = norm(
        {"extra": {"deep": deep}, "tags": deep, "exception": deep, "contexts": {"c": {"x": deep}}}
    )
    assert "extra" in result.event


def test_extra_is_a_massive_databag() -> None:
    extra = norm({"extra": {f"k{index}": "v" * 1000 for index in range(400)}}).event["extra"]
    assert 200 * 1024 < len(compact(extra)) <= 256 * 1024


def test_extra_of_the_wrong_type_is_dropped_with_an_error() -> None:
    result = norm({"extra": ["not", "an", "object"]})
    assert "extra" not in result.event
    assert error_types(result) == [("invalid_data", "extra")]


def test_non_finite_numbers_in_databags_are_dropped() -> None:
    extra = norm(
        {"extra": {"nan": math.nan, "inf": math.inf, "ok": 1.5, "list": [math.nan, 1]}}
    ).event["extra"]
    assert extra == {"ok": 1.5, "list": [1]}


# --- whole-event size and storable text ------------------------------------------------------


def test_oversized_event_sheds_frame_vars_first() -> None:
    big_vars = {f"v{index}": "x" * 150 for index in range(12)}
    raw = {
        "exception": [
            {"type": f"E{n}", "stacktrace": {"frames": frames(50, vars=big_vars)}}
            for n in range(30)
        ]
    }
    result = norm(raw)
    assert not any("vars" in frame for frame in all_frames(result.event))
    assert len(result.event["exception"]["values"]) == 30
    assert error_types(result) == [("too_large", "frames.vars")]


def test_oversized_event_sheds_the_oldest_breadcrumbs_next() -> None:
    raw = {"breadcrumbs": [{"message": f"{index:05d} " + "m" * 4000} for index in range(400)]}
    result = norm(raw)
    kept = result.event["breadcrumbs"]["values"]
    assert 150 < len(kept) < 400
    assert kept[-1]["message"].startswith("00399")
    assert [int(crumb["message"][:5]) for crumb in kept] == list(range(400 - len(kept), 400))
    assert error_types(result) == [("too_large", "breadcrumbs")]


def test_oversized_event_sheds_extra_after_breadcrumbs() -> None:
    raw = {
        "extra": {f"k{index}": "v" * 1000 for index in range(250)},
        "contexts": {f"c{index}": {"blob": "b" * 8000} for index in range(100)},
    }
    result = norm(raw)
    assert "extra" not in result.event
    assert "contexts" in result.event
    assert error_types(result) == [("too_large", "extra")]


def test_oversized_event_never_fails() -> None:
    raw = {
        "contexts": {f"c{index}": {"blob": "b" * 8000} for index in range(300)},
        "logentry": {"formatted": "kept"},
    }
    result = norm(raw)
    assert "contexts" not in result.event
    assert result.event["logentry"] == {"formatted": "kept"}
    assert ("too_large", "contexts") in error_types(result)


def test_huge_strings_everywhere_stay_within_one_mebibyte() -> None:
    huge = "h" * 2_000_000
    raw = {
        "message": huge,
        "transaction": huge,
        "tags": {"t": huge},
        "extra": {"e": huge},
        "exception": [
            {
                "type": huge,
                "value": huge,
                "stacktrace": {"frames": frames(300, context_line=huge, vars={"v": huge})},
            }
        ],
        "breadcrumbs": [{"message": huge}] * 300,
        "request": {"url": huge, "data": huge, "headers": {"h": huge}},
        "user": {"id": huge, "data": {"x": huge}},
    }
    result = norm(raw)
    assert len(result.event["logentry"]["formatted"]) == 8192


def test_oversized_event_drops_every_breadcrumb_if_it_must() -> None:
    raw = {
        "breadcrumbs": [{"message": "m"}] * 5,
        "contexts": {f"c{index}": {"blob": "b" * 8000} for index in range(150)},
    }
    result = norm(raw)
    assert "breadcrumbs" not in result.event
    assert "contexts" not in result.event
    assert error_types(result) == [("too_large", "breadcrumbs"), ("too_large", "contexts")]


def test_lone_surrogates_and_nul_become_replacement_characters() -> None:
    event = norm(
        {"logentry": {"formatted": "a\ud800b\x00c \U0001f600"}, "tags": {"k": "x\udfff"}}
    ).event
    assert event["logentry"]["formatted"] == "a\ufffdb\ufffdc \U0001f600"
    assert event["tags"] == [["k", "x\ufffd"]]
    json.dumps(event, ensure_ascii=False).encode("utf-8")


def test_error_values_stay_storable_when_the_event_is_also_shed() -> None:
    raw = {"level": "\ud800", "contexts": {f"c{index}": {"b": "b" * 8000} for index in range(150)}}
    result = norm(raw)
    assert result.errors[0] == {"type": "invalid_data", "name": "level", "value": "\ufffd"}
    assert result.event["errors"] == result.errors


# --- robustness ------------------------------------------------------------------------------


def test_wrong_types_everywhere_never_raise() -> None:
    for junk in (1, "s", [1], {"a": 1}, True, 1.5, [None], {"values": "x"}):
        raw = dict.fromkeys(
            [
                *(
                    "event_id",
                    "timestamp",
                    "level",
                    "platform",
                    "logger",
                    "release",
                    "dist",
                    "tags",
                ),
                *("environment", "logentry", "message", "exception", "threads", "breadcrumbs"),
                *("request", "user", "contexts", "sdk", "modules", "extra", "fingerprint", "spans"),
                *("stacktrace", "transaction_info", "start_timestamp", "server_name", "culprit"),
            ],
            junk,
        )
        norm(raw)


def test_the_error_list_is_bounded() -> None:
    result = norm({"tags": [[f"bad/{index}", "v"] for index in range(500)]})
    assert len(result.errors) == 101
    assert result.errors[-1] == {"type": "too_many_errors", "name": "errors", "value": 400}


def test_event_wide_errors_survive_a_full_error_list() -> None:
    raw = {"tags": [[f"bad/{index}", "v"] for index in range(500)], "timestamp": NOW + 3600}
    types = [error["type"] for error in norm(raw).errors]
    assert types.count("invalid_data") == 100
    assert types[-2:] == ["future_timestamp", "too_many_errors"]


def test_error_values_are_summarized() -> None:
    result = norm(
        {"level": "x" * 1000, "platform": "go", "tags": {"a": {"deep": [1]}}, "extra": [1]}
    )
    assert [error.get("value") for error in result.errors] == [
        "x" * 197 + "...",
        "(array)",
        "(object)",
    ]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(10 if depth < 4 else 7)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 42, 2**70, rng.randrange(-(10**12), 10**12)])
    if choice == 3:
        return rng.choice([0.5, -1e300, 1e-9, 1795269420.5, rng.random()])
    if choice in (4, 5, 6):
        return rng.choice(JUNK_STRINGS)
    if choice in (7, 8):
        return {rng.choice(JUNK_KEYS): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(5))]


JUNK_STRINGS = [
    "", " ", "x", "\n", "{{auto}}", "2026-11-21T13:57:00Z", "1795269420", "%s %d {} {0} {x}", "%",
    "transaction", "error", "python", "a" * 300, "\ud800", "\x00", "ü", "../..", "latest", "none",
    "10.0.0.1", "e0445df3-2734-453e-bfe4-81b35de7e401",
]  # fmt: skip
JUNK_KEYS = [
    "values", "frames", "type", "value", "message", "formatted", "params", "timestamp", "level",
    "data", "id", "ip_address", "vars", "in_app", "mechanism", "stacktrace", "url", "headers",
    "query_string", "cookies", "env", "REMOTE_ADDR", "name", "version", "settings", "infer_ip",
    "exception", "breadcrumbs", "tags", "user", "x", "",
]  # fmt: skip
TOP_LEVEL_KEYS = [
    "event_id", "timestamp", "start_timestamp", "level", "platform", "logger", "transaction",
    "server_name", "release", "dist", "environment", "modules", "extra", "fingerprint", "tags",
    "message", "logentry", "exception", "threads", "breadcrumbs", "request", "user", "contexts",
    "sdk", "type", "spans", "stacktrace", "culprit", "transaction_info", "unknown",
]  # fmt: skip


def test_random_junk_never_raises_and_is_always_canonical() -> None:
    rng = random.Random(20261121)
    for _ in range(300):
        norm(random_json(rng))
        raw = {key: random_json(rng, 1) for key in rng.sample(TOP_LEVEL_KEYS, rng.randrange(1, 12))}
        norm(raw, sent_at=rng.choice([None, "2026-11-21T10:00:00Z", "junk"]), client_ip="192.0.2.1")


TEMPLATE_PIECES = [
    "%", "s", "d", "f", "r", "c", "(", ")", "{", "}", "0", "1", "9" * 5000, ":", "!", ".", "*",
    "x", "%%", "{{", "}}", "-", "#", " ", "999999", ".2", "<", "^",
]  # fmt: skip


def test_random_templates_never_break_formatting() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        template = "".join(rng.choice(TEMPLATE_PIECES) for _ in range(rng.randrange(1, 12)))
        params = rng.choice(
            [[random_json(rng, 3) for _ in range(3)], {"x": random_json(rng, 3), "0": 1}]
        )
        result = norm({"logentry": {"message": template, "params": params}})
        assert isinstance(result.event["logentry"]["formatted"], str)


def replace_random_node(rng: random.Random, value: Any, junk: Any) -> Any:
    """A copy of ``value`` with one random node (possibly deep) replaced by ``junk``."""
    if not isinstance(value, (dict, list)) or not value or rng.random() < 0.25:
        return junk
    copied = dict(value) if isinstance(value, dict) else list(value)
    key = rng.choice(list(copied)) if isinstance(copied, dict) else rng.randrange(len(copied))
    copied[key] = replace_random_node(rng, copied[key], junk)  # type: ignore[index]
    return copied


def test_fixture_events_with_random_corruption_stay_canonical() -> None:
    rng = random.Random(42)
    payloads = [payload for _, _, payload in FIXTURE_EVENTS]
    for _ in range(400):
        raw = rng.choice(payloads)
        for _ in range(rng.randrange(1, 4)):
            raw = replace_random_node(rng, raw, random_json(rng, 2))
        norm(raw, received_at=NOW, sent_at="2026-11-21T13:57:35Z", client_ip="192.0.2.1")
