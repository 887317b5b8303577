"""Reading an envelope as it streams in, keeping only the items Bugnet stores.

Items we store (events) are bounded by the protocol's per-item limit (413 beyond), and so are
client reports, read (4 KiB at most) for the SDK's counts of what it dropped; items we only
count (sessions, transactions, check-ins...) or skip (attachments, replays, unknown types) are
read past without being kept, so a 200 MiB envelope never sits in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from bugnet_server.ingest.errors import IngestError

HEADER_LIMIT = 64 * 1024
STORED_TYPES = frozenset({"event"})  # kept for the digest; every other item is only counted
REPORT_TYPE = "client_report"  # read (it is small) for the SDK's own counts of what it dropped
_MiB = 1024 * 1024
# Relay's per-item limits (protocol §3.5), decompressed: past one, 413 for the envelope, as Relay
# answers. Items not kept are checked as they stream by, never held whole.
ITEM_LIMITS = {
    "event": _MiB, "transaction": _MiB, "span": _MiB, "log": _MiB, "trace_metric": _MiB,
    "statsd": _MiB, "replay_event": _MiB, "feedback": _MiB, "check_in": 100 * 1024,
    "client_report": 4 * 1024, "attachment": 100 * _MiB, "profile": 50 * _MiB,
    "profile_chunk": 50 * _MiB, "replay_recording": 100 * _MiB,
}  # fmt: skip
# The data category of each item type, for counting what a project received.
CATEGORIES = {
    "event": "error", "transaction": "transaction", "session": "session", "sessions": "session",
    "client_report": "internal", "check_in": "monitor", "attachment": "attachment",
    "log": "log_item", "span": "span", "profile": "profile", "profile_chunk": "profile_chunk",
    "replay_event": "replay", "replay_recording": "replay", "feedback": "feedback",
    "user_report": "feedback", "trace_metric": "trace_metric", "statsd": "metric_bucket",
}  # fmt: skip


CONTAINER_TYPES = {"log", "span", "trace_metric"}  # one item, ``item_count`` entries
ITEM_COUNT_LIMIT = 100_000  # a 1 MiB item cannot hold more; bounds what a header can claim


# A client report's entries (protocol §4.4) become outcomes of their own; these bound what one
# envelope can add, since each distinct (category, reason) is a row.
REPORT_KEYS_LIMIT = 100
REPORT_QUANTITY_LIMIT = 2**32 - 1  # Relay's u32
_REPORT_CATEGORY = re.compile(r"[a-z_]{1,32}")
_REPORT_REASON = re.compile(r"[a-z0-9_.:-]{1,64}")

# (category, outcome, reason) → items (bytes for attachments)
Outcomes = dict[tuple[str, str, str], int]


@dataclass
class Envelope:
    headers: dict[str, object]
    events: list[tuple[dict[str, object], bytes]] = field(default_factory=list)  # (headers, json)
    outcomes: Outcomes = field(default_factory=dict)


class _Stream:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._eof = False
        self.offset = 0  # bytes consumed, for error messages

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def at_end(self) -> bool:
        while not self._buffer:
            if not self._fill():
                return True
        return False

    def line(self, limit: int, what: str) -> bytes:
        """Up to the next newline (not included) or the end; 413/400 past ``limit``."""
        start = 0
        while True:
            index = self._buffer.find(b"\n", start)
            if index >= 0:
                if index > limit:
                    break
                data = bytes(self._buffer[:index])
                del self._buffer[: index + 1]
                self.offset += index + 1
                return data
            start = len(self._buffer)
            if start > limit:
                break
            if not self._fill():
                data = bytes(self._buffer)
                self.offset += len(data)
                self._buffer.clear()
                return data
        raise IngestError(
            413 if what == "payload" else 400, f"{what} at byte {self.offset} is over {limit} bytes"
        )

    def skip_line(self) -> int:
        """Discard up to the next newline (included) or the end; returns the bytes before it."""
        skipped = 0
        while True:
            index = self._buffer.find(b"\n")
            if index >= 0:
                del self._buffer[: index + 1]
                self.offset += index + 1
                return skipped + index
            skipped += len(self._buffer)
            self.offset += len(self._buffer)
            self._buffer.clear()
            if not self._fill():
                return skipped

    def exact(self, size: int, keep: bool) -> bytes:
        """The next ``size`` bytes (discarded as they come when not ``keep``)."""
        kept = bytearray()
        remaining = size
        while remaining:
            if not self._buffer and not self._fill():
                raise IngestError(
                    400,
                    f"an item declares {size} bytes but the envelope ends {remaining} bytes short",
                )
            take = min(remaining, len(self._buffer))
            if keep:
                kept += self._buffer[:take]
            del self._buffer[:take]
            remaining -= take
            self.offset += take
        return bytes(kept)

    def end_of_item(self, item_type: str) -> None:
        """After a sized payload: a newline or the end of the envelope."""
        if self.at_end():
            return
        if self._buffer[:1] != b"\n":
            raise IngestError(400, f"the {item_type!r} item is longer than its declared length")
        del self._buffer[:1]
        self.offset += 1


def _json_object(line: bytes, what: str) -> dict[str, object]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise IngestError(400, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise IngestError(400, f"{what} must be a JSON object")
    return value


def read_envelope(chunks: Iterator[bytes]) -> Envelope:
    """Parse a streaming envelope; raise IngestError (400 malformed, 413 too large)."""
    stream = _Stream(chunks)
    if stream.at_end():
        raise IngestError(400, "the envelope is empty")
    envelope = Envelope(
        _json_object(stream.line(HEADER_LIMIT, "the envelope header"), "the envelope header")
    )
    while not stream.at_end():
        offset = stream.offset
        raw_header = stream.line(HEADER_LIMIT, "an item header")
        if not raw_header.strip():
            if stream.at_end():
                break  # a trailing newline
            raise IngestError(400, f"empty item header at byte {offset}")
        headers = _json_object(raw_header, f"the item header at byte {offset}")
        item_type = headers.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise IngestError(400, f"the item header at byte {offset} has no 'type'")
        length = headers.get("length")
        kept = item_type in STORED_TYPES or item_type == REPORT_TYPE
        limit = ITEM_LIMITS.get(item_type)
        if kept and any(h.get("type") == item_type for h, _ in envelope.events):
            # The protocol allows one; more would let one request hold 200 MiB of events.
            raise IngestError(400, f"an envelope holds at most one {item_type!r} item")
        if length is not None:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise IngestError(400, f"the {item_type!r} item's length must be a whole number")
            _within(item_type, length, limit)
            payload = stream.exact(length, keep=kept)
            stream.end_of_item(item_type)
        elif kept:
            payload = stream.line(ITEM_LIMITS[item_type], "payload")
        else:  # not kept: only its size counts (an attachment's bytes)
            length = stream.skip_line()
            _within(item_type, length, limit)
            payload = b""
        size = length if length is not None else len(payload)
        if item_type == REPORT_TYPE:
            _add_report(envelope.outcomes, payload)
        else:
            _count(envelope, item_type, size, _item_count(headers, item_type))
        if item_type in STORED_TYPES:
            envelope.events.append((headers, payload))
    return envelope


def _within(item_type: str, size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise IngestError(413, f"the {item_type!r} item is {size} bytes; the limit is {limit}")


def _item_count(headers: dict[str, object], item_type: str) -> int:
    """How many entries a container item (log, span, trace_metric) says it holds; else 1."""
    if item_type not in CONTAINER_TYPES or headers.get("item_count") is None:
        return 1
    count = headers["item_count"]
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= ITEM_COUNT_LIMIT:
        raise IngestError(
            400, f"the {item_type!r} item's item_count must be 0 to {ITEM_COUNT_LIMIT}"
        )
    return count


def _count(envelope: Envelope, item_type: str, size: int, entries: int) -> None:
    category = CATEGORIES.get(item_type, "default")
    amount = size if category == "attachment" else entries
    _add(envelope.outcomes, (category, "accepted", ""), amount)


def _add(outcomes: Outcomes, key: tuple[str, str, str], quantity: int) -> None:
    outcomes[key] = outcomes.get(key, 0) + quantity


def _add_report(outcomes: Outcomes, payload: bytes) -> None:
    """Count a client report (internal, accepted) and what it says the SDK discarded, as
    ``client_discard`` outcomes by category and reason, as Relay does.

    A malformed report is counted as ``invalid`` and adds nothing, rather than refusing the
    envelope it came in (which may hold an event). Only ``discarded_events`` is read: the other
    lists (``rate_limited_events``, ``filtered_events``...) are for trusted Relays only.
    """
    entries = _report_entries(payload)
    new_keys = {key for key, _ in entries or () if key not in outcomes}
    if entries is None or len(new_keys) + _report_keys(outcomes) > REPORT_KEYS_LIMIT:
        _add(outcomes, ("internal", "invalid", "invalid_client_report"), 1)
        return
    _add(outcomes, ("internal", "accepted", ""), 1)
    for key, quantity in entries:
        _add(outcomes, key, quantity)


def _report_keys(outcomes: Outcomes) -> int:
    return sum(1 for _category, outcome, _reason in outcomes if outcome == "client_discard")


def _report_entries(payload: bytes) -> list[tuple[tuple[str, str, str], int]] | None:
    """``discarded_events`` as ((category, "client_discard", reason), quantity); None when the
    report is not one."""
    try:
        report = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(report, dict):
        return None
    discarded = report.get("discarded_events") or []
    if not isinstance(discarded, list):
        return None
    entries = []
    for entry in discarded:
        if not isinstance(entry, dict):
            return None
        category, reason, quantity = (entry.get(k) for k in ("category", "reason", "quantity"))
        if not (
            isinstance(category, str) and _REPORT_CATEGORY.fullmatch(category)
            and isinstance(reason, str) and _REPORT_REASON.fullmatch(reason)
            and isinstance(quantity, int) and not isinstance(quantity, bool)
            and 0 <= quantity <= REPORT_QUANTITY_LIMIT
        ):  # fmt: skip
            return None
        if quantity:
            entries.append(((category, "client_discard", reason), quantity))
    return entries
