"""The ingest endpoints on an event loop: what ``bugnet serve``'s workers run.

The checks are ``app.py``'s (``read_submission``); what differs is who waits. A body of up to
``INLINE_LIMIT`` raw bytes (nearly every event an SDK sends) is read whole and checked right
on the loop, where it costs a fraction of a millisecond and no thread; its rows go to the
worker's writer (``writer.py``), which commits for every request waiting. A bigger body is
checked in a thread as it streams in (pulled through the loop chunk by chunk), so a 40 MB
envelope never sits in memory whole nor holds up the loop. Nor does a small body that
decompresses to a lot (past ``app.LOOP_LIMIT``): it is checked again in a thread. The database
is never queried on the loop: a key not in the cache, and a key's rate limit, are looked up in
a thread.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connection

from bugnet_server.ingest import body
from bugnet_server.ingest.app import (
    BODY_STALL,
    CORS_HEADERS,
    Headers,
    Offload,
    Request,
    Submission,
    check_rate_limit,
    read_submission,
    refusal,
    route,
    unavailable,
)
from bugnet_server.ingest.errors import IngestError
from bugnet_server.ingest.writer import LoopWriter, Writer
from bugnet_server.sqlite.base import write_lock_path

INLINE_LIMIT = 256 * 1024  # raw bytes read whole before checking, on the loop

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
T = TypeVar("T")


class ScopeHeaders(Mapping[str, str]):
    """An ASGI request's headers by name, any case; repeated headers joined with ", "."""

    __slots__ = ("_headers",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        headers: dict[str, str] = {}
        for name, value in raw:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self._headers = headers

    def __getitem__(self, name: str) -> str:
        return self._headers[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._headers.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


class _Body:
    """The request body as ``receive`` delivers it."""

    def __init__(self, receive: Receive, content_length: int | None) -> None:
        self._receive = receive
        self._framing = "its Content-Length" if content_length is not None else "its last chunk"
        self.more = True

    async def pull(self) -> bytes:
        """The next chunk; b"" at the end. TimeoutError when the client sends nothing for
        BODY_STALL seconds; a 400 when it hangs up before the body ends."""
        while self.more:
            try:
                async with asyncio.timeout(BODY_STALL):
                    message = await self._receive()
            except (TimeoutError, asyncio.CancelledError):
                raise
            except Exception as exc:
                # The HTTP server's own errors for broken chunked framing and the like: the
                # body is unreadable, which is the client's fault.
                raise IngestError(400, f"the request body could not be read: {exc}") from None
            if message["type"] != "http.request":  # http.disconnect, with body still to come
                # What arrived is cut short: storing it as the whole body would store a
                # truncated event (seen with a chunk declared longer than what was sent).
                self.more = False
                raise IngestError(
                    400, f"the client hung up before the body reached {self._framing}"
                )
            self.more = bool(message.get("more_body", False))
            chunk: bytes = message.get("body", b"")
            if chunk:
                return chunk
        return b""


class _Bridged(io.RawIOBase):
    """A file over the rest of a body, read in a thread, each chunk pulled through the loop."""

    def __init__(self, start: list[bytes], source: _Body, loop: asyncio.AbstractEventLoop):
        super().__init__()
        self._pending = b"".join(start)
        self._source = source
        self._loop = loop

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._pending:
            # TimeoutError (a stall) goes up to body.raw_chunks, which makes it a 408.
            self._pending = asyncio.run_coroutine_threadsafe(
                self._source.pull(), self._loop
            ).result()
        if size < 0:
            size = len(self._pending)
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return chunk


class Ingest:
    """The ASGI app for ``app.PATH``: every refusal a JSON 4xx, a 503 if the database fails."""

    def __init__(self, threads: int = 4) -> None:
        self.writer: Writer | LoopWriter = Writer()
        database = connection.settings_dict["NAME"]
        lock_path = write_lock_path(database) if connection.vendor == "sqlite" else None
        if lock_path is not None:
            self.writer = LoopWriter(str(database), lock_path, fallback=self.writer)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ingest")

    def stop(self) -> None:
        self.writer.stop()
        self._executor.shutdown()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        headers: Headers
        try:
            if method == "OPTIONS":
                status, headers, content = 200, [], b""
            else:
                status, headers, content = await self._dispatch(scope, receive, method)
        except IngestError as exc:
            status, headers, content = refusal(exc)
        except Exception:
            status, headers, content = unavailable()
        headers += CORS_HEADERS
        headers.append(("Content-Length", str(len(content))))
        if method == "HEAD":
            content = b""
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": content})

    async def _dispatch(
        self, scope: Scope, receive: Receive, method: str
    ) -> tuple[int, Headers, bytes]:
        raw_id, endpoint = route(scope["path"], method)
        client = scope.get("client")
        request = Request(ScopeHeaders(scope["headers"]), scope["query_string"].decode("latin-1"),
                          client[0] if client else None)  # fmt: skip
        expect = request.headers.get("Expect", "100-continue").strip().lower()
        if expect != "100-continue":  # the only expectation HTTP/1.1 defines
            raise IngestError(417, f"unsupported Expect {expect[:64]!r}; only 100-continue is")
        source = _Body(receive, request.content_length)
        start: list[bytes] = []
        if request.content_length is None or request.content_length <= INLINE_LIMIT:
            size = 0
            try:
                while size <= INLINE_LIMIT and (chunk := await source.pull()):
                    start.append(chunk)
                    size += len(chunk)
            except TimeoutError:
                raise IngestError(408, body.STALLED) from None
        submission: Submission
        if not source.more:  # all of it is here
            whole = b"".join(start)

            def raw_chunks(limit: int) -> Iterator[bytes]:
                return body.raw_chunks(io.BytesIO(whole), request.content_length, limit)

            try:
                submission = read_submission(request, raw_id, endpoint, raw_chunks, on_loop=True)
            except Offload:
                submission = await self._in_thread(read_submission, request, raw_id, endpoint,
                                                   raw_chunks)  # fmt: skip
        else:
            stream = _Bridged(start, source, asyncio.get_running_loop())

            def raw_chunks(limit: int) -> Iterator[bytes]:
                return body.raw_chunks(stream, request.content_length, limit)

            submission = await self._in_thread(read_submission, request, raw_id, endpoint,
                                               raw_chunks)  # fmt: skip
        if submission.key.rate_limit_per_minute:
            await self._in_thread(check_rate_limit, submission)
        await self.writer.write(submission.rows())
        return 200, submission.headers(), submission.answer()

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            try:
                return function(*args)
            finally:
                connection.close_if_unusable_or_obsolete()

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)
