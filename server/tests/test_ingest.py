"""Ingest over real HTTP: what any Sentry SDK sends is accepted, stored durably, answered."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import time
import uuid
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import brotli
import pytest
import zstandard
from conftest import Server


def post(server: Server, path: str, body: bytes, headers: dict[str, str] | None = None,
         chunked: bool = False, method: str = "POST") -> tuple[int, dict[str, str], Any]:  # fmt: skip
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=iter([body]) if chunked else body,
                     headers=headers or {}, encode_chunked=chunked)  # fmt: skip
        response = conn.getresponse()
        raw = response.read()
        answer = {k.lower(): v for k, v in response.getheaders()}
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw
        return response.status, answer, payload
    finally:
        conn.close()


def auth(server: Server) -> dict[str, str]:
    return {"X-Sentry-Auth": f"Sentry sentry_key={server.public_key}, sentry_version=7, "
                             "sentry_client=test/1.0"}  # fmt: skip


def envelope_path(server: Server) -> str:
    return f"/api/{server.project_id}/envelope/"


def fixture_envelope(fixtures_dir: Path, name: str, new_id: str) -> bytes:
    """A recorded envelope with its event id replaced (so each test stores its own event)."""
    data = (fixtures_dir / name).read_bytes()
    lines = data.split(b"\n")
    header = json.loads(lines[0])
    old = header.get("event_id")
    if old:
        data = data.replace(old.encode(), new_id.encode())
    return data


def queued_or_stored(server: Server, event_id: str) -> int:
    """Where the event is: queued, or digested. One statement, so one snapshot: two would
    count an event the digest moves between them twice."""
    rows = server.query(
        "SELECT (SELECT COUNT(*) FROM ingest_queuedevent WHERE event_id = %s)"
        " + (SELECT COUNT(*) FROM issues_event WHERE event_id = %s)",
        (event_id, event_id),
    )
    return int(rows[0][0])


PYTHON_FIXTURES = [
    "python/flask-exception.envelope", "python/logging-error.envelope",
    "python/capture-message.envelope", "python/chained-exception.envelope",
    "python/exception-group.envelope",
]  # fmt: skip


@pytest.mark.parametrize("name", PYTHON_FIXTURES)
@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate", "br", "zstd"])
def test_recorded_python_events_are_accepted_in_every_encoding(
    server, fixtures_dir, name, encoding
):
    event_id = f"{abs(hash((name, encoding, server.url))):032x}"[-32:]
    body = fixture_envelope(fixtures_dir, name, event_id)
    compress = {"identity": lambda b: b, "gzip": gzip.compress, "deflate": zlib.compress,
                "br": brotli.compress, "zstd": zstandard.ZstdCompressor().compress}[encoding]  # fmt: skip
    headers = {**auth(server), "Content-Type": "application/x-sentry-envelope"}
    if encoding != "identity":
        headers["Content-Encoding"] = encoding
    status, _, payload = post(server, envelope_path(server), compress(body), headers)
    assert (status, payload) == (200, {"id": event_id})
    assert queued_or_stored(server, event_id) == 1


def test_the_gzipped_bodies_as_sent_are_accepted(server, fixtures_dir):
    for path in sorted((fixtures_dir / "python").glob("*.envelope.gz")):
        headers = {**auth(server), "Content-Encoding": "gzip",
                   "Content-Type": "application/x-sentry-envelope"}  # fmt: skip
        status, _, payload = post(server, envelope_path(server), path.read_bytes(), headers)
        assert status == 200, (path.name, payload)


@pytest.mark.parametrize("name", ["capture-exception", "capture-message", "session"])
def test_node_sdk_requests_are_accepted_as_sent(server, fixtures_dir, name):
    """Query-string auth, no Content-Type, chunked body, items without length, no final newline."""
    request = json.loads((fixtures_dir / "javascript-node" / f"{name}.request.json").read_text())
    query = (
        request["path"]
        .split("?", 1)[1]
        .replace("0123456789abcdef0123456789abcdef", server.public_key)
    )
    body = (fixtures_dir / "javascript-node" / f"{name}.envelope").read_bytes()
    status, _, payload = post(server, f"{envelope_path(server)}?{query}", body, chunked=True)
    assert status == 200, payload


def test_duplicate_event_ids_are_stored_once(server, fixtures_dir):
    event_id = "d" * 32
    body = fixture_envelope(fixtures_dir, "python/logging-error.envelope", event_id)
    headers = {**auth(server), "Content-Type": "application/x-sentry-envelope"}
    for _ in range(3):
        assert post(server, envelope_path(server), body, headers)[0] == 200
    # A resend that arrives after the first copy was digested is queued again, and the digest
    # drops it: wait for the queue, then exactly one event is stored.
    deadline = time.monotonic() + 30
    while (
        time.monotonic() < deadline
        and server.query(
            "SELECT COUNT(*) FROM ingest_queuedevent WHERE event_id = %s", (event_id,)
        )[0][0]
    ):
        time.sleep(0.1)
    assert server.query("SELECT COUNT(*) FROM issues_event WHERE event_id = %s", (event_id,)) == [
        (1,)
    ]


@pytest.mark.parametrize(
    ("headers_for", "status", "detail"),
    [
        (lambda s: {}, 403, "missing authorization"),
        (
            lambda s: {"X-Sentry-Auth": "Sentry sentry_key=ffffffffffffffffffffffffffffffff"},
            403,
            "ProjectId",
        ),
        (
            lambda s: {**auth(s), "Authorization": f"Sentry sentry_key={s.public_key}"},
            401,
            "multiple",
        ),
        (lambda s: {"X-Sentry-Auth": "Sentry sentry_version=7"}, 401, "sentry_key"),
        (lambda s: {**auth(s), "Content-Encoding": "compress"}, 415, "Content-Encoding"),
    ],
    ids=["none", "unknown-key", "two-mechanisms", "no-key", "bad-encoding"],
)
def test_refusals_say_why(server, headers_for, status, detail):
    body = b'{"event_id":"' + b"e" * 32 + b'"}\n{"type":"event"}\n{"message":"x"}\n'
    got, answer, payload = post(server, envelope_path(server), body, headers_for(server))
    assert got == status
    assert detail in payload["detail"]
    assert answer["x-sentry-error"]


def test_cors_preflight_is_answered(server):
    status, headers, _ = post(server, envelope_path(server), b"", {"Origin": "https://app.example"},
                              method="OPTIONS")  # fmt: skip
    assert status == 200
    assert headers["access-control-allow-origin"] == "*"
    assert "x-sentry-auth" in headers["access-control-allow-headers"]


def test_query_string_auth_and_legacy_store_endpoint(server):
    event = {"event_id": "5" * 32, "message": "from an old SDK", "level": "warning"}
    path = f"/api/{server.project_id}/store/?sentry_key={server.public_key}&sentry_version=7"
    status, _, payload = post(
        server, path, json.dumps(event).encode(), {"Content-Type": "application/json"}
    )
    assert (status, payload) == (200, {"id": "5" * 32})
    assert queued_or_stored(server, "5" * 32) == 1


def test_a_key_writes_only_to_its_own_project(server):
    created = server.bugnet("project", "create", "Other Shop")
    assert created.returncode == 0, created.stderr
    other_dsn = created.stdout.strip().splitlines()[-1]
    other_key = other_dsn.split("//", 1)[1].split("@", 1)[0]
    body = b'{}\n{"type":"event"}\n{"message":"x"}\n'
    headers = {"X-Sentry-Auth": f"Sentry sentry_key={other_key}, sentry_version=7"}
    status, _, payload = post(server, envelope_path(server), body, headers)
    assert status == 403, payload
    other_id = int(other_dsn.rsplit("/", 1)[1])
    assert post(server, f"/api/{other_id}/envelope/", body, headers)[0] == 200


@pytest.mark.parametrize(
    ("shape", "attachment"),
    [
        ("small, checked on the event loop", 10),
        (
            "small gzip that decompresses past the loop's limit, checked in a thread",
            3 * 1024 * 1024,
        ),
        ("a body streamed through a thread", 1024 * 1024),
    ],
)
def test_every_way_a_body_is_read_stores_the_event(server, shape, attachment):
    event_id = uuid.uuid4().hex
    filler = b"a" * attachment if "gzip" in shape else os.urandom(attachment // 2).hex().encode()
    body = (
        json.dumps({"event_id": event_id}).encode() + b"\n"
        + b'{"type":"event"}\n' + json.dumps({"message": shape, "level": "error"}).encode() + b"\n"
        + json.dumps({"type": "attachment", "length": len(filler), "filename": "f"}).encode()
        + b"\n" + filler + b"\n"
    )  # fmt: skip
    status, _headers, answer = post(server, envelope_path(server), gzip.compress(body),
                                    {**auth(server), "Content-Encoding": "gzip"})  # fmt: skip
    assert (status, answer) == (200, {"id": event_id})
    assert queued_or_stored(server, event_id) == 1


def attachment_bytes(server: Server) -> int:
    rows = server.query(
        "SELECT COALESCE(SUM(quantity), 0) FROM projects_outcome "
        "WHERE project_id = %s AND category = 'attachment'",
        (int(server.project_id),),
    )
    return int(rows[0][0])


def test_attachments_are_counted_by_size_with_or_without_a_length(server):
    before = attachment_bytes(server)
    body = (
        b"{}\n"
        + b'{"type":"attachment","filename":"a.txt"}\n' + b"x" * 1000 + b"\n"
        + b'{"type":"attachment","length":500,"filename":"b.txt"}\n' + b"y" * 500 + b"\n"
    )  # fmt: skip
    status, _headers, answer = post(server, envelope_path(server), body, auth(server))
    assert (status, answer) == (200, {})
    assert attachment_bytes(server) - before == 1500


def test_an_envelope_without_an_event_is_answered_with_its_header_id(server):
    envelope_id = uuid.uuid4().hex
    body = (json.dumps({"event_id": envelope_id}).encode() + b"\n"
            + b'{"type":"transaction"}\n{"type":"transaction","spans":[]}\n')  # fmt: skip
    status, _headers, answer = post(server, envelope_path(server), body, auth(server))
    assert (status, answer) == (200, {"id": envelope_id})
    # An id that is not one is not echoed (nothing is stored under it), nor refused.
    body = b'{"event_id":"not-an-id"}\n{"type":"transaction"}\n{"type":"transaction"}\n'
    status, _headers, answer = post(server, envelope_path(server), body, auth(server))
    assert (status, answer) == (200, {})


def test_a_zlib_deflate_body_whose_first_read_is_one_byte(server):
    """A "deflate" body is told from raw deflate by its two-byte header, which may come split."""
    event_id = uuid.uuid4().hex
    filler = os.urandom(300 * 1024)  # incompressible: the body streams through a thread
    body = zlib.compress(
        json.dumps({"event_id": event_id}).encode() + b"\n"
        + b'{"type":"event"}\n{"message":"split deflate header"}\n'
        + json.dumps({"type": "attachment", "length": len(filler)}).encode() + b"\n"
        + filler + b"\n"
    )  # fmt: skip
    assert len(body) > 256 * 1024
    parts = urlsplit(server.url)
    head = (
        f"POST {envelope_path(server)} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
        f"X-Sentry-Auth: {auth(server)['X-Sentry-Auth']}\r\nContent-Encoding: deflate\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(head + body[:1])
        time.sleep(0.3)
        sock.sendall(body[1:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert queued_or_stored(server, event_id) == 1


def test_an_uncompressed_envelope_is_bounded_by_the_envelope_limit_not_less(server):
    """An SDK that does not compress (Go's) may send up to the 200 MiB envelope as is."""
    event_id = uuid.uuid4().hex
    filler = b"\0" * (48 * 1024 * 1024)
    body = (
        json.dumps({"event_id": event_id}).encode() + b"\n"
        + b'{"type":"event"}\n{"message":"with a big dump"}\n'
        + json.dumps({"type": "attachment", "length": len(filler)}).encode() + b"\n"
        + filler + b"\n"
    )  # fmt: skip
    before = attachment_bytes(server)
    status, _headers, answer = post(server, envelope_path(server), body, auth(server))
    assert (status, answer) == (200, {"id": event_id})
    assert attachment_bytes(server) - before == len(filler)


def test_a_body_cut_short_by_a_hang_up_is_refused_not_stored(server):
    """A chunk declared longer than what comes, then the client shuts its side: the event must
    not be stored from what arrived (the server sees the hang-up while waiting for more)."""
    event_id = uuid.uuid4().hex
    body = (json.dumps({"event_id": event_id}).encode() + b"\n"
            + b'{"type":"event"}\n{"message":"cut short"}\n')  # fmt: skip
    parts = urlsplit(server.url)
    head = (
        f"POST {envelope_path(server)} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
        f"X-Sentry-Auth: {auth(server)['X-Sentry-Auth']}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + b"ffff\r\n" + body)
        time.sleep(0.3)  # the server has what was sent and waits for the rest
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    time.sleep(0.5)
    assert queued_or_stored(server, event_id) == 0
