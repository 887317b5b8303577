"""The HTTP transport and the spool, end to end: the SDK in this process (or in a subprocess, or
a forked child) against a real HTTP server that answers what each test tells it to."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import bugnet
from bugnet import _client_reports, _transport
from bugnet._dsn import Dsn
from bugnet._envelope import Envelope, Item, parse_envelope
from bugnet._rate_limits import ALL, RateLimiter, parse_rate_limits, parse_retry_after
from bugnet._spool import Spool, decode_file, encode_file
from bugnet._version import __version__
from collector import KEY, Collector, Received, Reply, SilentServer, free_port

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(autouse=True)
def no_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests talk to 127.0.0.1; a proxy configured on the machine must not get in between."""
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def silent() -> Any:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry a server that was down after 50 ms rather than 1 s, and rescan the spool often."""
    monkeypatch.setattr(_transport, "MIN_BACKOFF", 0.05)
    monkeypatch.setattr(_transport, "SPOOL_RESCAN", 0.2)


@pytest.fixture
def no_periodic_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Client reports go out only at close (none ride along before), whatever the test's pace."""
    monkeypatch.setattr(_client_reports, "REPORT_INTERVAL", 1e9)


# -- helpers --------------------------------------------------------------------------------


def init(dsn: str, spool_dir: Path, **options: Any) -> bugnet.Client:
    options.setdefault("http_timeout", 5.0)
    options.setdefault("shutdown_timeout", 5.0)
    return bugnet.init(dsn, spool_dir=str(spool_dir), **options)


def spool_path(spool_dir: Path, dsn: str) -> str:
    return os.path.join(str(spool_dir), Dsn.parse(dsn).spool_key)


def spool_files(spool_dir: Path, dsn: str) -> list[str]:
    path = spool_path(spool_dir, dsn)
    if not os.path.isdir(path):
        return []
    return sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".bnq"))


def spooled_envelopes(spool_dir: Path, dsn: str) -> list[Envelope]:
    envelopes = []
    for path in spool_files(spool_dir, dsn):
        payload, _ = decode_file(Path(path).read_bytes())
        envelopes.append(parse_envelope(payload))
    return envelopes


def spooled_ids(spool_dir: Path, dsn: str) -> list[Optional[str]]:
    return [envelope.event_id for envelope in spooled_envelopes(spool_dir, dsn)]


def spool_events(spool_dir: Path, dsn: str, messages: list[str]) -> list[str]:
    """Spool one event per message, as a process that could not deliver them would have."""
    spool = Spool(spool_path(spool_dir, dsn), 1 << 30, 3600.0)
    ids = []
    for message in messages:
        event_id = uuid.uuid4().hex
        event = {"event_id": event_id, "message": message, "level": "error", "platform": "python"}
        envelope = Envelope({"event_id": event_id}, [Item.from_json("event", event)])
        assert spool.put(envelope.serialize(), ["error"]) is not None
        ids.append(event_id)
    return ids


def event_ids(collector: Collector) -> list[str]:
    return [event["event_id"] for event in collector.events()]


def messages(received: Received) -> list[str]:
    return [event.get("message", "") for event in received.events]


def answer(collector: Collector, decide: Callable[[Received], Reply]) -> list[Received]:
    """Answer each request with ``decide(request)``; returns the list of every request seen
    (``collector.received`` holds only the accepted ones)."""
    seen: list[Received] = []

    def reply(received: Received) -> Reply:
        seen.append(received)
        return decide(received)

    collector.reply = reply
    return seen


def client_reports(collector: Collector) -> list[dict[str, Any]]:
    return [
        item.json()
        for received in collector.received
        for item in received.envelope.items
        if item.type == "client_report"
    ]


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def item_headers(body: bytes) -> list[dict[str, Any]]:
    """The item headers exactly as written, walking the body by the declared lengths."""
    pos = body.index(b"\n") + 1
    headers = []
    while pos < len(body):
        end = body.index(b"\n", pos)
        header = json.loads(body[pos:end])
        headers.append(header)
        pos = end + 1 + header["length"]  # KeyError: an item without an explicit length
        assert body[pos : pos + 1] == b"\n", "an item's payload must end with a newline"
        pos += 1
    return headers


def python_env(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": SRC,
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }


