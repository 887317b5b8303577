"""One HTTP connection to the ingest endpoint: POSTs envelopes, keeps the connection alive.

``http.client`` (and ``ssl``) are imported on first use, on the transport's thread.
"""

from __future__ import annotations

import zlib

from bugnet._envelope import dumps
from bugnet._guard import DEBUG, log
from bugnet._timestamps import format_timestamp
from bugnet._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from http.client import HTTPConnection
    from typing import Any

    from bugnet._dsn import Dsn
    from bugnet._options import Options

USER_AGENT = f"bugnet.python/{__version__}"


class SendResult:
    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status  # 0: no answer (network error or timeout)
        self.headers = headers  # lowercased names

    @property
    def failed(self) -> bool:
        """No answer or a server error: the envelope is worth another try later."""
        return self.status == 0 or self.status >= 500


class EnvelopeSender:
    """Sends envelopes for one DSN over one kept-alive connection (through a proxy if set)."""

    def __init__(self, dsn: Dsn, options: Options) -> None:
        self._dsn = dsn
        self._options = options
        self._auth = dsn.auth_header(USER_AGENT)
        self._conn: HTTPConnection | None = None

    def post(self, headers: dict[str, Any], body: bytes) -> SendResult:
        """POST one envelope (``headers`` line + item ``body``), gzipped, with ``sent_at`` now."""
        headers = {**headers, "sent_at": format_timestamp()}
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip framing
        data = compressor.compress(dumps(headers) + b"\n" + body) + compressor.flush()
        request_headers = {
            "Content-Type": "application/x-sentry-envelope",
            "Content-Encoding": "gzip",
            "X-Sentry-Auth": self._auth,
            "User-Agent": USER_AGENT,
            "Content-Length": str(len(data)),
        }
        for attempt in (1, 2):
            try:
                conn = self._connection()
                if self._proxy_for_http:  # absolute-form target; credentials on each request
                    path = self._dsn.envelope_url
                    send_headers = {**request_headers, **self._proxy_headers}
                else:
                    path, send_headers = self._dsn.envelope_path, request_headers
                conn.request("POST", path, body=data, headers=send_headers)
                response = conn.getresponse()
                response.read()
                answer = {k.lower(): v for k, v in response.getheaders()}
                if response.will_close:
                    self.close()
                return SendResult(response.status, answer)
            except Exception as exc:
                self.close()
                # A kept-alive connection the server closed meanwhile: retry once, fresh.
                if attempt == 1 and _is_stale_connection(exc):
                    continue
                log(DEBUG, "could not reach %s: %s", self._dsn.netloc, exc)
                return SendResult(0, {})
        return SendResult(0, {})  # pragma: no cover

    _proxy_for_http = False
    _proxy_headers: dict[str, str] = {}  # replaced per instance, never mutated

    def _connection(self) -> HTTPConnection:
        if self._conn is not None:
            return self._conn
        import http.client

        from bugnet._proxies import proxy_for

        timeout = self._options.http_timeout
        proxy = proxy_for(self._dsn, self._options)
        conn: HTTPConnection
        if self._dsn.scheme == "https":
            import ssl

            context = ssl.create_default_context(cafile=self._options.ca_certs)
            if proxy:
                conn = http.client.HTTPSConnection(
                    proxy.hostname, proxy.port, timeout=timeout, context=context
                )
                conn.set_tunnel(self._dsn.host, self._dsn.port, headers=proxy.headers)
            else:
                conn = http.client.HTTPSConnection(
                    self._dsn.host, self._dsn.port, timeout=timeout, context=context
                )
        elif proxy:
            conn = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=timeout)
            self._proxy_for_http = True
            self._proxy_headers = proxy.headers
        else:
            conn = http.client.HTTPConnection(self._dsn.host, self._dsn.port, timeout=timeout)
        conn._bugnet_internal = True  # type: ignore[attr-defined]  # no breadcrumbs for our own requests
        conn.connect()
        if conn.sock is not None:
            import socket

            # Headers and body go out as two writes: without this, Nagle's algorithm and a
            # server's delayed ACK can hold the body back ~40 ms.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = conn
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


def _is_stale_connection(exc: BaseException) -> bool:
    import http.client

    return isinstance(
        exc, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
    ) and not isinstance(exc, ConnectionRefusedError)
