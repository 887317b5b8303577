"""Who is sending: the project key, from exactly one of the places the protocol allows.

``X-Sentry-Auth``, ``Authorization: Sentry ...`` and the query string (``sentry_key=``) are
alternatives; more than one is refused (as Relay does). The envelope's ``dsn`` header can
authenticate on its own, and must agree with the others when both are present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bugnet._dsn import BadDsn, Dsn
from bugnet_server.ingest.errors import IngestError


@dataclass(frozen=True)
class Credentials:
    public_key: str
    client: str = ""  # sentry_client, else the User-Agent


def parse_auth_header(value: str) -> dict[str, str]:
    """``Sentry sentry_key=..., sentry_version=7`` → {"sentry_key": ..., ...}."""
    text = value.strip()
    if text[:7].lower() == "sentry ":
        text = text[7:]
    fields = {}
    for part in text.split(","):
        key, sep, val = part.partition("=")
        if sep:
            fields[key.strip()] = val.strip()
    return fields


def credentials(headers: Mapping[str, str], query: Mapping[str, str]) -> Credentials | None:
    """The credentials the request itself carries; None when it carries none."""
    found = []
    if headers.get("X-Sentry-Auth"):
        found.append(parse_auth_header(headers["X-Sentry-Auth"]))
    authorization = headers.get("Authorization", "")
    if authorization[:7].lower() == "sentry ":
        found.append(parse_auth_header(authorization))
    if query.get("sentry_key") is not None:
        found.append({k: v for k, v in query.items() if k.startswith("sentry_")})
    if len(found) > 1:
        raise IngestError(401, "multiple authorization payloads detected")
    if not found:
        return None
    fields = found[0]
    key = fields.get("sentry_key", "")
    if not key:
        raise IngestError(401, "missing sentry_key in the authorization")
    version = fields.get("sentry_version", "7")
    if version not in ("7", "7.0"):
        raise IngestError(400, f"unsupported sentry_version {version!r}; use 7")
    return Credentials(key, fields.get("sentry_client") or headers.get("User-Agent", ""))


def credentials_from_dsn(dsn: str, project_id: int) -> Credentials:
    """Credentials from an envelope's ``dsn`` header, which must name this project."""
    try:
        parsed = Dsn.parse(dsn)
    except BadDsn as exc:
        raise IngestError(400, f"the envelope's dsn header is invalid: {exc}") from None
    # str.isdigit() lets "²" and 5000-digit ids through, which int() then refuses.
    if not parsed.project_id.isascii() or (parsed.project_id.lstrip("0") or "0") != str(project_id):
        raise IngestError(400, "the envelope's dsn names another project than the URL")
    return Credentials(parsed.public_key)
