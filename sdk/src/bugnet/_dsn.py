"""Parsing a DSN into the pieces the transport needs."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple, Optional

_EXPECTED = "http[s]://<public_key>@<host>[:<port>][/<path>]/<project_id>"


class BadDsn(ValueError):
    """The DSN is not of the form the Sentry protocol defines."""


class Dsn(NamedTuple):
    scheme: str
    public_key: str
    secret_key: Optional[str]
    host: str
    port: int
    path: str  # prefix before the project id, without a trailing slash
    project_id: str
    raw: str

    @classmethod
    def parse(cls, value: str) -> Dsn:
        """Parse ``value``; raise :class:`BadDsn` naming the expected form when it is wrong."""
        try:
            parts = urlsplit(value.strip())
            port = parts.port
        except ValueError as exc:
            raise BadDsn(f"invalid DSN {value!r} ({exc}); expected {_EXPECTED}") from None
        if parts.scheme not in ("http", "https"):
            raise BadDsn(f"invalid DSN {value!r}: the scheme must be http or https; expected {_EXPECTED}")
        if not parts.username:
            raise BadDsn(f"invalid DSN {value!r}: the public key is missing; expected {_EXPECTED}")
        if not parts.hostname:
            raise BadDsn(f"invalid DSN {value!r}: the host is missing; expected {_EXPECTED}")
        prefix, _, project_id = parts.path.rstrip("/").rpartition("/")
        if not project_id.isdigit():
            raise BadDsn(
                f"invalid DSN {value!r}: the last path segment must be the numeric project id; "
                f"expected {_EXPECTED}"
            )
        return cls(
            scheme=parts.scheme,
            public_key=parts.username,
            secret_key=parts.password or None,
            host=parts.hostname,
            port=port or (443 if parts.scheme == "https" else 80),
            path=prefix,
            project_id=project_id,
            raw=value.strip(),
        )

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
        return f"{self.project_id}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"
