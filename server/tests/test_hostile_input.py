"""Hostile input over real HTTP: every malformed or abusive request gets a 4xx that says why.

Hundreds of requests an SDK would never send on purpose (truncated envelopes, lying lengths,
invalid JSON and UTF-8, bad keys, huge headers, decompression bombs, 10 MB bodies, lying
Content-Length, broken chunked framing...) are sent over raw sockets, so that nothing in the
client tidies them up. None may get a 5xx or a traceback; each refusal must carry a JSON
``detail`` (also those that gunicorn refuses before the app sees them); and afterwards the
server must still be healthy, small, and accepting events.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import random
import re
import socket
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import brotli
import pytest
import zstandard
from conftest import Server

KEY = "@KEY@"  # replaced by the server's public key, in paths, headers and bodies
PID = "@PID@"  # replaced by the server's project id
MiB = 1024 * 1024
ANY_4XX = frozenset(range(400, 500))


# -- A raw HTTP/1.1 client: sends exactly the bytes it is given. ---------------------------------


@dataclass
class Reply:
    status: int | None  # None: no answer (the client timed out or the connection closed)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    def detail(self) -> str | None:
        try:
            payload = json.loads(self.body)
        except ValueError:
            return None
        if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
            return payload["detail"]
        return None

    def __str__(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"{self.status} {self.body[:300]!r}"


def exchange(server: Server, raw: bytes, timeout: float = 30, half_close: bool = False) -> Reply:
    """Send ``raw`` and read one response (``half_close``: then tell the server that was all)."""
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    try:
        try:
            sock.sendall(raw)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered before reading everything: read what it said
        response = http.client.HTTPResponse(sock, method=raw.split(b" ", 1)[0].decode("latin-1"))
        try:
            response.begin()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return Reply(None, error=f"{type(exc).__name__}: {exc}")
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, headers, body)
    finally:
        sock.close()


# -- Cases: a request, described as data, and what the answer must be. ---------------------------


@dataclass(frozen=True)
class Expect:
    statuses: frozenset[int]
    detail: bool = True  # a 4xx must carry a JSON {"detail": ...}
    says: str = ""  # ... containing this

    def problem(self, reply: Reply) -> str:
        if reply.status is None:
            return f"expected {self.describe()}, got {reply}"
        if reply.status >= 500:
            return f"got a server error: {reply}"
        if reply.status not in self.statuses:
            return f"expected {self.describe()}, got {reply}"
        if 400 <= reply.status < 500:
            detail = reply.detail()
            if self.detail and not detail:
                return f"a {reply.status} without a JSON detail: {reply}"
            if not self.detail and not (reply.body.strip() or reply.headers.get("x-sentry-error")):
                return f"a {reply.status} without any reason: {reply}"
            if self.says and self.says not in (detail or ""):
                return f"the detail does not say {self.says!r}: {reply}"
        return ""

    def describe(self) -> str:
        named = [str(status) for status in sorted(self.statuses - ANY_4XX)]
        if self.statuses >= ANY_4XX:
            return " or ".join([*named, "a 4xx"])
        return " or ".join(str(status) for status in sorted(self.statuses))


def refused(status: int | None = None, says: str = "") -> Expect:
    """A refusal by the ingest view: the status (any 4xx if None) and a JSON detail."""
    return Expect(ANY_4XX if status is None else frozenset({status}), True, says)


ACCEPTED = Expect(frozenset({200}))
ANSWERED = Expect(frozenset({200}) | ANY_4XX)  # valid or not: never a 5xx, never silence
# Refused by gunicorn before the app runs (request line, header limits, framing): a 4xx with a
# JSON detail all the same (bugnet_server.runtime.httpd gives gunicorn's refusals our form).
FRONT_DOOR = Expect(ANY_4XX)


@dataclass(frozen=True)
class Case:
    name: str
    expect: Expect
    body: bytes | Callable[[], bytes] = b""  # a callable for big bodies, built when sent
    method: str = "POST"
    path: str = f"/api/{PID}/envelope/"
    auth: str = "header"  # header (X-Sentry-Auth), query (?sentry_key=), none
    headers: tuple[tuple[str, str | bytes], ...] = ()
    framing: str = "length"  # length: a true Content-Length; chunked; none (headers say all)
    request_line: bytes | None = None  # a whole raw request instead of the above
    timeout: float = 30
    half_close: bool = False  # shut the socket for writing once sent (the client hangs up)


def render(server: Server, case: Case) -> bytes:
    """The request's bytes, with @KEY@ and @PID@ filled in."""

    def fill(value: str | bytes) -> bytes:
        data = value.encode("latin-1") if isinstance(value, str) else value
        data = data.replace(KEY.encode(), server.public_key.encode())
        return data.replace(PID.encode(), str(server.project_id).encode())

    if case.request_line is not None:
        return fill(case.request_line)
    body = fill(case.body() if callable(case.body) else case.body)
    path = case.path
    if case.auth == "query":
        path += ("&" if "?" in path else "?") + f"sentry_version=7&sentry_key={KEY}"
    parts = urlsplit(server.url)
    lines = [fill(f"{case.method} {path} HTTP/1.1"), f"Host: {parts.netloc}".encode()]
    if case.auth == "header":
        lines.append(fill(f"X-Sentry-Auth: Sentry sentry_key={KEY}, sentry_version=7, "
                          "sentry_client=hostile/1.0"))  # fmt: skip
    lines += [fill(name.encode() + b": ") + fill(value) for name, value in case.headers]
    if case.framing == "length":
        lines.append(f"Content-Length: {len(body)}".encode())
    elif case.framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        body = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def send(server: Server, case: Case) -> Reply:
    return exchange(server, render(server, case), case.timeout, case.half_close)


# -- Bodies. ------------------------------------------------------------------------------------

EVENT = b'{"event_id":"' + b"a" * 32 + b'","message":"hostile","level":"error"}'


def envelope(*lines: bytes, header: bytes = b"{}", end: bytes = b"\n") -> bytes:
    return b"\n".join([header, *lines]) + end


def item(payload: bytes, item_type: str = "event", length: Any = "exact", **extra: Any) -> bytes:
    """An item header and its payload; ``length`` is "exact", None (no length) or any value."""
    headers: dict[str, Any] = {"type": item_type, **extra}
    if length == "exact":
        headers["length"] = len(payload)
    elif length is not None:
        headers["length"] = length
    return json.dumps(headers, separators=(",", ":")).encode() + b"\n" + payload


VALID = envelope(item(EVENT))


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


def deflated(data: bytes) -> bytes:
    return zlib.compress(data)


def brotlied(data: bytes) -> bytes:
    return brotli.compress(data)


def zstded(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzipped, "deflate": deflated, "br": brotlied, "zstd": zstded,
}  # fmt: skip


