"""Interop with sentry-sdk: every recorded envelope parses, and for the situations the fixtures
record our SDK sends, over real HTTP, envelopes with the same fields as sentry-sdk 2.75's.

The fixture scripts were run as ``__main__``; the functions below that raise are written like
theirs (same names, same lines), so the innermost frames can be compared value for value.
"""

from __future__ import annotations

import builtins
import gzip
import json
import logging
import re
import sys
from pathlib import Path

import pytest

import bugnet
from bugnet._envelope import Envelope, EnvelopeError, Item, parse_envelope

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "envelopes"
ExceptionGroup = getattr(builtins, "ExceptionGroup", None)  # importable on Python < 3.11

# Each recorded envelope and the item types it holds.
PYTHON_FIXTURES = {
    "capture-message": ["event"],
    "chained-exception": ["event"],
    "client-report-before-send": ["client_report"],
    "exception-group": ["event"],
    "flask-client-report": ["client_report"],
    "flask-exception": ["event"],
    "flask-sessions": ["sessions"],
    "flask-transaction": ["transaction"],
    "logging-error": ["event"],
}
NODE_FIXTURES = {
    "capture-exception": ["event"],
    "capture-message": ["event"],
    "session": ["session"],
}
ALL_FIXTURES = [f"python/{name}" for name in PYTHON_FIXTURES] + [
    f"javascript-node/{name}" for name in NODE_FIXTURES
]

# Deliberate differences from sentry-sdk 2.75, and why. Everything else must match.
ONLY_IN_SENTRY_EVENTS = {
    "transaction_info": "sentry-sdk sends an empty transaction_info outside any transaction; "
    "Bugnet does no tracing and leaves the empty object out",
}
ONLY_IN_BUGNET_CONTEXTS = {
    "os": "Bugnet sends the os context (name, version, kernel) so the server can show and "
    "group by OS without a User-Agent; sentry-sdk on Python sends none",
}
# Values that differ by design (only their shape is compared): sdk.name (bugnet.python; theirs
# was sentry.python.flask because Flask was installed), sdk.version, sdk.packages (pypi:bugnet),
# sdk.integrations (the same names, without flask, not set up here), modules and sys.argv (this
# machine and pytest's command line), server_name, ids and timestamps, the frames outside the
# innermost one (our caller is a test function, theirs a module body), and User-Agent /
# sentry_client (bugnet.python/<version> instead of sentry.python/2.75.0).

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
RFC3339_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
CLIENT = re.compile(r"^[a-z]+\.python/\d+\.\d+\.\d+")


def load_config(cfg):
    try:
        return cfg["database"]["url"]
    except KeyError as e:
        raise RuntimeError("invalid configuration") from e


def many():
    raise ExceptionGroup("several failures", [ValueError("bad value 1"), TypeError("bad type")])


# -- reading the recordings -------------------------------------------------------------------


def read(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / f"{name}.envelope").read_bytes()


def raw_item_headers(body: bytes) -> list[dict]:
    """Item headers exactly as written (``parse_envelope`` takes out ``type`` and ``length``);
    for envelopes whose items all declare a length, as Python's do."""
    headers = []
    pos = body.index(b"\n") + 1
    while pos < len(body):
        end = body.index(b"\n", pos)
        header = json.loads(body[pos:end])
        headers.append(header)
        pos = end + 1 + header["length"] + 1
    return headers


def event_of(envelope: Envelope) -> dict:
    (item,) = [item for item in envelope.items if item.type == "event"]
    return item.json()


class Recorded:
    """One sentry-sdk request: its body, parsed envelope, event and HTTP request line/headers."""

    def __init__(self, fixtures_dir: Path, name: str) -> None:
        self.body = read(fixtures_dir, f"python/{name}")
        self.envelope = parse_envelope(self.body)
        self.event = event_of(self.envelope)
        request = json.loads((fixtures_dir / f"python/{name}.request.json").read_text())
        self.path = request["path"]
        self.headers = request["headers"]


class Sent:
    """The one event request our SDK sent to the collector."""

    def __init__(self, collector) -> None:
        assert bugnet.flush(5)
        assert collector.wait_for(lambda c: any("event" in r.item_types for r in c.received), 5)
        (received,) = [r for r in collector.received if "event" in r.item_types]
        self.body = received.body
        self.envelope = received.envelope
        self.event = event_of(received.envelope)
        self.path = received.path
        self.headers = received.headers


# -- every recording parses -------------------------------------------------------------------


