"""The ingest endpoints: authenticate, bound, parse, store, answer (nothing else).

Every refusal is a 4xx with a JSON ``detail`` saying what was wrong; the 200 comes only after
the events are committed (see ``store.py``). Digesting happens later, in the worker.
"""

from __future__ import annotations

import base64
import binascii
import time
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from bugnet_server.ingest import auth, body, envelopes, keys, rate_limits, store
from bugnet_server.ingest.errors import IngestError

RAW_LIMIT = 40 * 1024 * 1024  # bytes on the wire
ENVELOPE_LIMIT = 200 * 1024 * 1024  # decompressed, as Relay
STORE_RAW_LIMIT = 200 * 1024  # the legacy store endpoint's limits, as Relay
STORE_LIMIT = 1024 * 1024
BODY_STALL = 30.0  # seconds a body may pause between two reads
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, "
        "content-type, authentication, authorization, content-encoding, transfer-encoding, "
        "sentry-trace, baggage"
    ),
    "Access-Control-Expose-Headers": "x-sentry-error, x-sentry-rate-limits, retry-after",
    "Access-Control-Max-Age": "3600",
}


def health(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return _json(200, {"status": "ok"})


@csrf_exempt
def envelope_endpoint(request: HttpRequest, project_id: str) -> HttpResponse:
    return _handle(request, int(project_id), _ingest_envelope)


@csrf_exempt
def store_endpoint(request: HttpRequest, project_id: str) -> HttpResponse:
    return _handle(request, int(project_id), _ingest_store)


@csrf_exempt
def bad_project_id(request: HttpRequest, project_id: str) -> HttpResponse:
    """``/api/<not a number>/envelope/``: say so (in JSON, as every ingest refusal)."""

    def refuse(request: HttpRequest, _: int) -> HttpResponse:
        raise IngestError(400, f"the project id {project_id[:64]!r} in the URL is not a number")

    return _handle(request, 0, refuse)


def _handle(request: HttpRequest, project_id: int, ingest: Any) -> HttpResponse:
    if request.method == "OPTIONS":
        response = HttpResponse(status=200)
    else:
        try:
            if request.method != "POST":
                raise IngestError(
                    405, f"{(request.method or '')[:20]} is not allowed here: use POST"
                )
            response = ingest(request, project_id)
        except IngestError as exc:
            response = _json(exc.status, {"detail": exc.detail, "causes": []})
            response["X-Sentry-Error"] = exc.detail[:200]
            if exc.status == 429:
                _rate_limit_headers(response, getattr(exc, "retry_after", 60))
    for name, value in CORS_HEADERS.items():
        response[name] = value
    return response


def _json(status: int, payload: object) -> HttpResponse:
    return HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")


def _body(request: HttpRequest, raw_limit: int, limit: int) -> Iterator[bytes]:
    length_header = request.META.get("CONTENT_LENGTH") or ""
    try:
        length = int(length_header) if length_header else None
    except ValueError:
        raise IngestError(400, f"invalid Content-Length {length_header!r}") from None
    if length is not None and length < 0:
        raise IngestError(400, "negative Content-Length")
    _limit_stalls(request)
    raw = body.raw_chunks(request.META["wsgi.input"], length, raw_limit)
    return body.decompressed(raw, request.headers.get("Content-Encoding", ""), limit)


def _limit_stalls(request: HttpRequest) -> None:
    """Let a read of the body wait at most BODY_STALL seconds (then: 408).

    gunicorn reads bodies with no timeout at all, so every client that stops sending mid-body
    (a lying Content-Length, a dropped mobile link) would hold a worker thread for good, and a
    handful of them would stop the server. Its socket is the only place to set one.
    """
    sock = request.META.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(BODY_STALL)


def _ingest_envelope(request: HttpRequest, project_id: int) -> HttpResponse:
    received_at = time.time()
    credentials = auth.credentials(request.headers, request.GET)
    parsed = envelopes.read_envelope(_body(request, RAW_LIMIT, ENVELOPE_LIMIT))
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
    key = keys.authorize(credentials.public_key, project_id)
    header_id = parsed.headers.get("event_id")
    events = []
    for index, (_headers, payload) in enumerate(parsed.events):
        event = _event_object(payload, f"event item {index}")
        events.append((_event_id(header_id if index == 0 else None, event), payload))
    counts = {(category, "accepted"): n for category, n in parsed.counted.items()}
    _check_rate_limit(key, project_id, counts, len(events), received_at)
    store.store(
        key.project,
        events,
        counts,
        received_at=received_at,
        sent_at=_sent_at(parsed.headers.get("sent_at")),
        client_ip=_client_ip(request),
    )
    return _json(200, {"id": events[0][0]} if events else {})


def _ingest_store(request: HttpRequest, project_id: int) -> HttpResponse:
    if request.content_type == "application/x-sentry-envelope":
        return _ingest_envelope(request, project_id)
    received_at = time.time()
    credentials = auth.credentials(request.headers, request.GET)
    if credentials is None:
        raise IngestError(401, "missing authorization: send X-Sentry-Auth or sentry_key=")
    key = keys.authorize(credentials.public_key, project_id)
    payload = b"".join(_body(request, STORE_RAW_LIMIT, STORE_LIMIT))
    payload = _maybe_base64_zlib(payload)
    event = _event_object(payload, "the event")
    event_id = _event_id(None, event)
    counts = {("error", "accepted"): 1}
    _check_rate_limit(key, project_id, counts, 1, received_at)
    store.store(key.project, [(event_id, payload)], counts, received_at=received_at, sent_at="",
                client_ip=_client_ip(request))  # fmt: skip
    return _json(200, {"id": event_id})


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


def _event_id(header_id: object, event: dict[str, Any]) -> str:
    candidate = header_id if isinstance(header_id, str) and header_id else event.get("event_id")
    if candidate is None or candidate == "":
        from bugnet._ids import new_event_id

        return new_event_id()
    text = str(candidate).replace("-", "").lower()
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise IngestError(400, f"invalid event_id {str(candidate)[:64]!r}: use 32 hex characters")
    return text


def _check_rate_limit(
    key: keys.KeyInfo, project_id: int, counts: dict[tuple[str, str], int], events: int, now: float
) -> None:
    if not key.rate_limit_per_minute or not events:
        return
    wait = rate_limits.take(key.id, key.rate_limit_per_minute, events, now)
    if wait:
        store.store(key.project, [], {("error", "rate_limited"): events}, received_at=now,
                    sent_at="", client_ip=None)  # fmt: skip
        error = IngestError(
            429, f"this key is limited to {key.rate_limit_per_minute} events a minute"
        )
        error.retry_after = wait  # type: ignore[attr-defined]
        raise error


def _rate_limit_headers(response: HttpResponse, seconds: int) -> None:
    response["Retry-After"] = str(seconds)
    response["X-Sentry-Rate-Limits"] = f"{seconds}:error;default;security:key:key_quota"


def _client_ip(request: HttpRequest) -> str | None:
    value = request.META.get("REMOTE_ADDR")
    return value or None