@cache
def bomb(encoding: str, prefix: bytes, size: int = 1024 * MiB) -> bytes:
    """``prefix`` then ``size`` zero bytes, compressed: ~1 MB of gzip becomes 1 GiB."""
    block = bytes(MiB)
    chunks = size // MiB
    if encoding in ("gzip", "deflate"):
        # Full flushes make every 1 MiB of zeros compress to the same bytes: build one block
        # and repeat it, with the right checksums (a real bomb, in milliseconds).
        wbits = 31 if encoding == "gzip" else 15
        compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
        head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
        first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
        repeat = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
        final = compressor.flush()[:2]  # the empty last block, without the old trailer
        crc, adler = zlib.crc32(prefix), zlib.adler32(prefix)
        for _ in range(chunks):
            crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
        total = len(prefix) + size
        if encoding == "gzip":
            trailer = struct.pack("<II", crc, total & 0xFFFFFFFF)
        else:
            trailer = struct.pack(">I", adler)
        return head + first + repeat * (chunks - 1) + final + trailer
    if encoding == "br":
        compressor = brotli.Compressor(quality=5)
        out = [compressor.process(prefix)] + [compressor.process(block) for _ in range(chunks)]
        return b"".join(out) + compressor.finish()
    zstd = zstandard.ZstdCompressor(level=3).compressobj()
    out = [zstd.compress(prefix)] + [zstd.compress(block) for _ in range(chunks)]
    return b"".join(out) + zstd.flush()


