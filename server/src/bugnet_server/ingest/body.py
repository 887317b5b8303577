"""Reading a request body: bounded, streaming, decompressed.

The raw body is read in chunks (with or without Content-Length: the Node SDK sends chunked
bodies) and decompressed incrementally with a cap on the output of every step, so a
decompression bomb is cut off at the limit without ever being held whole in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli
import zstandard

from bugnet_server.ingest.errors import IngestError

CHUNK = 64 * 1024
_IDENTITY = {"", "identity", "utf-8"}  # sentry-ruby sends "", sentry.java.android "UTF-8"
ZSTD_SLICE = 256  # compressed bytes per step: at most 8 MiB of output each
STALLED = "the request body stalled: send it without pauses"
ZSTD_MAX_WINDOW = 8 * 1024 * 1024  # what the zstd format asks decoders to support; a bigger
# window is memory the sender makes us hold per request (zstd's own default allows 128 MiB)


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def raw_chunks(stream: Readable, content_length: int | None, limit: int) -> Iterator[bytes]:
    """The request body in chunks; 413 once more than ``limit`` bytes arrive."""
    if content_length is not None and content_length > limit:
        raise IngestError(413, f"the request body is {content_length} bytes; the limit is {limit}")
    remaining = content_length
    total = 0
    while remaining is None or remaining > 0:
        want = CHUNK if remaining is None else min(CHUNK, remaining)
        try:
            chunk = stream.read(want)
        except TimeoutError:
            raise IngestError(408, STALLED) from None
        except Exception as exc:
            # The HTTP server raises its own errors for broken chunked framing or a client
            # that hung up mid-body: the body is unreadable, which is the client's fault.
            raise IngestError(400, f"the request body could not be read: {exc}") from None
        if not chunk:
            if remaining:
                raise IngestError(400, f"the body ended {remaining} bytes before Content-Length")
            return
        total += len(chunk)
        if total > limit:
            raise IngestError(413, f"the request body is over the limit of {limit} bytes")
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def decompressed(chunks: Iterator[bytes], encoding: str, limit: int) -> Iterator[bytes]:
    """``chunks`` decoded per ``Content-Encoding``; 413 past ``limit`` decoded bytes."""
    encoding = encoding.strip().lower()
    if encoding in _IDENTITY:
        source: Iterator[bytes] = chunks
    elif encoding in ("gzip", "x-gzip"):
        source = _zlib(chunks, zlib.MAX_WBITS | 16, "gzip")
    elif encoding == "deflate":
        source = _deflate(chunks)
    elif encoding == "br":
        source = _brotli(chunks)
    elif encoding == "zstd":
        source = _zstd(chunks)
    else:
        raise IngestError(
            415, f"unsupported Content-Encoding {encoding!r}; use gzip, deflate, br or zstd"
        )
    total = 0
    for chunk in source:
        total += len(chunk)
        if total > limit:
            raise IngestError(413, f"the decompressed body is over the limit of {limit} bytes")
        yield chunk


def _zlib(chunks: Iterator[bytes], wbits: int, name: str, first: bytes = b"") -> Iterator[bytes]:
    # A gzip body may be several members one after another (RFC 1952): each is decoded in
    # turn. Anything else after the end of the compressed data is an error, not ignored.
    decoder = zlib.decompressobj(wbits)
    try:
        for chunk in _prepend(first, chunks):
            data = chunk
            while data:
                if decoder.eof:  # ``data`` follows the end of a member
                    if name != "gzip":
                        raise IngestError(400, f"data follows the end of the {name} stream")
                    decoder = zlib.decompressobj(wbits)  # not a gzip member: zlib.error
                yield decoder.decompress(data, CHUNK)
                data = decoder.unconsumed_tail or decoder.unused_data
        while not decoder.eof:
            out = decoder.decompress(b"", CHUNK)
            if not out:
                break
            yield out
    except zlib.error as exc:
        raise IngestError(400, f"the body is not valid {name} data: {exc}") from None
    if not decoder.eof:
        raise IngestError(400, f"the {name} data is truncated")


def _deflate(chunks: Iterator[bytes]) -> Iterator[bytes]:
    # "deflate" is zlib-wrapped by the standard, raw by some clients: look at the first byte.
    # The two-byte zlib header may arrive split over chunks (a body streamed in small reads).
    iterator = iter(chunks)
    first = b""
    for chunk in iterator:
        first += chunk
        if len(first) >= 2:
            break
    wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
    return _zlib(iterator, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS, "deflate", first)


def _brotli(chunks: Iterator[bytes]) -> Iterator[bytes]:
    decoder = brotli.Decompressor()
    try:
        for chunk in chunks:
            out = decoder.process(chunk, output_buffer_limit=CHUNK)
            yield out
            while not decoder.can_accept_more_data():
                yield decoder.process(b"", output_buffer_limit=CHUNK)
    except brotli.error as exc:
        raise IngestError(400, f"the body is not valid brotli data: {exc}") from None
    if not decoder.is_finished():
        raise IngestError(400, "the brotli data is truncated")


def _zstd(chunks: Iterator[bytes]) -> Iterator[bytes]:
    # zstandard's stream reader bounds its output but cannot tell a truncated frame from a
    # finished one; its decompressobj can, but returns all the output of what it is fed. So
    # feed it slices small enough that even RLE blocks (4 bytes → 128 KiB) stay bounded.
    decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    decoder = decompressor.decompressobj(write_size=CHUNK)
    started = False
    try:
        for chunk in chunks:
            for start in range(0, len(chunk), ZSTD_SLICE):
                data = chunk[start : start + ZSTD_SLICE]
                while data:
                    if decoder.eof:  # another frame follows
                        decoder = decompressor.decompressobj(write_size=CHUNK)
                    started = True
                    yield decoder.decompress(data)
                    data = decoder.unused_data if decoder.eof else b""
    except zstandard.ZstdError as exc:
        raise IngestError(400, f"the body is not valid zstd data: {exc}") from None
    if started and not decoder.eof:
        raise IngestError(400, "the zstd data is truncated")


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
