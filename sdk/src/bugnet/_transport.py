"""Getting envelopes to the server without ever making the app wait.

``capture_envelope`` only appends to a bounded in-memory queue; one background thread
serializes, compresses and POSTs. What cannot be delivered now (connection refused, timeout,
5xx, or still queued when the process exits) goes to the durable spool and is retried: by this
process once the server answers again, or by the next process with the same DSN. Answers 4xx
are final (dropped and reported); 429 and ``X-Sentry-Rate-Limits`` pause the limited categories.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections import deque

from bugnet._client_reports import DiscardCounter
from bugnet._envelope import Envelope, Item, dumps
from bugnet._guard import INFO, WARNING, log, report_internal_error, sdk_work
from bugnet._http import EnvelopeSender, SendResult
from bugnet._rate_limits import RateLimiter
from bugnet._spool import Claim, Spool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from bugnet._options import Options

MIN_BACKOFF = 1.0  # seconds the server counts as down after a failure, doubling each time
MAX_BACKOFF = 60.0
SPOOL_RESCAN = 10.0  # seconds between looks for envelopes other processes left in the spool


class Transport(ABC):
    """The interface a transport implements (custom ones can be passed as ``transport=``)."""

    @abstractmethod
    def capture_envelope(self, envelope: Envelope) -> None:
        """Take ``envelope`` for delivery; must neither block on the network nor raise."""

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until everything queued is handled; True if it was."""
        return True

    def close(self, timeout: float) -> None:  # noqa: B027 - optional: a default that does nothing
        """Flush within ``timeout`` and stop; what is left must not be lost if avoidable."""


class _Handover:
    """The envelope ``close()`` found in flight. ``close()`` spools a copy (the process may be
    about to exit); the worker, when its send ends, must then not spool a second one, and
    removes ``close()``'s copy if the server took the envelope after all."""

    __slots__ = ("envelope", "path", "settled")

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.path: Optional[str] = None
        self.settled = False


_live_transports: set[HttpTransport] = set()  # open ones; removed on close


def _reinit_after_fork() -> None:
    for transport in list(_live_transports):
        transport._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


