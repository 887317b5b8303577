"""The ingest endpoints as a plain WSGI app: authenticate, bound, parse, store, answer.

The checks (``read_submission``) are shared with the ASGI twin that ``bugnet serve`` runs
(``asgi.py``); this app serves ingest under a WSGI server (``bugnet_server.wsgi``).

``/api/<id>/envelope/`` and ``/api/<id>/store/`` are the hottest paths of the server and an SDK
needs none of what Django's request cycle gives a page (sessions, logins, CSRF, URL routing,
request objects), so ``bugnet_server.wsgi`` hands them straight to ``IngestApp``, which reads
the WSGI environ itself. Only the database connection is Django's.

Every refusal is a 4xx with a JSON ``detail`` saying what was wrong; the 200 comes only after
the events are committed (see ``store.py``). Digesting happens later, in the worker.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import orjson
from django.db import connection

from bugnet_server.ingest import auth, body, envelopes, keys, rate_limits, store
from bugnet_server.ingest.errors import IngestError

logger = logging.getLogger("bugnet_server.ingest")

ENVELOPE_LIMIT = 200 * 1024 * 1024  # decompressed, as Relay
# Bytes on the wire: the same bound, as Relay applies it to the body as sent (an SDK that does
# not compress may send a whole 200 MiB envelope). Memory stays small either way: what is not
# kept (attachments) is counted and dropped as it streams.
RAW_LIMIT = ENVELOPE_LIMIT
STORE_RAW_LIMIT = 200 * 1024  # the legacy store endpoint's limits, as Relay
STORE_LIMIT = 1024 * 1024
BODY_STALL = 30.0  # seconds a body may pause between two reads
RATE_LIMIT_REASON = "key_quota"  # a key's own limit, in outcomes and X-Sentry-Rate-Limits
LOOP_LIMIT = 2 * 1024 * 1024  # decompressed bytes checked on an event loop (else: Offload)
CORS_HEADERS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, OPTIONS"),
    (
        "Access-Control-Allow-Headers",
        "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, "
        "content-type, authentication, authorization, content-encoding, transfer-encoding, "
        "sentry-trace, baggage",
    ),
    ("Access-Control-Expose-Headers", "x-sentry-error, x-sentry-rate-limits, retry-after"),
    ("Access-Control-Max-Age", "3600"),
]
# Relay tolerates a missing trailing slash and doubled slashes; so do we. [0-9], not \d: a
# Unicode digit (U+0661, Arabic-Indic one) is not a project id.
PATH = re.compile(r"/*api/+([^/]+)/+(envelope|store)/*")
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}

StartResponse = Callable[..., Any]
Headers = list[tuple[str, str]]


class Request:
    """What ingest reads of a request, whichever server interface brought it."""

    __slots__ = ("client_ip", "content_encoding", "content_length", "content_type", "headers",
                 "query")  # fmt: skip

    def __init__(self, headers: Mapping[str, str], query_string: str, client_ip: str | None):
        self.headers = headers
        self.query = dict(parse_qsl(query_string, keep_blank_values=True)) if query_string else {}
        self.content_type = headers.get("Content-Type", "").partition(";")[0].strip().lower()
        self.content_encoding = headers.get("Content-Encoding", "")
        self.content_length = _content_length(headers.get("Content-Length", ""))
        self.client_ip = client_ip or None

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        return cls(EnvironHeaders(environ), environ.get("QUERY_STRING", ""),
                   environ.get("REMOTE_ADDR"))  # fmt: skip


def _content_length(header: str) -> int | None:
    if not header:
        return None
    try:
        length = int(header)
    except ValueError:
        raise IngestError(400, f"invalid Content-Length {header[:64]!r}") from None
    if length < 0:
        raise IngestError(400, "negative Content-Length")
    return length


class EnvironHeaders(Mapping[str, str]):
    """Request headers by their HTTP name (``X-Sentry-Auth``), read from the WSGI environ."""

    __slots__ = ("_environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ

    @staticmethod
    def _key(name: str) -> str:
        key = name.upper().replace("-", "_")
        return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key

    def __getitem__(self, name: str) -> str:
        return str(self._environ[self._key(name)])

    def __iter__(self) -> Iterator[str]:
        for key in self._environ:
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").title()

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(slots=True)
class Submission:
    """What a request asks to store, read, checked and authorized, not yet stored."""

    key: keys.KeyInfo
    events: list[tuple[str, bytes]]  # (event id, JSON)
    counts: envelopes.Outcomes
    received_at: float
    sent_at: str
    client_ip: str | None
    envelope_id: str = ""  # the envelope header's event_id, answered when it holds no event
    rate_limited: int = 0  # seconds: its event was over the key's limit, the rest is stored

    def rows(self) -> store.Rows:
        return store.rows(self.key.project_id, self.events, self.counts,
                          received_at=self.received_at, sent_at=self.sent_at,
                          client_ip=self.client_ip)  # fmt: skip

    def headers(self) -> Headers:
        limited = rate_limit_headers(self.rate_limited) if self.rate_limited else []
        return [("Content-Type", "application/json"), *limited]

    def answer(self) -> bytes:
        if self.events:
            return orjson.dumps({"id": self.events[0][0]})
        return orjson.dumps({"id": self.envelope_id} if self.envelope_id else {})


class Offload(Exception):
    """``read_submission(..., on_loop=True)`` met work that must not run on an event loop: a key
    to look up in the database, or a body that decompresses past ``LOOP_LIMIT`` (a small
    compressed body can hold 200 MiB). The caller does it all again in a thread."""


def read_submission(
    request: Request, raw_id: str, endpoint: str, raw_chunks: Callable[[int], Iterator[bytes]],
    *, on_loop: bool = False,
) -> Submission:  # fmt: skip
    """Authenticate, bound, parse and check a POST to ``/api/<raw_id>/<endpoint>/``.

    ``raw_chunks(limit)`` gives the body as it arrives (413 past ``limit`` raw bytes). With
    ``on_loop`` nothing here queries the database or decompresses more than ``LOOP_LIMIT``
    bytes: ``Offload`` is raised instead.
    """
    if not (raw_id.isascii() and raw_id.isdigit()):
        raise IngestError(400, f"the project id {raw_id[:64]!r} in the URL is not a number")
    project_id = int(raw_id)
    if endpoint == "envelope" or request.content_type == "application/x-sentry-envelope":
        return _read_envelope(request, project_id, raw_chunks, on_loop)
    return _read_store(request, project_id, raw_chunks, on_loop)


class IngestApp:
    """The WSGI app for ``PATH``; anything it cannot handle is a JSON 4xx (503 if the database
    fails), never an unanswered request. (``bugnet serve`` runs the ASGI twin, ``asgi.py``.)"""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        headers: Headers
        try:
            if method == "OPTIONS":
                status, headers, content = 200, [], b""
            else:
                status, headers, content = self._dispatch(environ, method)
        except IngestError as exc:
            status, headers, content = refusal(exc)
        except Exception:
            status, headers, content = unavailable()
        finally:
            # What Django does at the end of each request: drop a connection that broke.
            connection.close_if_unusable_or_obsolete()
        headers += CORS_HEADERS
        headers.append(("Content-Length", str(len(content))))
        start_response(status_line(status), headers)
        return [content]

    def _dispatch(self, environ: dict[str, Any], method: str) -> tuple[int, Headers, bytes]:
        raw_id, endpoint = route(environ.get("PATH_INFO", ""), method)
        request = Request.from_environ(environ)

        def raw_chunks(limit: int) -> Iterator[bytes]:
            _limit_stalls(environ)
            return body.raw_chunks(environ["wsgi.input"], request.content_length, limit)

        submission = read_submission(request, raw_id, endpoint, raw_chunks)
        check_rate_limit(submission)
        store.commit(submission.rows())
        return 200, submission.headers(), submission.answer()


def route(path: str, method: str) -> tuple[str, str]:
    """The project id (as sent) and the endpoint of an ingest URL; 404 or 405 otherwise."""
    match = PATH.fullmatch(path)
    if match is None:  # the apps send only matching paths; answer sensibly anyway
        raise IngestError(404, "not an ingest URL: use /api/<project id>/envelope/")
    if method != "POST":
        raise IngestError(405, f"{method[:20]} is not allowed here: use POST")
    raw_id, endpoint = match.groups()
    return raw_id, endpoint


def status_line(status: int) -> str:
    return _STATUS_LINES.get(status, f"{status} Unknown")


def refusal(exc: IngestError) -> tuple[int, Headers, bytes]:
    status, headers, content = _json(exc.status, {"detail": exc.detail, "causes": []})
    # A header value is latin-1 and one line: keep what the reason can say within that.
    reason = exc.detail[:200].encode("latin-1", "replace").decode("latin-1")
    headers.append(("X-Sentry-Error", "".join(c if c.isprintable() else "?" for c in reason)))
    if exc.status == 429:
        seconds = getattr(exc, "retry_after", 60)
        headers.append(("Retry-After", str(seconds)))
        headers += rate_limit_headers(seconds)
    return status, headers, content


def unavailable() -> tuple[int, Headers, bytes]:
    """The answer when storing failed for a reason not the client's (the database): 503."""
    logger.exception("ingest failed")
    status, headers, content = _json(
        503, {"detail": "the server could not store this now; retry later", "causes": []}
    )
    headers.append(("Retry-After", "10"))
    return status, headers, content