def test_the_fixture_set_is_the_one_these_tests_know(fixtures_dir):
    found = {
        f"{path.parent.name}/{path.name.removesuffix('.envelope')}"
        for path in fixtures_dir.glob("*/*.envelope")
    }
    assert found == set(ALL_FIXTURES)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_recorded_envelope_parses(fixtures_dir, name):
    body = read(fixtures_dir, name)
    envelope = parse_envelope(body)
    kind, _, short = name.partition("/")
    table = PYTHON_FIXTURES if kind == "python" else NODE_FIXTURES
    assert [item.type for item in envelope.items] == table[short]
    for item in envelope.items:
        payload = item.json()
        assert isinstance(payload, dict)
        if item.type in ("event", "transaction"):
            assert payload["event_id"] == envelope.headers["event_id"]
            assert HEX32.match(payload["event_id"])


@pytest.mark.parametrize("name", list(PYTHON_FIXTURES))
def test_python_items_declare_their_length_and_the_envelope_ends_in_a_newline(fixtures_dir, name):
    body = read(fixtures_dir, f"python/{name}")
    envelope = parse_envelope(body)
    headers = raw_item_headers(body)
    assert [h["length"] for h in headers] == [len(item.payload) for item in envelope.items]
    assert all(h["content_type"] == "application/json" for h in headers)
    assert body.endswith(b"\n")


@pytest.mark.parametrize("name", list(NODE_FIXTURES))
def test_node_items_run_to_the_newline_and_the_last_one_to_the_end(fixtures_dir, name):
    body = read(fixtures_dir, f"javascript-node/{name}")
    envelope = parse_envelope(body)
    assert not body.endswith(b"\n")
    assert envelope.headers["sdk"] == {"name": "sentry.javascript.node", "version": "11.12.0"}
    for item in envelope.items:
        assert "length" not in item.headers
        assert b"\n" not in item.payload
    assert body.endswith(envelope.items[-1].payload)


@pytest.mark.parametrize("name", list(PYTHON_FIXTURES))
def test_gzip_body_is_the_envelope_byte_for_byte(fixtures_dir, name):
    compressed = (fixtures_dir / f"python/{name}.envelope.gz").read_bytes()
    body = gzip.decompress(compressed)
    assert body == read(fixtures_dir, f"python/{name}")
    envelope = parse_envelope(body)
    assert [item.type for item in envelope.items] == PYTHON_FIXTURES[name]
    request = json.loads((fixtures_dir / f"python/{name}.request.json").read_text())
    assert request["headers"]["Content-Encoding"] == "gzip"


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_recorded_envelope_survives_our_serializer(fixtures_dir, name):
    original = parse_envelope(read(fixtures_dir, name))
    again = parse_envelope(original.serialize())
    assert again.headers == original.headers
    assert [(i.type, i.headers, i.payload) for i in again.items] == [
        (i.type, i.headers, i.payload) for i in original.items
    ]


# -- the envelope grammar, beyond what the recordings show ------------------------------------


def test_explicit_length_payload_may_hold_newlines_and_the_final_newline_is_optional():
    body = b'{}\n{"type":"attachment","length":7}\nab\ncd\r\n\n{"type":"event","length":2}\n{}'
    envelope = parse_envelope(body)
    assert [(i.type, i.payload) for i in envelope.items] == [
        ("attachment", b"ab\ncd\r\n"),
        ("event", b"{}"),
    ]


def test_implicit_length_payload_keeps_a_carriage_return():
    envelope = parse_envelope(b'{}\n{"type":"session"}\n{"sid":"x"}\r\n')
    assert envelope.items[0].payload == b'{"sid":"x"}\r'


def test_unknown_item_types_are_kept_with_their_payload():
    body = b'{}\n{"type":"future_thing","length":3}\nabc\n{"type":"event","length":2}\n{}\n'
    envelope = parse_envelope(body)
    assert [(i.type, i.payload) for i in envelope.items] == [
        ("future_thing", b"abc"),
        ("event", b"{}"),
    ]


def test_an_envelope_without_items_is_valid():
    assert parse_envelope(b'{"event_id":"' + b"a" * 32 + b'"}\n').items == []
    assert parse_envelope(b"{}").items == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{}\n{"type":"event","length":10}\n{}\n', "declares 10 bytes"),
        (b'{}\n{"type":"event","length":2}\n{}x\n', "not followed by a newline"),
        (b'{}\n{"length":2}\n{}\n', "no string 'type'"),
        (b'{}\n{"type":"event","length":-1}\n{}\n', "whole number"),
        (b"[]\n", "must be a JSON object"),
        (b"not json\n", "not valid JSON"),
    ],
)
def test_malformed_envelopes_are_rejected_with_the_reason(body, message):
    with pytest.raises(EnvelopeError, match=re.escape(message)):
        parse_envelope(body)


def test_parsed_item_reserializes_with_type_and_length():
    item = Item("event", b'{"a":1}', {"content_type": "application/json"})
    assert item.serialize() == (
        b'{"type":"event","content_type":"application/json","length":7}\n{"a":1}\n'
    )