class HttpTransport(Transport):
    def __init__(self, options: Options, discards: DiscardCounter) -> None:
        assert options.dsn is not None
        self._options = options
        self._dsn = options.dsn
        self._discards = discards
        self._maxsize = max(options.transport_queue_size, 1)
        self._rate_limits = RateLimiter()
        self._spool: Optional[Spool] = None
        if options.spool_dir:
            self._spool = Spool(
                os.path.join(options.spool_dir, self._dsn.spool_key),
                options.spool_max_bytes,
                options.spool_max_age,
                on_drop=self._spool_dropped,
            )
        self._init_state()
        _live_transports.add(self)
        if self._spool is not None and self._spool.has_pending():
            self._spool_pending = True
            self._ensure_worker()

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Envelope] = deque()
        self._inflight: Optional[Envelope] = None
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self._sender = EnvelopeSender(self._dsn, self._options)
        self._down_until = 0.0  # monotonic; while in the future, new envelopes go to the spool
        self._backoff = 0.0
        self._spool_pending = False
        self._last_spool_scan = time.monotonic()
        self._handover: Optional[_Handover] = None

    def _after_fork(self) -> None:
        # The parent still owns what it had queued; the child starts empty with a fresh lock.
        # (The spool resets itself: see _spool._after_fork_in_child.)
        self._init_state()
        self._discards.reset_after_fork()

    # -- the app's side -------------------------------------------------------------------

    def capture_envelope(self, envelope: Envelope) -> None:
        with self._cond:
            if self._closed:
                full = True
            elif len(self._queue) < self._maxsize:
                self._queue.append(envelope)
                self._cond.notify()
                full = False
            else:
                full = True
        if full:
            # The worker is behind (or gone): keep the envelope on disk rather than drop it.
            self._spool_or_drop(envelope, "queue_overflow")
        else:
            self._ensure_worker()

    def _ensure_worker(self) -> bool:
        """Start the worker unless it runs; False if no thread can be started (as during
        interpreter shutdown on Python 3.12+): what is queued then waits for close()."""
        if self._thread is not None and self._thread.is_alive():
            return True
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return True
            thread = threading.Thread(target=self._run, name="bugnet-transport", daemon=True)
            thread._bugnet_internal = True  # type: ignore[attr-defined]
            self._thread = thread
            try:
                thread.start()
            except RuntimeError:
                self._thread = None
                return False
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until every queued envelope is delivered or safely in the spool (True), or
        ``timeout`` passes (False). While the server answers, the rest of the time goes to
        delivering what a burst overflowed into the spool."""
        deadline = time.monotonic() + timeout
        if self._queue:
            self._ensure_worker()  # a capture on another thread may not have started it yet
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._inflight is not None:
                if self._thread is None or not self._thread.is_alive():
                    return False  # nobody to send it
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
            while self._spool_pending and time.monotonic() >= self._down_until:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    break
                self._cond.notify_all()
                self._cond.wait(min(remaining, 0.1))
        return True

    def close(self, timeout: float) -> None:
        if self._closed:
            return
        deadline = time.monotonic() + timeout
        if self._options.send_client_reports:
            report = self._discards.take_report(force=True)
            if report is not None:
                self.capture_envelope(Envelope({}, [Item.from_json("client_report", report)]))
        self.flush(timeout)
        with self._cond:
            self._closed = True
            leftovers = list(self._queue)
            self._queue.clear()
            handover = None
            if self._inflight is not None:
                handover = self._handover = _Handover(self._inflight)
            worker = self._thread
            self._cond.notify_all()
        for envelope in leftovers:
            self._spool_or_drop(envelope, "network_error")
        if handover is not None:
            # Its send has not ended in time: keep a copy, in case the process now exits.
            path = self._spool_or_drop(handover.envelope, "network_error")
            with self._cond:
                handover.path = path
                settled = handover.settled
            if settled and path is not None and self._spool is not None:
                self._spool.discard(path)
        if worker is not None and worker is not threading.current_thread():
            # It may be delivering a spooled envelope: let that send end (or the process
            # could exit after the server took it but before its file was deleted).
            worker.join(max(deadline - time.monotonic(), 0.0))
        if worker is None or not worker.is_alive():
            self._sender.close()  # else the worker closes it when it stops
        _live_transports.discard(self)

    # -- the worker's side ----------------------------------------------------------------

    def _run(self) -> None:
        with sdk_work():
            while True:
                try:
                    if not self._step():
                        break
                except Exception as exc:  # never let the worker die
                    report_internal_error(exc)
                    time.sleep(0.1)
            self._sender.close()

    def _step(self) -> bool:
        """Handle one envelope or spool delivery round; False when the transport is closed."""
        with self._cond:
            while not self._queue and not self._closed and not self._spool_due():
                self._cond.wait(self._wait_time())
            if self._closed and not self._queue:
                return False
            envelope = self._queue.popleft() if self._queue else None
            self._inflight = envelope
        try:
            if envelope is not None:
                self._deliver(envelope)
            else:
                self._drain_spool()
        finally:
            with self._cond:
                self._inflight = None
                self._cond.notify_all()
        return True

    def _wait_time(self) -> Optional[float]:
        if self._spool is None:
            return None
        if self._spool_pending and self._down_until:
            return max(self._down_until - time.monotonic(), 0.05)
        return SPOOL_RESCAN

    def _spool_due(self) -> bool:
        if self._spool is None:
            return False
        now = time.monotonic()
        if not self._spool_pending and now - self._last_spool_scan >= SPOOL_RESCAN:
            self._last_spool_scan = now
            self._spool_pending = self._spool.has_pending()
        return self._spool_pending and now >= self._down_until

    def _deliver(self, queued: Envelope) -> None:
        envelope = self._without_limited_items(queued)
        if envelope is None:
            return
        report = self._discards.take_report() if self._options.send_client_reports else None
        if report is not None:
            envelope.items.append(Item.from_json("client_report", report))
        if time.monotonic() < self._down_until:
            self._spool_or_drop(envelope, "network_error")
            return
        body = envelope.serialize_items()
        result = self._sender.post(envelope.headers, body)
        categories = [item.category for item in envelope.items]
        if self._handed_over(queued, result):
            if not result.failed:
                self._settle(result, categories)
            return
        if result.failed:
            self._mark_down()
            self._spool_bytes(
                envelope, body, "network_error" if result.status == 0 else "send_error"
            )
            return
        self._mark_up()
        self._settle(result, categories)
        if self._spool is not None and not self._spool_pending:
            self._spool_due()  # a cheap look for spool files now that the server answers

    def _handed_over(self, envelope: Envelope, result: SendResult) -> bool:
        """True if ``close()`` took ``envelope`` over while it was being sent."""
        with self._cond:
            handover = self._handover
            if handover is None or handover.envelope is not envelope:
                return False
            handover.settled = not result.failed
            path = handover.path
        if handover.settled and path is not None and self._spool is not None:
            self._spool.discard(path)  # the server has it: close()'s copy must not be resent
        return True

    def _settle(self, result: SendResult, categories: list[str]) -> None:
        """Account for a delivered (or refused) envelope."""
        self._rate_limits.update(result.status, result.headers)
        if 200 <= result.status < 300 or result.status == 429:
            return  # for a 429 the server already counted the drop
        log(
            WARNING,
            "the server refused an envelope with HTTP %s: %s",
            result.status,
            result.headers.get("x-sentry-error", ""),
        )
        for category in categories:
            if category != "internal":
                self._discards.record("send_error", category)

    def _drain_spool(self) -> None:
        """Deliver spooled envelopes, oldest first, until the spool is empty, the server fails
        or new envelopes are queued (they go first; the round resumes afterwards)."""
        assert self._spool is not None
        delivered_any = False
        server_errors = 0  # in a row
        for claim in self._spool.claims():
            if self._closed:
                claim.release()
                return
            if any(self._rate_limits.is_limited(c) for c in claim.categories):
                claim.release()  # kept until the limit expires
                continue
            result = self._deliver_claim(claim)
            if result.status == 0:
                self._mark_down()
                return  # unreachable; keep the rest for later
            if result.failed:
                # Skip it: one envelope the server keeps failing on must not hold up the rest.
                # Two server errors in a row, though, mean the server is in trouble.
                server_errors += 1
                if server_errors > 1:
                    self._mark_down()
                    return
                continue
            server_errors = 0
            delivered_any = True
            with self._cond:
                if self._queue:
                    return  # new envelopes first; the round resumes afterwards
        if server_errors and not delivered_any:
            self._mark_down()  # retry after the backoff
        else:
            self._spool_pending = False  # a skipped one waits for the next rescan
        if delivered_any:
            log(INFO, "delivered the spooled envelopes")

    def _deliver_claim(self, claim: Claim) -> SendResult:
        try:
            newline = claim.payload.index(b"\n")
            headers = _loads_object(claim.payload[:newline])
            body = claim.payload[newline + 1 :]
        except ValueError:
            claim.done()
            self._discards.record("internal_sdk_error", "error")
            return SendResult(400, {})
        result = self._sender.post(headers, body)
        if result.failed:
            claim.release()
            return result
        # Any answer but a failure is final, as for a live envelope: a 4xx is not retried, and
        # for a 429 the server has counted the drop.
        claim.done()
        self._mark_up()
        self._settle(result, claim.categories)
        return result

    def _without_limited_items(self, envelope: Envelope) -> Optional[Envelope]:
        kept = []
        for item in envelope.items:
            if self._rate_limits.is_limited(item.category):
                self._discards.record("ratelimit_backoff", item.category)
            else:
                kept.append(item)
        if not kept:
            return None
        envelope.items = kept
        return envelope

    def _mark_down(self) -> None:
        self._backoff = min(max(self._backoff * 2, MIN_BACKOFF), MAX_BACKOFF)
        self._down_until = time.monotonic() + self._backoff
        self._sender.close()

    def _mark_up(self) -> None:
        self._backoff = 0.0
        self._down_until = 0.0

    # -- spool ----------------------------------------------------------------------------

    def _spool_or_drop(self, envelope: Envelope, reason: str) -> Optional[str]:
        """Spool ``envelope`` (its path), or count it as dropped for ``reason`` (None)."""
        try:
            body = envelope.serialize_items()
        except Exception as exc:
            report_internal_error(exc)
            return None
        return self._spool_bytes(envelope, body, reason)

    def _spool_bytes(self, envelope: Envelope, body: bytes, reason: str) -> Optional[str]:
        categories = [item.category for item in envelope.items]
        if self._spool is not None:
            # sent_at is written at send time, never into the spool.
            headers = {k: v for k, v in envelope.headers.items() if k != "sent_at"}
            path = self._spool.put(dumps(headers) + b"\n" + body, categories)
            if path is not None:
                self._spool_pending = True
            return path  # if None, the spool reported the drop (disk full, read-only...)
        for category in categories:
            if category != "internal":
                self._discards.record(reason, category)
        return None

    def _spool_dropped(self, reason: str, categories: list[str]) -> None:
        for category in categories:
            if category != "internal":
                self._discards.record(reason, category)


def _loads_object(line: bytes) -> dict[str, Any]:
    import json

    value = json.loads(line)
    if not isinstance(value, dict):
        raise ValueError("envelope header is not an object")
    return value