def _json(status: int, payload: object) -> tuple[int, Headers, bytes]:
    return status, [("Content-Type", "application/json")], orjson.dumps(payload)


def _decoded(request: Request, raw_chunks: Callable[[int], Iterator[bytes]], raw_limit: int,
             limit: int, on_loop: bool) -> Iterator[bytes]:  # fmt: skip
    decoded = body.decompressed(raw_chunks(raw_limit), request.content_encoding, limit)
    return _within_loop_limit(decoded) if on_loop else decoded


def _within_loop_limit(chunks: Iterator[bytes]) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > LOOP_LIMIT:
            raise Offload("the body is too big to check on the event loop")
        yield chunk


def _limit_stalls(environ: dict[str, Any]) -> None:
    """Let a read of the body wait at most BODY_STALL seconds (then: 408).

    gunicorn reads bodies with no timeout at all, so every client that stops sending mid-body
    (a lying Content-Length, a dropped mobile link) would hold a worker thread for good, and a
    handful of them would stop the server. Its socket is the only place to set one.
    """
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(BODY_STALL)


def _read_envelope(request: Request, project_id: int,
                   raw_chunks: Callable[[int], Iterator[bytes]], on_loop: bool) -> Submission:  # fmt: skip
    received_at = time.time()
    credentials = auth.credentials(request.headers, request.query)
    parsed = envelopes.read_envelope(
        _decoded(request, raw_chunks, RAW_LIMIT, ENVELOPE_LIMIT, on_loop)
    )
    dsn = parsed.headers.get("dsn")
    if isinstance(dsn, str) and dsn:
        from_dsn = auth.credentials_from_dsn(dsn, project_id)
        if credentials is not None and credentials.public_key != from_dsn.public_key:
            raise IngestError(400, "the envelope's dsn header names another key than the request")
        credentials = credentials or from_dsn
    if credentials is None:
        raise IngestError(
            403, "missing authorization: send X-Sentry-Auth, sentry_key= or a dsn header"
        )
    key = _authorize(credentials.public_key, project_id, on_loop)
    header_id = parsed.headers.get("event_id")
    events = []
    for index, (_headers, payload) in enumerate(parsed.events):
        event = _event_object(payload, f"event item {index}")
        events.append((_event_id(header_id if index == 0 else None, event), payload))
    sent_at = _sent_at(parsed.headers.get("sent_at"))
    return Submission(key, events, parsed.outcomes, received_at, sent_at, request.client_ip,
                      "" if events else _envelope_id(header_id))  # fmt: skip