# -- our envelopes against sentry-sdk's, field by field ---------------------------------------


def assert_same_request_shape(ours: Sent, theirs: Recorded) -> None:
    assert ours.path == theirs.path == "/api/42/envelope/"
    assert {n.lower() for n in ours.headers} == {n.lower() for n in theirs.headers}
    for name in ("Content-Type", "Content-Encoding", "Accept-Encoding"):
        assert header(ours.headers, name) == header(theirs.headers, name), name
    our_auth, their_auth = (auth_fields(header(h, "X-Sentry-Auth")) for h in (ours.headers, theirs.headers))  # fmt: skip
    assert list(our_auth) == list(their_auth)  # same keys, same order
    assert our_auth["sentry_key"] == their_auth["sentry_key"]
    assert our_auth["sentry_version"] == their_auth["sentry_version"] == "7"
    for headers, auth in ((ours.headers, our_auth), (theirs.headers, their_auth)):
        assert CLIENT.match(auth["sentry_client"])
        assert header(headers, "User-Agent") == auth["sentry_client"]
    assert our_auth["sentry_client"] == f"bugnet.python/{bugnet.__version__}"


def header(headers: dict, name: str) -> str:
    (value,) = [v for k, v in headers.items() if k.lower() == name.lower()]
    return value


def auth_fields(value: str) -> dict[str, str]:
    scheme, _, rest = value.partition(" ")
    assert scheme == "Sentry"
    return dict(part.strip().split("=", 1) for part in rest.split(","))


def assert_same_envelope_shape(ours: Sent, theirs: Recorded) -> None:
    for side in (ours, theirs):
        headers = side.envelope.headers
        assert headers["event_id"] == side.event["event_id"]
        assert RFC3339_MICROS.match(headers["sent_at"])
        assert headers["trace"]["trace_id"] == side.event["contexts"]["trace"]["trace_id"]
        assert side.body.endswith(b"\n")
    assert set(ours.envelope.headers) == set(theirs.envelope.headers)
    our_trace, their_trace = ours.envelope.headers["trace"], theirs.envelope.headers["trace"]
    assert set(our_trace) == set(their_trace)
    for key in ("public_key", "release", "environment"):
        assert our_trace[key] == their_trace[key], key
    our_items, their_items = raw_item_headers(ours.body), raw_item_headers(theirs.body)
    assert [sorted(h) for h in our_items] == [sorted(h) for h in their_items]
    assert [(h["type"], h["content_type"]) for h in our_items] == [
        (h["type"], h["content_type"]) for h in their_items
    ]
    assert [h["length"] for h in our_items] == [len(i.payload) for i in ours.envelope.items]


def assert_same_event_shape(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs) - set(ONLY_IN_SENTRY_EVENTS)
    for key in ("level", "platform", "release", "environment", "logger", "message", "logentry"):
        assert ours.get(key) == theirs.get(key), key
    for side in (ours, theirs):
        assert HEX32.match(side["event_id"])
        assert RFC3339_MICROS.match(side["timestamp"])
        assert isinstance(side["server_name"], str)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in side["modules"].items())
        assert all(isinstance(arg, str) for arg in side["extra"]["sys.argv"])
    assert set(ours["extra"]) == set(theirs["extra"])
    assert_same_contexts(ours["contexts"], theirs["contexts"])
    assert_same_sdk(ours["sdk"], theirs["sdk"])
    assert_same_breadcrumbs(ours["breadcrumbs"], theirs["breadcrumbs"])
    if "exception" in theirs:
        assert_same_exceptions(ours["exception"], theirs["exception"])


def assert_same_contexts(ours: dict, theirs: dict) -> None:
    assert set(ours) - set(ONLY_IN_BUGNET_CONTEXTS) == set(theirs)
    for side in (ours, theirs):
        assert HEX32.match(side["trace"]["trace_id"])
        assert HEX16.match(side["trace"]["span_id"])
    assert ours["trace"]["parent_span_id"] is theirs["trace"]["parent_span_id"] is None
    assert set(ours["trace"]) == set(theirs["trace"])
    assert set(ours["runtime"]) == set(theirs["runtime"])
    assert ours["runtime"]["name"] == theirs["runtime"]["name"] == "CPython"
    for name in set(theirs) - {"trace", "runtime"}:
        assert ours[name] == theirs[name], name  # the app's own contexts, as given


