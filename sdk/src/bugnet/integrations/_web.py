"""What every web integration shares: which HTTP errors count as failures, and how a request
body and cookies show on an event.

``failed_request_status_codes`` (sentry-sdk's name and forms) says which HTTP errors, that is
exceptions the app raised *to answer with a status* (``abort(404)``, ``Http404``,
``HTTPException(403)``), are reported. Any other exception that ends a request is a crash and
is always reported. The default is the 5xx range.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_FAILED_STATUS_CODES = frozenset(range(500, 600))

# Bytes of body kept per max_request_body_size (sentry-sdk's sizes).
BODY_LIMITS = {"never": 0, "small": 1_000, "medium": 10_000, "always": 10 * 1024 * 1024}


def checked_transaction_style(value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed`` (an integration's ``transaction_style``)."""
    if value not in allowed:
        raise ValueError(f"transaction_style must be one of {allowed}, not {value!r}")
    return value


def failed_status_codes(value: Any = None) -> frozenset[int]:
    """Normalize the option: a set of ints, or (sentry-sdk 2.5's form) a list whose items are
    ints or ranges. ``None`` is the default, the 5xx range; an empty set reports none."""
    if value is None:
        return DEFAULT_FAILED_STATUS_CODES
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            "failed_request_status_codes must be a set of status codes, "
            f"such as {{403, *range(500, 600)}}, not {type(value).__name__}"
        )
    codes: set[int] = set()
    for item in value:
        if isinstance(item, bool):
            raise TypeError(f"failed_request_status_codes: {item!r} is not a status code")
        if isinstance(item, int):
            codes.add(item)
        elif isinstance(item, range):
            codes.update(item)
        elif isinstance(item, Container) and not isinstance(item, (str, bytes)):
            codes.update(code for code in range(100, 600) if code in item)
        else:
            raise TypeError(f"failed_request_status_codes: {item!r} is not a status code")
    return frozenset(codes)


def parse_body(raw: bytes, content_type: str) -> Any:
    """A request body as event data: JSON as its value, a form as a dict, text as text; a note
    for multipart and binary bodies; None for an empty one."""
    content_type = content_type.partition(";")[0].strip().lower()
    if content_type.startswith("multipart/"):
        return "[multipart body omitted]"
    text = raw.decode("utf-8", "replace")
    if content_type == "application/json" or content_type.endswith("+json"):
        import json

        try:
            return json.loads(text)
        except ValueError:
            return text
    if content_type == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qs

        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text).items()}
    if not raw or b"\x00" in raw[:1024]:
        return None if not raw else "[binary body omitted]"
    return text


def cookies(header: str) -> dict[str, str]:
    """The ``Cookie`` header as a dict."""
    found = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            found[name] = value
    return found