def _read_store(request: Request, project_id: int,
                raw_chunks: Callable[[int], Iterator[bytes]], on_loop: bool) -> Submission:  # fmt: skip
    received_at = time.time()
    credentials = auth.credentials(request.headers, request.query)
    if credentials is None:
        raise IngestError(401, "missing authorization: send X-Sentry-Auth or sentry_key=")
    key = _authorize(credentials.public_key, project_id, on_loop)
    payload = b"".join(_decoded(request, raw_chunks, STORE_RAW_LIMIT, STORE_LIMIT, on_loop))
    payload = _maybe_base64_zlib(payload)
    event = _event_object(payload, "the event")
    event_id = _event_id(None, event)
    counts = {("error", "accepted", ""): 1}
    return Submission(key, [(event_id, payload)], counts, received_at, "", request.client_ip)


def _authorize(public_key: str, project_id: int, on_loop: bool) -> keys.KeyInfo:
    try:
        return keys.authorize(public_key, project_id, lookup=not on_loop)
    except keys.Uncached:
        raise Offload("the key is not in the cache") from None


def _sent_at(value: object) -> str:
    """The envelope's ``sent_at`` if it can be a timestamp; "" (unknown) otherwise.

    It is only a hint for clock-drift correction, so a bad one is dropped rather than refused;
    a NUL byte in it would make PostgreSQL refuse the row.
    """
    if isinstance(value, str) and len(value) <= 64 and value.isprintable():
        return value
    return ""