def assert_same_sdk(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    assert ours["name"] == "bugnet.python"
    assert [set(p) for p in ours["packages"]] == [set(p) for p in theirs["packages"]]
    assert set(theirs["integrations"]) - {"flask"} <= set(ours["integrations"])
    assert ours["integrations"] == sorted(ours["integrations"])


def assert_same_breadcrumbs(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs) == {"values"}
    assert len(ours["values"]) == len(theirs["values"])
    for our_crumb, their_crumb in zip(ours["values"], theirs["values"]):
        assert set(our_crumb) == set(their_crumb)
        assert RFC3339_MICROS.match(our_crumb["timestamp"])
        assert {k: v for k, v in our_crumb.items() if k != "timestamp"} == {
            k: v for k, v in their_crumb.items() if k != "timestamp"
        }


def assert_same_exceptions(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs) == {"values"}
    assert len(ours["values"]) == len(theirs["values"])
    for our_value, their_value in zip(ours["values"], theirs["values"]):
        assert set(our_value) == set(their_value)
        for key in ("type", "value", "module", "mechanism"):
            assert our_value[key] == their_value[key], key
        if "stacktrace" in their_value:
            assert_same_frames(our_value["stacktrace"], their_value["stacktrace"])


def assert_same_frames(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs) == {"frames"}
    assert len(ours["frames"]) == len(theirs["frames"])
    for our_frame, their_frame in zip(ours["frames"], theirs["frames"]):
        assert set(our_frame) == set(their_frame)
        assert our_frame["in_app"] == their_frame["in_app"]
        assert isinstance(our_frame["lineno"], int)
    our_last, their_last = ours["frames"][-1], theirs["frames"][-1]
    for key in ("function", "context_line", "vars", "in_app"):
        assert our_last[key] == their_last[key], key
    for key in ("pre_context", "post_context"):
        assert len(our_last[key]) == len(their_last[key]), key


@pytest.fixture
def report_like_sentry(collector):
    """``init()`` with the options the fixture scripts used, against the real HTTP collector."""

    def init(**options):
        return bugnet.init(collector.dsn, release="myapp@1.0.0", **options)

    return init


def test_chained_exception_matches_sentry_sdk(collector, fixtures_dir, report_like_sentry):
    report_like_sentry()
    try:
        load_config({"database": {}})
    except Exception:
        bugnet.capture_exception()
    ours, theirs = Sent(collector), Recorded(fixtures_dir, "chained-exception")
    assert_same_request_shape(ours, theirs)
    assert_same_envelope_shape(ours, theirs)
    assert_same_event_shape(ours.event, theirs.event)
    assert [v["type"] for v in ours.event["exception"]["values"]] == ["KeyError", "RuntimeError"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is new in Python 3.11")
def test_exception_group_matches_sentry_sdk(collector, fixtures_dir, report_like_sentry):
    report_like_sentry()
    try:
        many()
    except Exception:
        bugnet.capture_exception()
    ours, theirs = Sent(collector), Recorded(fixtures_dir, "exception-group")
    assert_same_request_shape(ours, theirs)
    assert_same_envelope_shape(ours, theirs)
    assert_same_event_shape(ours.event, theirs.event)
    assert [v["mechanism"].get("exception_id") for v in ours.event["exception"]["values"]] == [
        2,
        1,
        0,
    ]


def test_logged_error_matches_sentry_sdk(collector, fixtures_dir, report_like_sentry):
    report_like_sentry()
    logger = logging.getLogger("myapp.billing")
    logger.setLevel(logging.INFO)
    try:
        logger.info("charging order %s", "A-1001")
        logger.error("Payment failed for order %s (amount %d)", "A-1001", 42)
    finally:
        logger.setLevel(logging.NOTSET)
    ours, theirs = Sent(collector), Recorded(fixtures_dir, "logging-error")
    assert_same_request_shape(ours, theirs)
    assert_same_envelope_shape(ours, theirs)
    assert_same_event_shape(ours.event, theirs.event)
    assert ours.event["logentry"] == {
        "message": "Payment failed for order %s (amount %d)",
        "formatted": "Payment failed for order A-1001 (amount 42)",
        "params": ["A-1001", 42],
    }


def test_captured_message_matches_sentry_sdk(collector, fixtures_dir, report_like_sentry):
    report_like_sentry(environment="staging")
    bugnet.set_user({"id": "42", "email": "jane@example.com"})
    bugnet.set_tag("tenant", "acme")
    bugnet.set_context("job", {"name": "nightly-cleanup", "attempt": 2})
    bugnet.add_breadcrumb(category="auth", message="User logged in")
    bugnet.capture_message("Disk quota exceeded on /var/data", level="warning")
    ours, theirs = Sent(collector), Recorded(fixtures_dir, "capture-message")
    assert_same_request_shape(ours, theirs)
    assert_same_envelope_shape(ours, theirs)
    assert_same_event_shape(ours.event, theirs.event)
    for key in ("user", "tags"):
        assert ours.event[key] == theirs.event[key], key