def zstd_big_window() -> bytes:
    """A zstd frame that asks the decoder for a 128 MiB window (zstd's default maximum)."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    prefix = b'{}\n{"type":"attachment","length":100000000}\n'
    return compressor.compress(prefix + bytes(100_000_000)) + compressor.flush()


def noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


# -- The cases. ---------------------------------------------------------------------------------


def envelope_structure_cases() -> list[Case]:
    bad = refused(400)
    cases = [
        Case("empty-body", refused(400, "empty")),
        Case("only-a-newline", bad, b"\n"),
        Case("only-newlines", bad, b"\n\n\n\n"),
        Case("plain-text", bad, b"hello world"),
        Case("html", bad, b"<html><body>hi</body></html>\n"),
        Case("header-array", bad, b"[]\n" + item(EVENT)),
        Case("header-string", bad, b'"envelope"\n' + item(EVENT)),
        Case("header-null", bad, b"null\n" + item(EVENT)),
        Case("header-number", bad, b"12345\n" + item(EVENT)),
        Case("header-true", bad, b"true\n"),
        Case("header-truncated-json", bad, b'{"event_id":"' + b"a" * 20 + b"\n"),
        Case("header-single-quotes", bad, b"{'event_id': 'x'}\n"),
        Case("header-trailing-garbage", bad, b"{}garbage\n" + item(EVENT)),
        Case("header-two-objects", bad, b"{}{}\n" + item(EVENT)),
        Case("header-nan", bad, b'{"sent_at":NaN}\n'),
        Case("header-deeply-nested", bad, b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}\n"),
        Case("header-over-64-KiB", bad, b'{"x":"' + b"x" * (70 * 1024) + b'"}\n' + item(EVENT)),
        Case("header-10000-chars-is-fine", ACCEPTED,
             envelope(item(EVENT), header=b'{"x":"' + b"x" * 10_000 + b'"}')),
        Case("item-header-10000-chars-is-fine", ACCEPTED,
             envelope(item(EVENT, x="y" * 10_000))),
        Case("item-header-over-64-KiB", bad, envelope(item(EVENT, x="y" * 70 * 1024))),
        Case("item-header-array", bad, envelope(b"[]", EVENT)),
        Case("item-header-string", bad, envelope(b'"event"', EVENT)),
        Case("item-header-number", bad, envelope(b"7", EVENT)),
        Case("item-header-null", bad, envelope(b"null", EVENT)),
        Case("item-header-false", bad, envelope(b"false", EVENT)),
        Case("item-header-invalid-json", bad, envelope(b"{type:event}", EVENT)),
        Case("item-header-truncated", bad, envelope(b'{"type":"ev')),
        Case("item-missing-type", bad, envelope(b'{"length":2}', b"{}")),
        Case("item-empty-type", bad, envelope(b'{"type":"","length":2}', b"{}")),
        Case("item-type-number", bad, envelope(b'{"type":1,"length":2}', b"{}")),
        Case("item-type-null", bad, envelope(b'{"type":null,"length":2}', b"{}")),
        Case("item-type-list", bad, envelope(b'{"type":["event"],"length":2}', b"{}")),
        Case("item-type-object", bad, envelope(b'{"type":{"a":1},"length":2}', b"{}")),
        Case("empty-item-header-mid-envelope", bad, envelope(b"", item(EVENT))),
        Case("crlf-line-endings", ACCEPTED, b'{}\r\n{"type":"event"}\r\n' + EVENT + b"\r\n"),
        Case("an-empty-envelope-is-fine", ACCEPTED, b"{}"),
        Case("two-event-items", bad, envelope(item(EVENT), item(EVENT.replace(b"a" * 32,
                                                                              b"b" * 32)))),
        Case("event-and-transaction", ANSWERED,
             envelope(item(EVENT), item(b'{"type":"transaction"}', "transaction"))),
        Case("many-event-items", bad, lambda: envelope(*[item(EVENT)] * 200)),
    ]  # fmt: skip
    for seed in range(8):
        garbage = noise(seed, 64 + seed * 300)
        cases.append(Case(f"random-bytes-{seed}", bad, garbage))
        cases.append(Case(f"valid-header-then-random-bytes-{seed}", bad,
                          b"{}\n" + garbage.replace(b"\n", b"")))  # fmt: skip
    return cases


def length_cases() -> list[Case]:
    size = len(EVENT)
    bad = refused(400)
    cases = [
        Case(f"length-{name}", expect, envelope(item(EVENT, length=value), end=b""))
        for name, value, expect in [
            ("longer-by-1", size + 1, bad), ("longer-by-10", size + 10, bad),
            ("longer-by-1000", size + 1000, bad), ("shorter-by-1", size - 1, bad),
            ("shorter-by-10", size - 10, bad), ("zero", 0, bad), ("negative", -1, bad),
            ("very-negative", -(2**62), bad), ("float", float(size), bad),
            ("float-fraction", size + 0.5, bad), ("exponent", 1e2, bad),
            ("string", str(size), bad), ("true", True, bad), ("false", False, bad),
            ("object", {"n": size}, bad), ("list", [size], bad),
            ("over-u64", 2**64 + 1, bad), ("int64-max", 2**63 - 1, refused(413)),
            ("2-GiB", 2**31, refused(413)), ("null-means-absent", None, ACCEPTED),
        ]
    ]  # fmt: skip
    cases += [
        Case("length-longer-than-envelope-attachment", bad,
             envelope(item(b"abc", "attachment", length=10**6))),
        Case("length-past-the-attachment-limit", refused(413, "attachment"),
             envelope(item(b"abc", "attachment", length=10**12))),
        Case("length-shorter-attachment", bad, envelope(item(b"abcdef", "attachment", length=2))),
        Case("length-literal-huge-number", bad,
             envelope(b'{"type":"event","length":' + b"9" * 400 + b"}", EVENT)),
        Case("length-inside-payload-newline-is-fine", ACCEPTED,
             envelope(item(b'{"message":\n"x"}'))),
        Case("no-length-event-with-newline-inside", bad,
             envelope(item(b'{"message":\n"x"}', length=None))),
    ]  # fmt: skip
    # A recorded envelope cut at many points inside its sized event payload: always a 400.
    full = envelope(item(b'{"message":"' + b"m" * 400 + b'"}'))
    start = full.index(b"\n", full.index(b"\n") + 1) + 1
    for fraction in range(1, 21):
        cut = start + (len(full) - 1 - start) * fraction // 21
        cases.append(Case(f"truncated-at-{fraction}-of-21", bad, full[:cut]))
    # And without lengths (as the Node SDK sends), cut inside the payload: invalid JSON.
    loose = envelope(item(b'{"message":"' + b"n" * 400 + b'"}', length=None), end=b"")
    start = loose.index(b"\n", loose.index(b"\n") + 1) + 1
    for fraction in range(1, 6):
        cut = start + (len(loose) - start) * fraction // 6
        cases.append(Case(f"truncated-no-length-at-{fraction}-of-6", bad, loose[:cut]))
    return cases


def payload_cases() -> list[Case]:
    bad = refused(400)
    big_string = b'{"message":"' + b"x" * MiB + b'"}'
    exactly = b'{"message":"' + b"x" * (MiB - 15) + b'"}'
    assert len(exactly) == MiB - 1
    return [
        Case("event-array", bad, envelope(item(b"[]"))),
        Case("event-string", bad, envelope(item(b'"boom"'))),
        Case("event-number", bad, envelope(item(b"42"))),
        Case("event-null", bad, envelope(item(b"null"))),
        Case("event-true", bad, envelope(item(b"true"))),
        Case("event-empty", bad, envelope(item(b""))),
        Case("event-empty-no-length", bad, envelope(item(b"", length=None))),
        Case("event-invalid-json", bad, envelope(item(b'{"message":'))),
        Case("event-trailing-garbage", bad, envelope(item(b'{"message":"x"}xyz'))),
        Case("event-single-quotes", bad, envelope(item(b"{'message':'x'}"))),
        Case("event-nan", bad, envelope(item(b'{"x":NaN}'))),
        Case("event-infinity-number", bad, envelope(item(b'{"x":1e999}'))),
        Case("event-deeply-nested", bad, envelope(item(b"[" * 100_000 + b"]" * 100_000))),
        Case("event-lone-surrogate-escape", bad, envelope(item(b'{"message":"\\ud800"}'))),
        Case("event-invalid-utf8", bad, envelope(item(b'{"message":"\xff\xfe"}'))),
        Case("event-overlong-utf8", bad, envelope(item(b'{"message":"\xc0\xaf"}'))),
        Case("event-utf8-surrogate", bad, envelope(item(b'{"message":"\xed\xa0\x80"}'))),
        Case("event-truncated-utf8", bad, envelope(item(b'{"message":"\xe2\x82"}'))),
        Case("event-utf16", bad, envelope(item('{"message":"x"}'.encode("utf-16")))),
        Case("event-utf8-bom", refused(400), envelope(item(b"\xef\xbb\xbf" + EVENT))),
        Case("event-nul-escape-is-fine", ACCEPTED, envelope(item(b'{"message":"a\\u0000b"}'))),
        Case("event-raw-nul-byte", bad, envelope(item(b'{"message":"a\x00b"}'))),
        Case("event-raw-control-chars", bad, envelope(item(b'{"message":"a\x01\x1fb"}'))),
        Case("event-over-1-MiB-with-length", refused(413), envelope(item(big_string))),
        Case("event-over-1-MiB-without-length", refused(413),
             envelope(item(big_string, length=None))),
        Case("event-just-under-1-MiB-is-fine", ACCEPTED, envelope(item(exactly))),
        Case("event-1-MiB-of-whitespace", refused(413), envelope(item(b" " * (MiB + 5)))),
        # Items counted but not kept have Relay's limits too (protocol §3.5).
        Case("transaction-over-1-MiB-with-length", refused(413, "transaction"),
             envelope(item(big_string, "transaction"))),
        Case("transaction-over-1-MiB-without-length", refused(413, "transaction"),
             envelope(item(big_string, "transaction", length=None))),
        Case("client-report-over-4-KiB", refused(413, "client_report"),
             envelope(item(b'{"x":"' + b"x" * 5000 + b'"}', "client_report"))),
        Case("check-in-over-100-KiB", refused(413, "check_in"),
             envelope(item(b'{"x":"' + b"x" * 110_000 + b'"}', "check_in", length=None))),
        Case("span-just-under-1-MiB-is-fine", ACCEPTED, envelope(item(exactly, "span"))),
        Case("header-invalid-utf8", bad, envelope(item(EVENT), header=b'{"x":"\xff"}')),
        Case("header-lone-surrogate", bad, envelope(item(EVENT), header=b'{"x":"\\udc00"}')),
        Case("header-sent-at-nul", ANSWERED,
             envelope(item(EVENT), header=b'{"sent_at":"2026-01-01T00:00:00\\u0000Z"}')),
        Case("header-sent-at-number", ANSWERED, envelope(item(EVENT), header=b'{"sent_at":5}')),
        Case("header-sent-at-huge", ANSWERED,
             envelope(item(EVENT), header=b'{"sent_at":"' + b"9" * 5000 + b'"}')),
        Case("header-sent-at-garbage", ANSWERED,
             envelope(item(EVENT), header=b'{"sent_at":"yesterday\\ud83d\\ude00"}')),
        Case("item-header-invalid-utf8", bad, envelope(b'{"type":"event\xff"}', EVENT)),
        Case("attachment-invalid-utf8-is-fine", ACCEPTED,
             envelope(item(b"\xff\xfe\x00binary\nwith newline", "attachment", filename="x"))),
    ]  # fmt: skip


def event_id_cases() -> list[Case]:
    bad = refused(400, "event_id")
    bodies = {
        "header-word": envelope(item(EVENT), header=b'{"event_id":"xyz"}'),
        "header-31-hex": envelope(item(EVENT), header=b'{"event_id":"' + b"a" * 31 + b'"}'),
        "header-33-hex": envelope(item(EVENT), header=b'{"event_id":"' + b"a" * 33 + b'"}'),
        "header-not-hex": envelope(item(EVENT), header=b'{"event_id":"' + b"g" * 32 + b'"}'),
        "header-10000-chars": envelope(item(EVENT), header=b'{"event_id":"' + b"f" * 10_000
                                       + b'"}'),
        "header-unicode": envelope(item(EVENT), header='{"event_id":"\uff41\uff41"}'.encode()),
        "header-arabic-digits": envelope(item(EVENT),
                                         header=('{"event_id":"' + "\u0661" * 32 + '"}').encode()),
        "payload-word": envelope(item(b'{"event_id":"zz"}')),
        "payload-number": envelope(item(b'{"event_id":12345}')),
        "payload-list": envelope(item(b'{"event_id":["a"]}')),
        "payload-object": envelope(item(b'{"event_id":{"a":1}}')),
        "payload-true": envelope(item(b'{"event_id":true}')),
        "store-word": b'{"event_id":"not-an-id"}',
    }  # fmt: skip
    cases = [
        Case(f"event-id-{name}", bad, body,
             path=f"/api/{PID}/store/" if name.startswith("store") else f"/api/{PID}/envelope/")
        for name, body in bodies.items()
    ]  # fmt: skip
    dashed = b'{"event_id":"' + b"12345678-1234-4234-8234-1234567890ab" + b'"}'
    cases += [
        Case("event-id-with-dashes-is-fine", ACCEPTED, envelope(item(EVENT), header=dashed)),
        Case("event-id-header-not-a-string", ANSWERED,
             envelope(item(EVENT), header=b'{"event_id":123}')),
        Case("event-id-null-is-generated", ACCEPTED, envelope(item(b'{"event_id":null}'))),
    ]  # fmt: skip
    return cases


def unknown_item_cases() -> list[Case]:
    """Unknown and skipped item types are accepted (200), with or without lengths."""
    blob = noise(99, 3000)
    return [
        Case("unknown-type-with-length", ACCEPTED, envelope(item(b'{"a":1}', "no_such_type"))),
        Case("unknown-type-without-length", ACCEPTED,
             envelope(item(b'{"a":1}', "no_such_type", length=None))),
        Case("unknown-type-no-final-newline", ACCEPTED,
             envelope(item(b"xyz", "mystery", length=None), end=b"")),
        Case("unknown-type-binary-with-length", ACCEPTED, envelope(item(blob, "mystery"))),
        Case("unknown-type-invalid-json-payload", ACCEPTED,
             envelope(item(b"{not json", "mystery"))),
        Case("unknown-type-empty-payload", ACCEPTED, envelope(item(b"", "mystery"))),
        Case("unknown-type-10000-chars", ACCEPTED, envelope(item(b"{}", "t" * 10_000))),
        Case("unknown-type-unicode", ACCEPTED, envelope(item(b"{}", "événement💥"))),
        Case("unknown-type-then-event", ACCEPTED,
             envelope(item(blob, "mystery"), item(EVENT))),
        Case("event-then-unknown-type", ACCEPTED,
             envelope(item(EVENT), item(b"tail", "mystery", length=None))),
        Case("thousand-unknown-items", ACCEPTED,
             envelope(*[item(b"{}", f"kind_{n}") for n in range(1000)])),
        Case("reserved-types", ACCEPTED,
             envelope(*[item(b"{}", t) for t in ("security", "unreal_report", "form_data",
                                                  "raw_security", "nel", "integration")])),
        Case("known-types-with-garbage-payloads", ACCEPTED,
             envelope(*[item(b"\x00garbage\xff", t) for t in ("session", "sessions",
                        "transaction", "client_report", "check_in", "log", "span", "profile",
                        "replay_event", "replay_recording", "attachment", "feedback")])),
        Case("span-item-count-is-fine", ACCEPTED,
             envelope(item(b'{"items":[{},{}]}', "span", item_count=2))),
        Case("span-item-count-negative", refused(400, "item_count"),
             envelope(item(b'{"items":[]}', "span", item_count=-1))),
        Case("log-item-count-huge", refused(400, "item_count"),
             envelope(item(b'{"items":[]}', "log", item_count=2**63))),
        Case("trace-metric-item-count-string", refused(400, "item_count"),
             envelope(item(b'{"items":[]}', "trace_metric", item_count="2"))),
        Case("attachment-10-MB", ACCEPTED,
             lambda: envelope(item(bytes(10 * 1000 * 1000), "attachment", filename="a.bin"))),
        Case("unknown-type-10-MB-without-length", ACCEPTED,
             lambda: envelope(item(b"z" * 10 * 1000 * 1000, "mystery", length=None))),
    ]  # fmt: skip


def encoding_cases() -> list[Case]:
    bad = refused(400)
    cases: list[Case] = []
    # The same malformed envelopes, compressed: the answer must not change.
    malformed = {
        "empty": (b"", bad),
        "garbage": (b"hello world", bad),
        "header-array": (b"[]\n" + item(EVENT), bad),
        "item-header-not-object": (envelope(b"[]", EVENT), bad),
        "missing-type": (envelope(b'{"length":2}', b"{}"), bad),
        "length-longer": (envelope(item(EVENT, length=len(EVENT) + 5), end=b""), bad),
        "length-shorter": (envelope(item(EVENT, length=len(EVENT) - 5)), bad),
        "length-string": (envelope(item(EVENT, length="5")), bad),
        "event-invalid-utf8": (envelope(item(b'{"message":"\xff"}')), bad),
        "event-not-object": (envelope(item(b"[1,2]")), bad),
        "event-id-invalid": (envelope(item(EVENT), header=b'{"event_id":"nope"}'), bad),
        "event-over-1-MiB": (envelope(item(b'{"m":"' + b"x" * MiB + b'"}')), refused(413)),
        "unknown-type": (envelope(item(b"??", "mystery")), ACCEPTED),
    }
    for name, (body, expect) in malformed.items():
        for encoding, encode in ENCODERS.items():
            cases.append(Case(f"{encoding}-{name}", expect, encode(body),
                              headers=(("Content-Encoding", encoding),)))  # fmt: skip
    # Decompression bombs: 1 GiB of zeros in about 1 MB (gzip) or much less. The attachment
    # streams through until the 200 MiB envelope limit; an event without length hits 1 MiB;
    # zeros in the envelope header hit the header limit. Memory is checked at the end.
    for encoding in ENCODERS:
        headers = (("Content-Encoding", encoding),)
        prefix = b'{}\n{"type":"attachment","length":2000000000,"filename":"zeros"}\n'
        cases += [
            Case(f"{encoding}-bomb-attachment", refused(413),
                 lambda e=encoding, p=prefix: bomb(e, p), headers=headers),
            Case(f"{encoding}-bomb-event", refused(413),
                 lambda e=encoding: bomb(e, b'{}\n{"type":"event"}\n', 64 * MiB), headers=headers),
            Case(f"{encoding}-bomb-header", refused(400),
                 lambda e=encoding: bomb(e, b"", 64 * MiB), headers=headers),
        ]  # fmt: skip
    # Truncated and mislabelled compressed bodies.
    valid = envelope(item(b'{"message":"' + noise(5, 3000).hex().encode() + b'"}'))
    for encoding, encode in ENCODERS.items():
        data = encode(valid)
        for fraction in (1, 2, 3):
            cases.append(Case(f"{encoding}-truncated-at-{fraction}-of-4", bad,
                              data[: len(data) * fraction // 4],
                              headers=(("Content-Encoding", encoding),)))  # fmt: skip
        cases.append(Case(f"{encoding}-on-a-plain-body", bad, valid,
                          headers=(("Content-Encoding", encoding),)))  # fmt: skip
        cases.append(Case(f"{encoding}-on-random-bytes", bad, noise(7, 4000),
                          headers=(("Content-Encoding", encoding),)))  # fmt: skip
        cases.append(Case(f"{encoding}-with-trailing-garbage", bad, data + b"GARBAGE!" * 4,
                          headers=(("Content-Encoding", encoding),)))  # fmt: skip
    unsupported = refused(415, "Content-Encoding")
    cases += [
        Case("gzip-labelled-br", bad, gzipped(valid), headers=(("Content-Encoding", "br"),)),
        Case("br-labelled-gzip", bad, brotlied(valid), headers=(("Content-Encoding", "gzip"),)),
        Case("zstd-labelled-deflate", bad, zstded(valid),
             headers=(("Content-Encoding", "deflate"),)),
        Case("gzip-labelled-zstd", bad, gzipped(valid), headers=(("Content-Encoding", "zstd"),)),
        Case("encoding-compress", unsupported, valid, headers=(("Content-Encoding", "compress"),)),
        Case("encoding-two-codings", unsupported, gzipped(valid),
             headers=(("Content-Encoding", "gzip, br"),)),
        Case("encoding-garbage", unsupported, valid, headers=(("Content-Encoding", "x" * 500),)),
        Case("encoding-latin1-bytes", unsupported, valid,
             headers=(("Content-Encoding", b"gz\xe9p"),)),
        Case("encoding-empty-means-none", ACCEPTED, valid, headers=(("Content-Encoding", ""),)),
        Case("encoding-utf8-means-none", ACCEPTED, valid,
             headers=(("Content-Encoding", "UTF-8"),)),
        Case("zstd-128-MiB-window", refused(400, "zstd"), zstd_big_window,
             headers=(("Content-Encoding", "zstd"),)),
        Case("gzip-of-nothing-is-an-empty-body", bad, gzipped(b""),
             headers=(("Content-Encoding", "gzip"),)),
        Case("gzip-two-members-is-fine", ACCEPTED, gzipped(valid[:100]) + gzipped(valid[100:]),
             headers=(("Content-Encoding", "gzip"),)),
        Case("raw-10-MB-random", bad, lambda: noise(10, 10 * 1000 * 1000)),
        Case("raw-10-MB-event-without-length", refused(413),
             lambda: b'{}\n{"type":"event"}\n{"m":"' + b"x" * 10 * 1000 * 1000 + b'"}'),
        Case("raw-10-MB-chunked", ACCEPTED,
             lambda: envelope(item(bytes(10 * 1000 * 1000), "attachment", filename="a")),
             framing="chunked"),
        Case("raw-10-MB-gzip-random", bad, lambda: gzipped(noise(11, 10 * 1000 * 1000)),
             headers=(("Content-Encoding", "gzip"),)),
    ]  # fmt: skip
    return cases


def auth_cases() -> list[Case]:
    path = f"/api/{PID}/envelope/"
    no_key = refused(401, "sentry_key")
    rejected = refused(403)
    return [
        Case("auth-none", refused(403, "missing authorization"), VALID, auth="none"),
        Case("auth-empty-header", refused(403), VALID, auth="none",
             headers=(("X-Sentry-Auth", ""),)),
        Case("auth-just-sentry", no_key, VALID, auth="none", headers=(("X-Sentry-Auth", "Sentry"),)),
        Case("auth-garbage", no_key, VALID, auth="none", headers=(("X-Sentry-Auth", "garbage"),)),
        Case("auth-commas", no_key, VALID, auth="none", headers=(("X-Sentry-Auth", "Sentry ,,,,"),)),
        Case("auth-equals", no_key, VALID, auth="none", headers=(("X-Sentry-Auth", "Sentry ==="),)),
        Case("auth-key-without-value", no_key, VALID, auth="none",
             headers=(("X-Sentry-Auth", "Sentry sentry_key"),)),
        Case("auth-key-empty", no_key, VALID, auth="none",
             headers=(("X-Sentry-Auth", "Sentry sentry_key=, sentry_version=7"),)),
        Case("auth-unknown-key", rejected, VALID, auth="none",
             headers=(("X-Sentry-Auth", "Sentry sentry_key=" + "f" * 32),)),
        Case("auth-key-4000-chars", rejected, VALID, auth="none",
             headers=(("X-Sentry-Auth", "Sentry sentry_key=" + "k" * 4000),)),
        Case("auth-key-latin1", rejected, VALID, auth="none",
             headers=(("X-Sentry-Auth", b"Sentry sentry_key=\xe9\xff\xfe"),)),
        Case("auth-key-sql", rejected, VALID, auth="none",
             headers=(("X-Sentry-Auth", "Sentry sentry_key=' OR '1'='1"),)),
        Case("auth-version-6", refused(400, "sentry_version"), VALID, auth="none",
             headers=(("X-Sentry-Auth", f"Sentry sentry_key={KEY}, sentry_version=6"),)),
        Case("auth-version-word", refused(400, "sentry_version"), VALID, auth="none",
             headers=(("X-Sentry-Auth", f"Sentry sentry_key={KEY}, sentry_version=seven"),)),
        Case("auth-wrong-secret-is-ignored", ACCEPTED, VALID, auth="none",
             headers=(("X-Sentry-Auth", f"Sentry sentry_key={KEY}, sentry_secret=nope"),)),
        Case("auth-bearer-is-not-sentry", refused(403), VALID, auth="none",
             headers=(("Authorization", "Bearer abc"),)),
        Case("auth-authorization-garbage", no_key, VALID, auth="none",
             headers=(("Authorization", "Sentry garbage"),)),
        Case("auth-header-and-authorization", refused(401, "multiple"), VALID,
             headers=(("Authorization", f"Sentry sentry_key={KEY}"),)),
        Case("auth-header-and-query", refused(401, "multiple"), VALID,
             path=f"{path}?sentry_key={KEY}"),
        Case("auth-authorization-and-query", refused(401, "multiple"), VALID, auth="query",
             headers=(("Authorization", f"Sentry sentry_key={KEY}"),)),
        Case("auth-query-empty-key", no_key, VALID, auth="none", path=f"{path}?sentry_key="),
        Case("auth-query-unknown-key", rejected, VALID, auth="none",
             path=f"{path}?sentry_key={'0' * 32}"),
        Case("auth-query-nul-key", refused(), VALID, auth="none", path=f"{path}?sentry_key=%00"),
        Case("auth-query-key-with-nul", refused(), VALID, auth="none",
             path=f"{path}?sentry_key={KEY}%00"),
        Case("auth-query-invalid-percent-utf8", rejected, VALID, auth="none",
             path=f"{path}?sentry_key=%ff%fe"),
        Case("auth-query-key-twice", ANSWERED, VALID, auth="none",
             path=f"{path}?sentry_key=nope&sentry_key={KEY}"),
        Case("auth-query-version-6", refused(400), VALID, auth="none",
             path=f"{path}?sentry_key={KEY}&sentry_version=6"),
        Case("auth-dsn-header-other-key", refused(400, "dsn"),
             envelope(item(EVENT), header=f'{{"dsn":"http://{"e" * 32}@h/{PID}"}}'.encode())),
        Case("auth-dsn-header-other-project", refused(400, "dsn"),
             envelope(item(EVENT), header=f'{{"dsn":"http://{KEY}@h/999999"}}'.encode())),
        Case("auth-dsn-header-invalid", refused(400, "dsn"), auth="none",
             body=envelope(item(EVENT), header=b'{"dsn":"not a dsn"}')),
        Case("auth-dsn-header-superscript-project", refused(400, "dsn"), auth="none",
             body=envelope(item(EVENT), header=f'{{"dsn":"http://{KEY}@h/\u00b2"}}'.encode())),
        Case("auth-dsn-header-superscript-port", refused(400, "dsn"), auth="none",
             body=envelope(item(EVENT), header=f'{{"dsn":"http://{KEY}@h:\u00b2/{PID}"}}'.encode())),
        Case("auth-dsn-header-superscript-port-with-auth", refused(400, "dsn"),
             envelope(item(EVENT), header=f'{{"dsn":"http://{KEY}@h:1\u00b2/{PID}"}}'.encode())),
        Case("auth-dsn-header-5000-digit-project", refused(400, "dsn"), auth="none",
             body=envelope(item(EVENT), header=f'{{"dsn":"http://{KEY}@h/{"9" * 5000}"}}'
                           .encode())),
        Case("auth-dsn-header-nul-key", refused(), auth="none",
             body=envelope(item(EVENT), header=f'{{"dsn":"http://a\\u0000b@h/{PID}"}}'.encode())),
        Case("auth-dsn-header-not-a-string", refused(403), auth="none",
             body=envelope(item(EVENT), header=b'{"dsn":{"key":"x"}}')),
        Case("auth-dsn-header-alone-is-fine", ACCEPTED, auth="none",
             body=envelope(item(EVENT), header=f'{{"dsn":"http://{KEY}@h/{PID}"}}'.encode())),
        Case("auth-100-KB-x-sentry-auth", FRONT_DOOR, VALID, auth="none",
             headers=(("X-Sentry-Auth", f"Sentry sentry_key={KEY}, x=" + "x" * 100_000),)),
        Case("auth-10000-char-x-sentry-auth", FRONT_DOOR, VALID, auth="none",
             headers=(("X-Sentry-Auth", f"Sentry sentry_key={KEY}, x=" + "x" * 10_000),)),
    ]  # fmt: skip


def project_cases() -> list[Case]:
    rejected = refused(403)
    return [
        Case("project-other-id", rejected, VALID, path="/api/999999/envelope/"),
        Case("project-zero", Expect(ANY_4XX, detail=False), VALID, path="/api/0/envelope/"),
        Case("project-4000-digits", rejected, VALID, path=f"/api/{'7' * 4000}/envelope/"),
        Case("project-leading-zeros-is-the-same", ACCEPTED, VALID, path=f"/api/000{PID}/envelope/"),
        Case("project-not-numeric", refused(), VALID, path="/api/shop/envelope/"),
        Case("project-negative", refused(), VALID, path="/api/-1/envelope/"),
        Case("project-unicode-digits", refused(), VALID, path="/api/%D9%A1/envelope/"),
        Case("project-superscript", refused(), VALID, path="/api/%C2%B2/envelope/"),
        Case("project-float", refused(), VALID, path="/api/1.5/envelope/"),
        Case("project-other-id-store", rejected, EVENT, path="/api/999999/store/"),
        Case("project-not-numeric-store", refused(), EVENT, path="/api/x/store/"),
        Case("unknown-ingest-endpoint", Expect(ANY_4XX, detail=False), VALID,
             path=f"/api/{PID}/minidump/"),
    ]  # fmt: skip


def store_cases() -> list[Case]:
    path = f"/api/{PID}/store/"
    bad = refused(400)
    cases = [
        Case("store-empty", bad, b""),
        Case("store-invalid-json", bad, b'{"message":'),
        Case("store-array", bad, b"[1,2,3]"),
        Case("store-string", bad, b'"hello"'),
        Case("store-invalid-utf8", bad, b'{"message":"\xff"}'),
        Case("store-base64-garbage", bad, base64.b64encode(noise(3, 500))),
        Case("store-base64-zlib-garbage", bad, base64.b64encode(zlib.compress(noise(4, 500)))),
        Case("store-base64-zlib-array", bad, base64.b64encode(zlib.compress(b"[1]"))),
        Case("store-base64-zlib-truncated", bad, base64.b64encode(zlib.compress(EVENT * 20)[:-10])),
        Case("store-base64-zlib-bomb", refused(413),
             lambda: base64.b64encode(bomb("deflate", b'{"m":"', 64 * MiB))),
        Case("store-base64-zlib-is-fine", ACCEPTED, base64.b64encode(zlib.compress(EVENT))),
        Case("store-not-base64", bad, b"!!!!not base64!!!!"),
        Case("store-over-200-KB", refused(413), b'{"m":"' + b"x" * 300_000 + b'"}'),
        Case("store-10-MB", refused(413), lambda: b'{"m":"' + b"x" * 10 * 1000 * 1000 + b'"}'),
        Case("store-gzip-bomb", refused(413), lambda: bomb("gzip", b'{"m":"', 64 * MiB),
             headers=(("Content-Encoding", "gzip"),)),
        Case("store-truncated-gzip", bad, gzipped(EVENT * 10)[:-20],
             headers=(("Content-Encoding", "gzip"),)),
        Case("store-no-auth", refused(401), EVENT, auth="none"),
        Case("store-envelope-garbage", bad, b"garbage",
             headers=(("Content-Type", "application/x-sentry-envelope"),)),
        Case("store-event-id-list", refused(400, "event_id"), b'{"event_id":[1]}'),
    ]  # fmt: skip
    return [replace(case, path=path) for case in cases]


def http_cases() -> list[Case]:
    path = f"/api/{PID}/envelope/"
    not_allowed = refused(405)
    cases = [
        Case(f"method-{method.lower()}-{where}", not_allowed, VALID, method=method,
             path=f"/api/{PID}/{where}/")
        for method in ("GET", "PUT", "DELETE", "PATCH") for where in ("envelope", "store")
    ]  # fmt: skip
    host = b"Host: 127.0.0.1\r\n"
    cases += [
        Case("method-head", Expect(frozenset({405}), detail=False), VALID, method="HEAD"),
        Case("method-made-up", not_allowed, VALID, method="FROBNICATE"),
        Case("content-length-shorter-than-body", refused(400), VALID, framing="none",
             headers=(("Content-Length", str(len(VALID) - 20)),)),
        Case("content-length-zero-with-body", refused(400, "empty"), VALID, framing="none",
             headers=(("Content-Length", "0"),)),
        Case("content-length-over-the-limit", refused(413), VALID, framing="none",
             headers=(("Content-Length", str(201 * 1024 * 1024)),)),
        Case("content-length-huge", refused(413), VALID, framing="none",
             headers=(("Content-Length", "9" * 40),)),
        Case("content-length-negative", FRONT_DOOR, VALID, framing="none",
             headers=(("Content-Length", "-5"),)),
        Case("content-length-word", FRONT_DOOR, VALID, framing="none",
             headers=(("Content-Length", "abc"),)),
        Case("content-length-float", FRONT_DOOR, VALID, framing="none",
             headers=(("Content-Length", "12.5"),)),
        Case("content-length-twice", FRONT_DOOR, VALID, framing="none",
             headers=(("Content-Length", str(len(VALID))), ("Content-Length", "3"))),
        Case("content-length-and-chunked", FRONT_DOOR, VALID, framing="none",
             headers=(("Content-Length", str(len(VALID))), ("Transfer-Encoding", "chunked"))),
        Case("transfer-encoding-unknown", FRONT_DOOR, VALID, framing="none",
             headers=(("Transfer-Encoding", "gzip"),)),
        Case("chunked-invalid-size", refused(400), b"zz\r\n" + VALID + b"\r\n0\r\n\r\n",
             framing="none", headers=(("Transfer-Encoding", "chunked"),)),
        Case("chunked-size-too-big-then-hang-up", refused(400), b"ffff\r\n" + VALID,
             framing="none", headers=(("Transfer-Encoding", "chunked"),), half_close=True),
        Case("chunked-missing-terminator", refused(400),
             b"%x\r\n" % len(VALID) + VALID + b"XX0\r\n\r\n", framing="none",
             headers=(("Transfer-Encoding", "chunked"),)),
        Case("chunked-bad-extension", refused(400),
             b"%x;\x01\x02\r\n" % len(VALID) + VALID + b"\r\n0\r\n\r\n", framing="none",
             headers=(("Transfer-Encoding", "chunked"),)),
        Case("chunked-negative-size", refused(400), b"-5\r\n" + VALID + b"\r\n0\r\n\r\n",
             framing="none", headers=(("Transfer-Encoding", "chunked"),)),
        Case("chunked-no-last-chunk-then-hang-up", refused(400), b"%x\r\n" % len(VALID)
             + VALID + b"\r\n", framing="none", headers=(("Transfer-Encoding", "chunked"),),
             half_close=True),
        Case("content-length-longer-then-hang-up", refused(400, "Content-Length"), VALID,
             framing="none", headers=(("Content-Length", str(len(VALID) + 500)),),
             half_close=True),
        Case("no-content-length-no-body", refused(400, "empty"), b"", framing="none"),
        Case("header-10000-chars", FRONT_DOOR, VALID, headers=(("X-Padding", "p" * 10_000),)),
        Case("header-100-KB", FRONT_DOOR, VALID, headers=(("X-Padding", "p" * 100_000),)),
        Case("header-many", FRONT_DOOR, VALID,
             headers=tuple((f"X-H{n}", "v") for n in range(300))),
        Case("header-name-invalid", FRONT_DOOR, VALID, headers=(("Bad Header", "v"),)),
        Case("header-nul-value", FRONT_DOOR, VALID, headers=(("X-Nul", b"a\x00b"),)),
        Case("header-latin1-value-is-fine", ACCEPTED, VALID, headers=(("X-Latin", b"caf\xe9"),)),
        Case("header-utf8-value-is-fine", ACCEPTED, VALID,
             headers=(("X-Utf8", "café 💥".encode()),)),
        Case("header-folded", FRONT_DOOR, VALID, headers=(("X-Fold", b"a\r\n  b"),)),
        Case("request-line-10000-chars", FRONT_DOOR, VALID, path=f"{path}?x={'q' * 10_000}"),
        Case("request-line-garbage", FRONT_DOOR, request_line=b"GARBAGE\r\n\r\n"),
        Case("request-line-binary", FRONT_DOOR, request_line=noise(12, 200).replace(b"\n", b"")
             + b"\r\n\r\n"),
        Case("request-line-http-0.9", FRONT_DOOR, request_line=f"GET {path}\r\n\r\n".encode()),
        Case("request-line-bad-version", FRONT_DOOR,
             request_line=f"POST {path} HTTP/7.3\r\n".encode() + host + b"\r\n"),
        Case("request-line-lowercase-method", FRONT_DOOR,
             request_line=f"post {path} HTTP/1.1\r\n".encode() + host
             + b"Content-Length: 0\r\n\r\n"),
        Case("request-http-1.0-without-host-is-fine", ACCEPTED, request_line=(
            f"POST {path}?sentry_key={KEY} HTTP/1.0\r\n".encode()
            + b"Content-Length: %d\r\n\r\n" % len(VALID) + VALID)),
        Case("host-header-invalid", Expect(ANY_4XX, detail=False), VALID,
             headers=(("Host", "bad host!"),)),
        Case("expect-100-continue", ACCEPTED, VALID, headers=(("Expect", "100-continue"),)),
        Case("expect-unknown", FRONT_DOOR, VALID, headers=(("Expect", "teapot"),)),
        Case("content-type-weird", ACCEPTED, VALID, headers=(("Content-Type", "x/y; a=\xff"),)),
        Case("cookie-garbage", ACCEPTED, VALID,
             headers=(("Cookie", "sessionid=" + "%" * 200 + "; csrftoken=;;;=;"),)),
        Case("doubled-slashes-are-fine", ACCEPTED, VALID, path=f"//api//{PID}//envelope//"),
        Case("path-traversal", Expect(ANY_4XX, detail=False), VALID,
             path=f"/api/{PID}/envelope/../../../etc/passwd"),
    ]  # fmt: skip
    return cases


def all_cases() -> list[Case]:
    cases = [
        *envelope_structure_cases(), *length_cases(), *payload_cases(), *event_id_cases(),
        *unknown_item_cases(), *encoding_cases(), *auth_cases(), *project_cases(),
        *store_cases(), *http_cases(),
    ]  # fmt: skip
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


CASES = all_cases()
_output_start: dict[str, int] = {}  # server URL → where its output was when the cases began


def test_there_are_at_least_200_hostile_cases():
    assert len(CASES) >= 200


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_request_gets_a_4xx_with_a_reason(server, case):
    _output_start.setdefault(server.url, len(server.output))
    problem = case.expect.problem(send(server, case))
    assert not problem, f"{case.name}: {problem}"


# -- Requests that stall or lie about their size. -----------------------------------------------


def healthy(server: Server, timeout: float = 5) -> bool:
    try:
        reply = exchange(server, health_request(server), timeout)
    except OSError:
        return False
    return reply.status == 200


def health_request(server: Server) -> bytes:
    return f"GET /_health/ HTTP/1.1\r\nHost: {urlsplit(server.url).netloc}\r\n\r\n".encode()


def test_a_stalled_body_is_cut_off_and_the_server_keeps_serving(server):
    """Clients that promise more body than they send (a lying Content-Length, an unfinished
    chunked body) get a 408 after the server's stall timeout; meanwhile everyone else is served."""
    if server.database_url.startswith("postgresql"):
        pytest.skip("HTTP-layer behaviour, the same on every database; run once to save 30 s")
    _output_start.setdefault(server.url, len(server.output))
    stalled = [
        Case("lying-length", ANSWERED, VALID, framing="none", timeout=45,
             headers=(("Content-Length", str(len(VALID) + 1000)),)),
        Case("unfinished-chunk", ANSWERED, b"%x\r\n" % (len(VALID) + 1000) + VALID,
             framing="none", timeout=45, headers=(("Transfer-Encoding", "chunked"),)),
    ] * 2  # fmt: skip
    replies: list[Reply] = []
    threads = [
        threading.Thread(target=lambda c=case: replies.append(send(server, c))) for case in stalled
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # the stalled requests are now waiting inside the server
    assert healthy(server), "the server stopped answering while clients stalled"
    reply = send(server, Case("valid-while-stalled", ACCEPTED, VALID))
    assert reply.status == 200, reply
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 40
    for reply in replies:
        assert not refused(408, "stalled").problem(reply), reply
    assert healthy(server)


def test_a_client_that_disconnects_mid_body_leaves_no_trace(server):
    _output_start.setdefault(server.url, len(server.output))
    parts = urlsplit(server.url)
    head = render(server, replace(Case("cut", ANSWERED, VALID), framing="none",
                                  headers=(("Content-Length", str(len(VALID) * 100)),)))  # fmt: skip
    for framing in (head, head.replace(b"Content-Length:", b"Transfer-Encoding: chunked\r\nX:")):
        for _ in range(5):
            with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
                sock.sendall(framing + (b"400\r\n" if b"chunked" in framing else b"") + VALID)
    assert healthy(server)


def test_an_inactive_key_is_refused(server):
    created = server.bugnet("project", "create", f"Inactive {os.urandom(4).hex()}")
    assert created.returncode == 0, created.stderr
    dsn = created.stdout.strip().splitlines()[-1]
    key, project_id = dsn.split("//", 1)[1].split("@", 1)[0], int(dsn.rsplit("/", 1)[1])
    execute(server, "UPDATE projects_projectkey SET active = %s WHERE public_key = %s",
            (False, key))  # fmt: skip
    inactive = replace(server, public_key=key, project_id=project_id)
    reply = send(inactive, Case("inactive", refused(403), VALID))
    assert not refused(403, "rejected").problem(reply)
    reply = send(inactive, Case("inactive-store", refused(403), EVENT, path=f"/api/{PID}/store/"))
    assert not refused(403).problem(reply)


# -- Afterwards. --------------------------------------------------------------------------------


def server_processes(server: Server) -> list[int]:
    """The server's process and all its descendants (gunicorn workers, the digest)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [server.process.pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def peak_memory_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def new_output(server: Server) -> list[str]:
    time.sleep(0.5)  # let the reader thread catch up with what the server printed
    return list(server.output[_output_start.get(server.url, len(server.output)) :])


def test_afterwards_the_server_is_healthy_small_and_accepts_events(server):
    """Runs after the cases above (pytest keeps the file's order for each server)."""
    assert healthy(server)
    event_id = os.urandom(16).hex()
    body = envelope(item(EVENT.replace(b"a" * 32, event_id.encode())))
    reply = send(server, Case("valid", ACCEPTED, body, auth="query", framing="chunked"))
    assert (reply.status, json.loads(reply.body)) == (200, {"id": event_id})
    assert queued_or_stored(server, event_id) == 1
    peaks = {pid: peak_memory_mib(pid) for pid in server_processes(server)}
    assert max(peaks.values()) < 200, f"a server process grew to {peaks} MiB (VmHWM)"
    errors = [record for record in log_records(new_output(server)) if is_error(record)]
    # The digest is not under test here (and may be unfinished): only the web side's errors.
    assert not [record for record in errors if "bugnet_server.digest" not in record[0]], errors


def log_records(lines: list[str]) -> list[list[str]]:
    """The server's output as log records: a line starting with a date (Django's and
    gunicorn's log formats) begins one; the lines after it (a traceback) belong to it."""
    records: list[list[str]] = []
    for line in lines:
        if re.match(r"\[?\d{4}-\d\d-\d\d", line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return records


def is_error(record: list[str]) -> bool:
    text = "".join(record)
    return "Traceback" in text or " ERROR " in record[0] or "[ERROR]" in record[0]


def execute(server: Server, sql: str, params: tuple[Any, ...]) -> None:
    """Write to the server's database directly (there is no CLI to deactivate a key)."""
    if server.database_url.startswith("sqlite"):
        with sqlite3.connect(server.database_url.removeprefix("sqlite:///"), timeout=30) as db:
            db.execute(sql.replace("%s", "?"), params)
        return
    import psycopg

    with psycopg.connect(server.database_url, autocommit=True) as db:
        db.execute(sql, params)  # type: ignore[arg-type]


def queued_or_stored(server: Server, event_id: str) -> int:
    """Where the event is: queued, or digested. One statement, so one snapshot: two would
    count an event the digest moves between them twice."""
    rows = server.query(
        "SELECT (SELECT COUNT(*) FROM ingest_queuedevent WHERE event_id = %s)"
        " + (SELECT COUNT(*) FROM issues_event WHERE event_id = %s)",
        (event_id, event_id),
    )
    return int(rows[0][0])