def _maybe_base64_zlib(payload: bytes) -> bytes:
    """Old SDKs post base64(zlib(json)) with no Content-Encoding."""
    stripped = payload.lstrip()
    if not stripped or stripped[:1] in (b"{", b"["):
        return payload
    try:
        decoded = base64.b64decode(stripped, validate=True)
        out = zlib.decompressobj()
        data = out.decompress(decoded, STORE_LIMIT + 1)
    except (binascii.Error, zlib.error, ValueError):
        return payload  # not that encoding: the JSON check will say what is wrong
    if len(data) > STORE_LIMIT:
        raise IngestError(413, f"the decompressed event is over {STORE_LIMIT} bytes")
    return data


def _event_object(payload: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise IngestError(400, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise IngestError(400, f"{what} must be a JSON object")
    return value


def _envelope_id(header_id: object) -> str:
    """The envelope header's event_id, normalized, for an envelope with no event (Relay answers
    with it); "" when absent or not an id (nothing is stored under it)."""
    if not isinstance(header_id, str) or not header_id:
        return ""
    try:
        return _event_id(header_id, {})
    except IngestError:
        return ""


def _event_id(header_id: object, event: dict[str, Any]) -> str:
    candidate = header_id if isinstance(header_id, str) and header_id else event.get("event_id")
    if candidate is None or candidate == "":
        from bugnet._ids import new_event_id

        return new_event_id()
    text = str(candidate).replace("-", "").lower()
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise IngestError(400, f"invalid event_id {str(candidate)[:64]!r}: use 32 hex characters")
    return text


def check_rate_limit(submission: Submission) -> None:
    """Apply the key's limit to the submission's event (the only thing limited).

    Over it, the event and its attachments are not stored, only counted as rate limited. What
    else the envelope holds (sessions, client reports, transactions...) still is, answered with
    a 200 that states the limit (``rate_limited``), as Relay does; with nothing else, a 429.
    It queries the database: only for keys that have a limit.
    """
    key, events, now = submission.key, len(submission.events), submission.received_at
    if not key.rate_limit_per_minute or not events:
        return
    wait = rate_limits.take(key.id, key.rate_limit_per_minute, events, now)
    if not wait:
        return
    counts = submission.counts
    dropped = {("error", "rate_limited", RATE_LIMIT_REASON): events}
    counts.pop(("error", "accepted", ""), None)
    attached = counts.pop(("attachment", "accepted", ""), 0)
    if attached:
        dropped[("attachment", "rate_limited", RATE_LIMIT_REASON)] = attached
    submission.events = []
    if any(counts.values()):
        counts.update(dropped)
        submission.rate_limited = wait
        return
    store.commit(store.rows(key.project_id, [], dropped, received_at=now, sent_at="",
                            client_ip=None))  # fmt: skip
    error = IngestError(429, f"this key is limited to {key.rate_limit_per_minute} events a minute")
    error.retry_after = wait  # type: ignore[attr-defined]
    raise error


def rate_limit_headers(seconds: int) -> Headers:
    """What tells an SDK to hold its events back for ``seconds`` (integers: §4.2)."""
    return [("X-Sentry-Rate-Limits",
             f"{seconds}:error;default;security:key:{RATE_LIMIT_REASON}")]  # fmt: skip