def run_python(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=python_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result


# A new process with the same DSN: it delivers what the spool holds, and waits until it is empty.
DRAIN_SCRIPT = """
import os, time
import bugnet

bugnet.init(os.environ["DSN"], spool_dir=os.environ["SPOOL"], http_timeout=5)
path = os.environ["SPOOL_PATH"]
deadline = time.monotonic() + 30
while time.monotonic() < deadline and any(n.endswith(".bnq") for n in os.listdir(path)):
    time.sleep(0.02)
"""


def drain_in_new_process(spool_dir: Path, dsn: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", DRAIN_SCRIPT],
        env=python_env(DSN=dsn, SPOOL=str(spool_dir), SPOOL_PATH=spool_path(spool_dir, dsn)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> None:
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr


# -- on the wire ----------------------------------------------------------------------------


def test_envelope_is_posted_to_the_envelope_endpoint_with_one_auth_mechanism(collector, spool_dir):
    """X-Sentry-Auth only: no query-string key, no Authorization header, no ``dsn`` header
    (Relay answers 401 when it finds more than one)."""
    init(collector.dsn, spool_dir)
    event_id = bugnet.capture_message("hello")
    assert bugnet.flush(5)
    (received,) = collector.received
    assert received.path == "/api/42/envelope/"
    headers = received.headers
    assert headers["X-Sentry-Auth"] == (
        f"Sentry sentry_key={KEY}, sentry_version=7, sentry_client=bugnet.python/{__version__}"
    )
    assert "Authorization" not in headers
    assert headers["Content-Type"] == "application/x-sentry-envelope"
    assert headers["Content-Encoding"] == "gzip"  # the collector gunzipped it
    assert headers["User-Agent"] == f"bugnet.python/{__version__}"
    assert "dsn" not in received.envelope.headers
    assert received.envelope.event_id == event_id
    assert received.events[0]["event_id"] == event_id


def test_sent_at_is_utc_with_z(collector, spool_dir):
    init(collector.dsn, spool_dir)
    bugnet.capture_message("when")
    assert bugnet.flush(5)
    sent_at = collector.received[0].envelope.headers["sent_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", sent_at)
    parsed = datetime.strptime(sent_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - parsed).total_seconds()) < 600  # UTC, not local


def test_every_item_has_an_explicit_length(collector, spool_dir, monkeypatch):
    monkeypatch.setattr(_client_reports, "REPORT_INTERVAL", 0.0)
    init(collector.dsn, spool_dir, before_send=lambda e, h: None if e["message"] == "x" else e)
    bugnet.capture_message("x")  # dropped: a client report rides along with the next event
    bugnet.capture_message("line one\nline two")
    assert bugnet.flush(5)
    (received,) = collector.received
    headers = item_headers(received.body)
    assert [h["type"] for h in headers] == ["event", "client_report"]
    assert all(isinstance(h["length"], int) for h in headers)
    assert received.body.endswith(b"\n")


def test_request_matches_what_sentry_sdk_sends(collector, spool_dir, fixtures_dir):
    """Same endpoint, content headers and auth shape as sentry-sdk 2.75's captured request, and
    our body reads with the parser that reads its envelopes."""
    theirs = json.loads((fixtures_dir / "python" / "flask-exception.request.json").read_text())
    their_body = (fixtures_dir / "python" / "flask-exception.envelope").read_bytes()
    init(collector.dsn, spool_dir)
    try:
        1 / 0
    except ZeroDivisionError:
        bugnet.capture_exception()
    assert bugnet.flush(5)
    (received,) = collector.received
    assert received.path == theirs["path"]
    for name in ("Content-Type", "Content-Encoding"):
        assert received.headers[name] == theirs["headers"][name]
    assert received.headers["X-Sentry-Auth"] == theirs["headers"]["X-Sentry-Auth"].replace(
        "sentry.python/2.75.0", f"bugnet.python/{__version__}"
    )
    ours, fixture = parse_envelope(received.body), parse_envelope(their_body)
    assert [i.type for i in ours.items] == [i.type for i in fixture.items] == ["event"]
    assert item_headers(received.body)[0].keys() == item_headers(their_body)[0].keys()
    assert ours.items[0].json()["exception"]["values"][-1]["type"] == "ZeroDivisionError"


def test_invalid_text_still_makes_valid_utf8(collector, spool_dir):
    """A lone surrogate (a file name decoded with surrogateescape) would make the body invalid
    UTF-8, which Relay rejects whole."""
    init(collector.dsn, spool_dir)
    bugnet.capture_message("cannot open /tmp/caf\udce9.txt")
    assert bugnet.flush(5)
    (received,) = collector.received
    received.body.decode("utf-8")  # strict
    assert received.events[0]["message"] == "cannot open /tmp/caf\ufffd.txt"


def test_several_events_share_one_kept_alive_connection(collector, spool_dir, monkeypatch):
    connects: list[int] = []
    original_connect = http.client.HTTPConnection.connect

    def counting_connect(self: http.client.HTTPConnection) -> None:
        connects.append(self.port)
        original_connect(self)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", counting_connect)
    init(collector.dsn, spool_dir)
    for n in range(3):
        bugnet.capture_message(f"event {n}")
        assert bugnet.flush(5)
    assert len(collector.events()) == 3
    assert connects == [collector.port]


class ClosingServer:
    """Answers one request per connection, then closes it without ``Connection: close``, as a
    server does with a keep-alive connection that sat idle too long."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.bodies: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def dsn(self) -> str:
        return f"http://{KEY}@127.0.0.1:{self.port}/42"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                match = re.search(rb"(?i)content-length: *(\d+)", head)
                assert match is not None
                while len(body) < int(match.group(1)):
                    body += conn.recv(65536)
                self.bodies.append(gzip.decompress(body))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def close(self) -> None:
        self.sock.close()


def test_connection_the_server_closed_meanwhile_is_replaced_without_losing_the_event(spool_dir):
    server = ClosingServer()
    try:
        client = init(server.dsn, spool_dir)
        for n in range(2):
            bugnet.capture_message(f"event {n}")
            assert bugnet.flush(5)
        assert len(server.bodies) == 2
        assert server.connections == 2
        assert client.discards.totals == Counter()
        assert spool_files(spool_dir, server.dsn) == []
    finally:
        server.close()


# -- never blocking the app -----------------------------------------------------------------


def test_capture_returns_while_the_server_never_answers(silent, spool_dir):
    init(silent.dsn, spool_dir, http_timeout=60)
    try:
        raise ValueError("the app goes on")
    except ValueError as error:
        event_id = bugnet.capture_exception(error)
    assert event_id is not None
    assert bugnet.flush(0.2) is False  # the capture returned; the send is still waiting


def test_flush_gives_up_after_its_timeout(silent, spool_dir):
    init(silent.dsn, spool_dir, http_timeout=60)
    bugnet.capture_message("never answered")
    result: list[bool] = []
    flusher = threading.Thread(target=lambda: result.append(bugnet.flush(0.3)))
    flusher.start()
    flusher.join(20)  # far less than the 60 s the network would take
    assert result == [False]


def test_close_spools_what_the_server_has_not_answered_once(silent, spool_dir):
    """The envelope in flight is spooled by close() (the process may exit next) and not
    spooled again by the worker when its send finally fails."""
    client = init(silent.dsn, spool_dir, http_timeout=1.0, shutdown_timeout=0.2)
    ids = [bugnet.capture_message(f"pending {n}") for n in range(3)]
    transport = client.transport
    assert isinstance(transport, _transport.HttpTransport)
    client.close()
    assert sorted(spooled_ids(spool_dir, silent.dsn)) == sorted(ids)
    worker = transport._thread
    assert worker is not None
    worker.join(10)
    assert not worker.is_alive()
    assert sorted(spooled_ids(spool_dir, silent.dsn)) == sorted(ids)


def test_answer_arriving_after_close_removes_the_spooled_copy(collector, spool_dir):
    arrived, release = threading.Event(), threading.Event()

    def slow(received: Received) -> Reply:
        arrived.set()
        release.wait(10)
        return Reply()

    collector.reply = slow
    client = init(collector.dsn, spool_dir, shutdown_timeout=0.1)
    event_id = bugnet.capture_message("slow")
    assert arrived.wait(5)
    transport = client.transport
    assert isinstance(transport, _transport.HttpTransport)
    client.close()
    assert spooled_ids(spool_dir, collector.dsn) == [event_id]
    release.set()
    assert transport._thread is not None
    transport._thread.join(10)
    assert spool_files(spool_dir, collector.dsn) == []  # the server has it: not resent
    assert event_ids(collector) == [event_id]


def test_envelopes_beyond_the_queue_wait_in_the_spool(collector, spool_dir):
    arrived, release = threading.Event(), threading.Event()

    def gated(received: Received) -> Reply:
        if "first" in messages(received):
            arrived.set()
            release.wait(10)
        return Reply()

    collector.reply = gated
    client = init(collector.dsn, spool_dir, transport_queue_size=1)
    first = bugnet.capture_message("first")
    assert arrived.wait(5)
    second = bugnet.capture_message("second")  # queued
    third = bugnet.capture_message("third")  # the queue is full: straight to disk
    assert spooled_ids(spool_dir, collector.dsn) == [third]
    release.set()
    assert wait_until(lambda: spool_files(spool_dir, collector.dsn) == [])
    client.close()
    assert sorted(event_ids(collector)) == sorted([first, second, third])


def test_worker_that_cannot_start_leaves_the_queue_to_close(spool_dir, monkeypatch):
    """On Python 3.12+ no thread can start during interpreter shutdown: capture must not fail,
    flush must not wait for nobody, and close() spools what is queued."""
    original_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name == "bugnet-transport":
            raise RuntimeError("can't create new thread at interpreter shutdown")
        original_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    dsn = f"http://{KEY}@127.0.0.1:{free_port()}/42"
    client = init(dsn, spool_dir, default_integrations=False)
    event_id = bugnet.capture_message("late")
    assert event_id is not None
    assert bugnet.flush(5) is False
    client.close()
    assert spooled_ids(spool_dir, dsn) == [event_id]


# -- rate limits ----------------------------------------------------------------------------


def test_429_pauses_sending_for_retry_after(collector, spool_dir, no_periodic_reports):
    seen = answer(collector, lambda r: Reply(429, {"Retry-After": "60"}))
    client = init(collector.dsn, spool_dir)
    bugnet.capture_message("answered 429")
    assert bugnet.flush(5)
    bugnet.capture_message("not sent 1")
    bugnet.capture_message("not sent 2")
    assert bugnet.flush(5)
    assert len(seen) == 1
    # The server counted the 429'd event itself; the SDK counts only what it held back.
    assert client.discards.totals == Counter({("ratelimit_backoff", "error"): 2})
    assert spool_files(spool_dir, collector.dsn) == []
    collector.reply = lambda r: Reply()
    client.close()  # client reports are never rate limited
    (report,) = client_reports(collector)
    assert report["discarded_events"] == [
        {"reason": "ratelimit_backoff", "category": "error", "quantity": 2}
    ]


def test_limit_on_errors_in_a_200_holds_back_errors_not_other_categories(
    collector, spool_dir, no_periodic_reports
):
    seen = answer(collector, lambda r: Reply(200, {"X-Sentry-Rate-Limits": "60:error:key"}))
    client = init(collector.dsn, spool_dir)
    first = bugnet.capture_message("accepted, with a limit")
    assert bugnet.flush(5)
    for n in range(3):
        bugnet.capture_message(f"held back {n}")
    transaction = Envelope(
        {"event_id": uuid.uuid4().hex},
        [Item.from_json("transaction", {"type": "transaction", "transaction": "/"})],
    )
    assert client.transport is not None
    client.transport.capture_envelope(transaction)
    assert bugnet.flush(5)
    assert [r.item_types for r in seen] == [["event"], ["transaction"]]  # nothing per drop
    client.close()
    assert [r.item_types for r in seen][-1] == ["client_report"]
    assert event_ids(collector) == [first]
    (report,) = client_reports(collector)
    assert report["discarded_events"] == [
        {"reason": "ratelimit_backoff", "category": "error", "quantity": 3}
    ]


def test_limit_on_transactions_does_not_stop_errors(collector, spool_dir):
    answer(collector, lambda r: Reply(200, {"X-Sentry-Rate-Limits": "60:transaction:organization"}))
    client = init(collector.dsn, spool_dir)
    first = bugnet.capture_message("first")
    assert bugnet.flush(5)
    assert client.transport is not None
    client.transport.capture_envelope(
        Envelope({}, [Item.from_json("transaction", {"type": "transaction"})])
    )
    second = bugnet.capture_message("second")
    assert bugnet.flush(5)
    assert event_ids(collector) == [first, second]
    assert client.discards.totals == Counter({("ratelimit_backoff", "transaction"): 1})


def test_limit_without_categories_holds_back_everything_but_client_reports(
    collector, spool_dir, no_periodic_reports
):
    seen = answer(collector, lambda r: Reply(200, {"X-Sentry-Rate-Limits": "60::organization"}))
    client = init(collector.dsn, spool_dir)
    bugnet.capture_message("accepted, with a limit on everything")
    assert bugnet.flush(5)
    bugnet.capture_message("held back")
    assert client.transport is not None
    client.transport.capture_envelope(
        Envelope({}, [Item.from_json("transaction", {"type": "transaction"})])
    )
    assert bugnet.flush(5)
    assert len(seen) == 1
    client.close()
    (report,) = client_reports(collector)
    assert report["discarded_events"] == [
        {"reason": "ratelimit_backoff", "category": "error", "quantity": 1},
        {"reason": "ratelimit_backoff", "category": "transaction", "quantity": 1},
    ]


def test_rate_limit_header_parsing():
    now = 1000.0
    assert parse_rate_limits(
        "60:transaction:key, 2700:default;error;security:organization", now
    ) == {
        "transaction": 1060.0,
        "default": 3700.0,
        "error": 3700.0,
        "security": 3700.0,
    }
    assert parse_rate_limits("60::organization", now) == {ALL: 1060.0}
    assert parse_rate_limits("2700:metric_bucket:organization:quota_exceeded:custom", now) == {
        "metric_bucket": 3700.0
    }
    # Unknown categories are ignored; an entry with only unknown ones, or a bad delay, too.
    assert parse_rate_limits("10:error;telepathy:key, 20:telepathy:key, soon:error", now) == {
        "error": 1010.0
    }
    assert parse_rate_limits("5:error:key,10:error:org", now) == {"error": 1010.0}


def test_retry_after_in_seconds_or_as_an_http_date():
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now) == 120.0
    assert parse_retry_after(None, now) == 60.0
    assert parse_retry_after("whenever", now) == 60.0


def test_rate_limiter_keeps_the_longer_limit_and_lets_it_expire():
    limiter = RateLimiter()
    limiter.update(200, {"x-sentry-rate-limits": "60:error:key"})
    limiter.update(200, {"x-sentry-rate-limits": "5:error:key"})
    now = time.monotonic()
    assert limiter.is_limited("error", now + 30)
    assert not limiter.is_limited("error", now + 61)
    assert not limiter.is_limited("transaction", now)


def test_429_without_headers_limits_every_category_but_internal_for_60_seconds():
    limiter = RateLimiter()
    limiter.update(429, {})
    now = time.monotonic()
    assert limiter.is_limited("error", now + 59)
    assert limiter.is_limited("transaction", now)
    assert not limiter.is_limited("internal", now)
    assert not limiter.is_limited("error", now + 61)


def test_rate_limits_header_wins_over_retry_after():
    limiter = RateLimiter()
    limiter.update(429, {"retry-after": "3600", "x-sentry-rate-limits": "10:transaction:key"})
    now = time.monotonic()
    assert limiter.is_limited("transaction", now)
    assert not limiter.is_limited("error", now)


# -- answers that are final -----------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_refused_envelope_is_dropped_counted_and_never_retried(status, collector, spool_dir):
    seen = answer(
        collector,
        lambda r: Reply(status, {"X-Sentry-Error": "no"}) if "refused" in messages(r) else Reply(),
    )
    client = init(collector.dsn, spool_dir)
    refused = bugnet.capture_message("refused")
    assert bugnet.flush(5)
    accepted = bugnet.capture_message("accepted")
    assert bugnet.flush(5)
    assert spool_files(spool_dir, collector.dsn) == []
    client.close()
    attempts = [r.envelope.event_id for r in seen]
    assert attempts.count(refused) == 1
    assert event_ids(collector) == [accepted]
    assert client.discards.totals == Counter({("send_error", "error"): 1})
    (report,) = client_reports(collector)
    assert report["discarded_events"] == [
        {"reason": "send_error", "category": "error", "quantity": 1}
    ]


# -- client reports -------------------------------------------------------------------------


def test_client_report_rides_along_with_a_later_envelope(collector, spool_dir, monkeypatch):
    monkeypatch.setattr(_client_reports, "REPORT_INTERVAL", 0.0)
    init(collector.dsn, spool_dir, before_send=lambda e, h: None if e["message"] == "drop" else e)
    bugnet.capture_message("drop")
    bugnet.capture_message("keep")
    assert bugnet.flush(5)
    (received,) = collector.received
    assert received.item_types == ["event", "client_report"]
    assert received.envelope.items[1].json()["discarded_events"] == [
        {"reason": "before_send", "category": "error", "quantity": 1}
    ]


def test_drops_are_reported_once_at_close_never_one_request_per_drop(
    collector, spool_dir, no_periodic_reports
):
    client = init(collector.dsn, spool_dir, before_send=lambda e, h: None)
    for _ in range(5):
        bugnet.capture_message("dropped")
    assert bugnet.flush(5)
    assert collector.received == []
    client.close()
    (received,) = collector.received
    assert received.item_types == ["client_report"]
    report = received.envelope.items[0].json()
    assert report["discarded_events"] == [
        {"reason": "before_send", "category": "error", "quantity": 5}
    ]
    assert isinstance(report["timestamp"], float)


def test_no_client_reports_when_switched_off(collector, spool_dir, monkeypatch):
    monkeypatch.setattr(_client_reports, "REPORT_INTERVAL", 0.0)
    client = init(
        collector.dsn,
        spool_dir,
        send_client_reports=False,
        before_send=lambda e, h: None if e["message"] == "drop" else e,
    )
    bugnet.capture_message("drop")
    bugnet.capture_message("keep")
    bugnet.capture_message("drop")
    client.close()
    assert [r.item_types for r in collector.received] == [["event"]]


# -- fork and exit --------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_forked_child_sends_its_own_events_and_never_the_parents_queue(collector, spool_dir):
    arrived, release = threading.Event(), threading.Event()

    def gated(received: Received) -> Reply:
        if "parent in flight" in messages(received):
            arrived.set()
            release.wait(20)
        return Reply()

    collector.reply = gated
    init(collector.dsn, spool_dir)
    bugnet.capture_message("parent in flight")
    assert arrived.wait(5)
    bugnet.capture_message("parent queued 1")
    bugnet.capture_message("parent queued 2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded fork" on 3.12+
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # The parent's worker is stuck in its send: only the child's own worker can deliver.
            bugnet.capture_message("child")
            code = 0 if bugnet.flush(10) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [m for r in collector.received for m in messages(r)] == ["child"]
    release.set()
    assert bugnet.flush(10)
    assert sorted(m for r in collector.received for m in messages(r)) == [
        "child",
        "parent in flight",
        "parent queued 1",
        "parent queued 2",
    ]


def test_process_exiting_normally_delivers_its_event(collector, spool_dir):
    """No explicit flush: the atexit integration flushes within shutdown_timeout."""
    result = run_python(
        "import os, bugnet\n"
        "bugnet.init(os.environ['DSN'], spool_dir=os.environ['SPOOL'], shutdown_timeout=10)\n"
        "print(bugnet.capture_message('goodbye'))\n",
        DSN=collector.dsn,
        SPOOL=str(spool_dir),
    )
    assert event_ids(collector) == [result.stdout.strip()]
    assert collector.events()[0]["message"] == "goodbye"


def test_process_exiting_before_the_server_answers_spools_and_the_next_delivers(silent, spool_dir):
    result = run_python(
        "import os, bugnet\n"
        "bugnet.init(os.environ['DSN'], spool_dir=os.environ['SPOOL'],\n"
        "            http_timeout=60, shutdown_timeout=0.3)\n"
        "print(bugnet.capture_message('pending at exit'))\n",
        DSN=silent.dsn,
        SPOOL=str(spool_dir),
    )
    event_id = result.stdout.strip()
    assert spooled_ids(spool_dir, silent.dsn) == [event_id]
    silent.close()
    collector = Collector(port=silent.port).start()  # the server is back, same DSN
    try:
        finish(drain_in_new_process(spool_dir, collector.dsn))
        assert event_ids(collector) == [event_id]
        assert collector.events()[0]["message"] == "pending at exit"
    finally:
        collector.stop()


# -- the spool, end to end ------------------------------------------------------------------


def test_spooled_while_down_then_delivered_by_the_same_process(collector, spool_dir):
    """Connection refused: spooled; the worker retries after its backoff (1 s at first)."""
    collector.stop()
    client = init(collector.dsn, spool_dir)
    ids = [bugnet.capture_message(f"while down {n}") for n in range(3)]
    assert bugnet.flush(5)  # handled: on disk
    assert sorted(spooled_ids(spool_dir, collector.dsn)) == sorted(ids)
    collector.start()
    assert wait_until(lambda: spool_files(spool_dir, collector.dsn) == [])
    client.close()
    assert sorted(event_ids(collector)) == sorted(ids)  # each exactly once
    assert client.discards.totals == Counter()


def test_while_the_server_is_down_envelopes_go_straight_to_the_spool(spool_dir, monkeypatch):
    """One failed attempt starts the backoff; until it ends, nothing more touches the network."""
    attempts: list[int] = []
    original_connect = http.client.HTTPConnection.connect

    def counting_connect(self: http.client.HTTPConnection) -> None:
        attempts.append(self.port)
        original_connect(self)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", counting_connect)
    monkeypatch.setattr(_transport, "MIN_BACKOFF", 60.0)  # however slow this machine is
    dsn = f"http://{KEY}@127.0.0.1:{free_port()}/42"
    init(dsn, spool_dir)
    ids = [bugnet.capture_message(f"down {n}") for n in range(4)]
    assert bugnet.flush(5)
    assert len(attempts) == 1
    assert sorted(spooled_ids(spool_dir, dsn)) == sorted(ids)


def test_backoff_doubles_from_one_second_to_a_minute_and_resets_on_success(spool_dir):
    client = init(f"http://{KEY}@127.0.0.1:{free_port()}/42", spool_dir)
    transport = client.transport
    assert isinstance(transport, _transport.HttpTransport)
    backoffs = []
    for _ in range(8):
        transport._mark_down()
        backoffs.append(transport._backoff)
    assert backoffs == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    transport._mark_up()
    transport._mark_down()
    assert transport._backoff == 1.0


def test_spooled_envelope_never_carries_sent_at(collector, spool_dir, fast_retries):
    """sent_at is for clock-drift correction: it must say when the envelope was *sent*."""
    collector.stop()
    init(collector.dsn, spool_dir)
    event_id = bugnet.capture_message("spooled")
    assert bugnet.flush(5)
    (spooled,) = spooled_envelopes(spool_dir, collector.dsn)
    assert spooled.event_id == event_id
    assert "sent_at" not in spooled.headers
    collector.start()
    assert collector.wait_for(lambda c: len(c.received) == 1)
    assert collector.received[0].envelope.headers["sent_at"].endswith("Z")


def test_server_errors_are_spooled_and_retried(collector, spool_dir, fast_retries):
    failing = True
    answer(collector, lambda r: Reply(503) if failing else Reply())
    client = init(collector.dsn, spool_dir)
    ids = [bugnet.capture_message(f"during the outage {n}") for n in range(2)]
    assert bugnet.flush(5)
    assert sorted(spooled_ids(spool_dir, collector.dsn)) == sorted(ids)
    failing = False
    assert wait_until(lambda: spool_files(spool_dir, collector.dsn) == [])
    client.close()
    assert sorted(event_ids(collector)) == sorted(ids)


def test_envelope_the_server_always_fails_on_does_not_hold_up_the_rest(collector, spool_dir):
    poison, first, second = spool_events(spool_dir, collector.dsn, ["poison", "a", "b"])
    answer(collector, lambda r: Reply(500) if "poison" in messages(r) else Reply())
    client = init(collector.dsn, spool_dir)
    assert collector.wait_for(lambda c: len(c.events()) == 2)
    client.close()
    assert event_ids(collector) == [first, second]
    assert spooled_ids(spool_dir, collector.dsn) == [poison]  # kept for a later try


def test_timed_out_envelope_is_spooled_and_delivered_by_a_new_process(spool_dir):
    silent = SilentServer()
    try:
        client = init(silent.dsn, spool_dir, http_timeout=0.3)
        event_id = bugnet.capture_message("timed out")
        assert bugnet.flush(10)  # the timeout passed: on disk
        client.close()
    finally:
        silent.close()
    assert spooled_ids(spool_dir, silent.dsn) == [event_id]
    collector = Collector(port=silent.port).start()
    try:
        finish(drain_in_new_process(spool_dir, collector.dsn))
        assert event_ids(collector) == [event_id]
    finally:
        collector.stop()


def test_two_processes_draining_one_spool_deliver_each_event_once(collector, spool_dir):
    ids = spool_events(spool_dir, collector.dsn, [f"spooled {n}" for n in range(40)])
    collector.reply = lambda r: Reply(delay=0.005)  # so that both are at work at once
    first = drain_in_new_process(spool_dir, collector.dsn)
    second = drain_in_new_process(spool_dir, collector.dsn)
    finish(first)
    finish(second)
    assert sorted(event_ids(collector)) == sorted(ids)
    assert spool_files(spool_dir, collector.dsn) == []


def test_files_another_process_spools_are_picked_up_by_the_rescan(
    collector, spool_dir, fast_retries
):
    init(collector.dsn, spool_dir)
    mine = bugnet.capture_message("mine")
    assert bugnet.flush(5)
    (theirs,) = spool_events(spool_dir, collector.dsn, ["left by another process"])
    assert collector.wait_for(lambda c: len(c.events()) == 2)
    assert event_ids(collector) == [mine, theirs]


WRITER_SCRIPT = """
import os, uuid
from bugnet._envelope import Envelope, Item
from bugnet._spool import Spool

spool = Spool(os.environ["SPOOL_PATH"], 1 << 40, 3600.0)
padding = "x" * 100_000
while True:
    event_id = uuid.uuid4().hex
    event = {"event_id": event_id, "message": "written", "extra": {"padding": padding}}
    envelope = Envelope({"event_id": event_id}, [Item.from_json("event", event)])
    spool.put(envelope.serialize(), ["error"])
    print(event_id, flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_writer_killed_mid_write_leaves_no_torn_file_to_send(collector, spool_dir):
    path = spool_path(spool_dir, collector.dsn)
    written: list[str] = []
    rng = random.Random(1234)
    for _ in range(3):  # three kills at different points
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT],
            env=python_env(SPOOL_PATH=path),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        for _ in range(rng.randint(1, 8)):
            written.append(writer.stdout.readline().strip())
        time.sleep(rng.uniform(0, 0.02))
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate(timeout=30)
        written.extend(rest.split())
    on_disk = []
    for name in spool_files(spool_dir, collector.dsn):
        payload, _ = decode_file(Path(name).read_bytes())  # every complete name is complete
        on_disk.append(parse_envelope(payload).event_id)
    assert set(written) <= set(on_disk)  # put() returned: it is on disk
    # A file a power cut tore (rename done, data lost): detected, dropped, never sent.
    torn = encode_file(b'{"event_id":"torn"}\n{"type":"event","length":2}\n{}\n', ["error"])
    Path(path, "00000000000000000001-1-0000dead.bnq").write_bytes(torn[:-5])
    client = init(collector.dsn, spool_dir)
    assert wait_until(lambda: spool_files(spool_dir, collector.dsn) == [], timeout=30)
    client.close()
    delivered = [event["event_id"] for event in collector.events()]
    assert sorted(delivered) == sorted(on_disk)  # each complete file, once
    assert client.discards.totals == Counter({("internal_sdk_error", "error"): 1})


def test_unwritable_spool_counts_the_drop_and_the_app_goes_on(tmp_path):
    """Connection refused and the spool directory cannot be made (a file is in the way)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the spool directory should be")
    dsn = f"http://{KEY}@127.0.0.1:{free_port()}/42"
    client = init(dsn, blocker / "spool")
    assert bugnet.capture_message("nowhere to go") is not None
    assert bugnet.flush(5)
    assert client.discards.totals == Counter({("cache_overflow", "error"): 1})


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_full_disk_counts_the_drop_and_the_app_goes_on(spool_dir):
    """A file size limit makes every spool write fail with EFBIG, as a full disk would."""
    result = run_python(
        "import json, os, resource, signal, bugnet\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "client = bugnet.init(os.environ['DSN'], spool_dir=os.environ['SPOOL'],\n"
        "                     default_integrations=False)\n"
        "_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))\n"
        "event_id = bugnet.capture_message('the disk is full')\n"
        "flushed = bugnet.flush(10)\n"
        "totals = {f'{r}/{c}': n for (r, c), n in client.discards.totals.items()}\n"
        "print(json.dumps({'id': event_id, 'flushed': flushed, 'drops': totals}))\n",
        DSN=f"http://{KEY}@127.0.0.1:{free_port()}/42",
        SPOOL=str(spool_dir),
    )
    outcome = json.loads(result.stdout)
    assert outcome["id"]
    assert outcome["flushed"]
    assert outcome["drops"] == {"cache_overflow/error": 1}
    leftovers = [n for _, _, files in os.walk(spool_dir) for n in files]
    assert leftovers == []  # no torn temp file either


def test_spool_over_its_byte_bound_drops_the_oldest_and_counts_them(
    collector, spool_dir, monkeypatch
):
    monkeypatch.setattr(_transport, "MIN_BACKOFF", 60.0)  # no retry holds a file meanwhile
    collector.stop()
    init(collector.dsn, spool_dir / "measure", default_integrations=False)
    bugnet.capture_message("same size")
    assert bugnet.flush(5)
    (measured,) = spool_files(spool_dir / "measure", collector.dsn)
    size = os.path.getsize(measured)
    client = init(
        collector.dsn, spool_dir, default_integrations=False, spool_max_bytes=int(size * 2.5)
    )
    ids = [bugnet.capture_message("same size") for _ in range(5)]
    assert bugnet.flush(5)
    assert client.discards.totals == Counter({("cache_overflow", "error"): 3})
    assert spooled_ids(spool_dir, collector.dsn) == ids[-2:]
    client.close()  # its client report joins the spool too
    collector.start()
    later = init(collector.dsn, spool_dir, default_integrations=False)
    assert wait_until(lambda: spool_files(spool_dir, collector.dsn) == [])
    later.close()
    assert event_ids(collector) == ids[-2:]
    (report,) = client_reports(collector)
    assert report["discarded_events"] == [
        {"reason": "cache_overflow", "category": "error", "quantity": 3}
    ]


def test_expired_spool_files_are_dropped_and_counted(collector, spool_dir):
    _, fresh = spool_events(spool_dir, collector.dsn, ["old", "fresh"])
    two_hours_ago = time.time() - 7200
    os.utime(spool_files(spool_dir, collector.dsn)[0], (two_hours_ago, two_hours_ago))
    client = init(collector.dsn, spool_dir, spool_max_age=3600)
    assert wait_until(lambda: spool_files(spool_dir, collector.dsn) == [])
    client.close()
    assert event_ids(collector) == [fresh]
    assert client.discards.totals == Counter({("cache_overflow", "error"): 1})


def test_spooled_envelope_refused_with_4xx_is_removed_not_retried(collector, spool_dir):
    ids = spool_events(spool_dir, collector.dsn, ["bad 1", "bad 2"])
    seen = answer(collector, lambda r: Reply(400) if r.events else Reply())
    client = init(collector.dsn, spool_dir)
    assert wait_until(lambda: spool_files(spool_dir, collector.dsn) == [])
    client.close()
    assert [r.envelope.event_id for r in seen if r.events] == ids
    assert client.discards.totals == Counter({("send_error", "error"): 2})


def test_spooled_envelope_answered_429_is_removed_and_the_rest_wait(collector, spool_dir):
    """As for a live envelope, the server counted the 429'd one; the others are held back
    (on disk) until the limit expires."""
    first, *waiting = spool_events(spool_dir, collector.dsn, ["a", "b", "c"])
    seen = answer(collector, lambda r: Reply(429, {"Retry-After": "60"}))
    client = init(collector.dsn, spool_dir)
    assert wait_until(lambda: len(seen) == 1)
    transport = client.transport
    assert isinstance(transport, _transport.HttpTransport)
    client.close()
    assert transport._thread is not None
    transport._thread.join(10)
    assert [r.envelope.event_id for r in seen] == [first]
    assert spooled_ids(spool_dir, collector.dsn) == waiting
    assert client.discards.totals == Counter()


# -- proxies --------------------------------------------------------------------------------


def test_http_proxy_option_carries_the_request_and_its_credentials(collector, spool_dir):
    target = f"127.0.0.1:{free_port()}"  # not reachable directly
    init(
        f"http://{KEY}@{target}/42",
        spool_dir,
        http_proxy=f"http://user:p%40ss@127.0.0.1:{collector.port}",
    )
    bugnet.capture_message("through the proxy")
    assert bugnet.flush(5)
    (received,) = collector.received
    assert received.path == f"http://{target}/api/42/envelope/"  # absolute-form for a proxy
    assert received.headers["Proxy-Authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss


def test_proxy_from_the_environment_is_used(collector, spool_dir, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{collector.port}")
    target = f"127.0.0.1:{free_port()}"
    init(f"http://{KEY}@{target}/42", spool_dir)
    bugnet.capture_message("through the proxy")
    assert bugnet.flush(5)
    assert collector.received[0].path == f"http://{target}/api/42/envelope/"


def test_no_proxy_bypasses_the_proxy_from_the_environment(collector, spool_dir, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")  # a dead proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    init(collector.dsn, spool_dir)
    bugnet.capture_message("direct")
    assert bugnet.flush(5)
    assert collector.received[0].path == "/api/42/envelope/"


def test_flush_delivers_a_burst_that_overflowed_into_the_spool(collector, spool_dir):
    """A queue overflow is spooled, not dropped; flush() then delivers it while the server is up."""
    bugnet.init(collector.dsn, spool_dir=str(spool_dir), transport_queue_size=2)
    ids = []
    for index in range(30):
        ids.append(bugnet.capture_message(f"burst {index}"))
    assert bugnet.flush(10) is True
    received = {event["event_id"] for event in collector.events()}
    assert received == set(ids)
    assert spool_files(spool_dir, collector.dsn) == []
    assert not any(reason == "queue_overflow" for reason, _ in bugnet.get_client().discards.totals)
