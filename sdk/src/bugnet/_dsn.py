"""Parsing a DSN into the pieces the transport needs.

Parsed by hand rather than with ``urllib.parse``: importing that (and ``ipaddress``) would
cost the app's start-up several milliseconds for one string.
"""

from __future__ import annotations

import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

_EXPECTED = "http[s]://<public_key>@<host>[:<port>][/<path>]/<project_id>"


class BadDsn(ValueError):
    """The DSN is not of the form the Sentry protocol defines."""


class Dsn:
    __slots__ = ("host", "path", "port", "project_id", "public_key", "raw", "scheme", "secret_key")

    def __init__(
        self,
        scheme: str,
        public_key: str,
        secret_key: Optional[str],
        host: str,
        port: int,
        path: str,
        project_id: str,
        raw: str,
    ) -> None:
        self.scheme = scheme
        self.public_key = public_key
        self.secret_key = secret_key
        self.host = host
        self.port = port
        self.path = path  # the prefix before the project id, without a trailing slash
        self.project_id = project_id
        self.raw = raw

    @classmethod
    def parse(cls, value: str) -> Dsn:
        """Parse ``value``; raise :class:`BadDsn` naming the expected form when it is wrong."""
        raw = value.strip()

        def bad(why: str) -> BadDsn:
            return BadDsn(f"invalid DSN {raw!r}: {why}; expected {_EXPECTED}")

        scheme, sep, rest = raw.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            return _raise(bad("the scheme must be http or https"))
        scheme = scheme.lower()
        netloc, slash, path = rest.partition("/")
        path = (slash + path).split("?", 1)[0].split("#", 1)[0]
        userinfo, at, hostport = netloc.rpartition("@")
        if not at or not userinfo:
            return _raise(bad("the public key is missing"))
        public_key, _, secret = userinfo.partition(":")
        if not public_key:
            return _raise(bad("the public key is missing"))
        host, port_text = _split_host_port(hostport)
        if not host:
            return _raise(bad("the host is missing"))
        if port_text:
            # isdigit() alone lets "²" through, which int() refuses.
            if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
                return _raise(bad(f"the port {port_text!r} is not a number from 1 to 65535"))
            port = int(port_text)
        else:
            port = 443 if scheme == "https" else 80
        prefix, _, project_id = path.rstrip("/").rpartition("/")
        if not project_id.isdigit():
            return _raise(bad("the last path segment must be the numeric project id"))
        return cls(scheme, public_key, secret or None, host, port, prefix, project_id, raw)

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def envelope_url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.envelope_path}"

    @property
    def envelope_path(self) -> str:
        return f"{self.path}/api/{self.project_id}/envelope/"

    def auth_header(self, client: str) -> str:
        auth = f"Sentry sentry_key={self.public_key}, sentry_version=7, sentry_client={client}"
        if self.secret_key:
            auth += f", sentry_secret={self.secret_key}"
        return auth

    @property
    def spool_key(self) -> str:
        """A stable directory name for this DSN's spool (same DSN, same directory)."""
        ident = f"{self.scheme}://{self.public_key}@{self.netloc}{self.path}/{self.project_id}"
        data = ident.encode()
        return f"{self.project_id}-{zlib.crc32(data):08x}{zlib.adler32(data):08x}"

    def __repr__(self) -> str:
        return f"Dsn({self.scheme}://{self.public_key}@{self.netloc}{self.path}/{self.project_id})"


def _raise(error: BadDsn) -> Dsn:
    raise error


def _split_host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):  # [IPv6]:port
        host, _, after = hostport[1:].partition("]")
        return host, after[1:] if after.startswith(":") else ""
    host, _, port = hostport.partition(":")
    return host, port
