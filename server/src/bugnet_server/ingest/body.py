"""Reading a request body: bounded, streaming, decompressed.

The raw body is read in chunks (with or without Content-Length: the Node SDK sends chunked
bodies) and decompressed incrementally with a cap on the output of every step, so a
decompression bomb is cut off at the limit without ever being held whole in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import brotli
import zstandard

from bugnet_server.ingest.errors import IngestError

CHUNK = 64 * 1024
_IDENTITY = {"", "identity", "utf-8"}  # sentry-ruby sends "", sentry.java.android "UTF-8"


def raw_chunks(stream: BinaryIO, content_length: int | None, limit: int) -> Iterator[bytes]:
    """The request body in chunks; 413 once more than ``limit`` bytes arrive."""
    if content_length is not None and content_length > limit:
        raise IngestError(413, f"the request body is {content_length} bytes; the limit is {limit}")
    remaining = content_length
    total = 0
    while remaining is None or remaining > 0:
        want = CHUNK if remaining is None else min(CHUNK, remaining)
        chunk = stream.read(want)
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
    decoder = zlib.decompressobj(wbits)
    try:
        for chunk in _prepend(first, chunks):
            data = chunk
            while data:
                out = decoder.decompress(data, CHUNK)
                yield out
                data = decoder.unconsumed_tail
            if decoder.eof:
                break
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
    iterator = iter(chunks)
    first = b""
    for first in iterator:
        if first:
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
    reader = zstandard.ZstdDecompressor().stream_reader(
        _IterReader(chunks), read_across_frames=True
    )
    try:
        while True:
            out = reader.read(CHUNK)
            if not out:
                return
            yield out
    except zstandard.ZstdError as exc:
        raise IngestError(400, f"the body is not valid zstd data: {exc}") from None


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


class _IterReader:
    """A file-like ``read`` over an iterator of chunks (for zstandard's stream reader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)
