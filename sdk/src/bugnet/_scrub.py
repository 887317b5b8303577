"""Scrubbing secrets out of events before they leave the process.

A key is sensitive when one of its words (split on ``_ - . :`` and camelCase) is a secret word
(password, token, secret, auth, cookie, session, csrf...) or two adjacent words form one
(``api key``, ``private key``...). So ``db_password`` and ``accessToken`` are scrubbed, while
``author`` and ``sessions_count`` are not. Passwords inside URLs are masked wherever they appear.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from bugnet.types import Event

FILTERED = "[Filtered]"

DEFAULT_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "pass", "passphrase", "secret", "secrets", "token", "tokens",
        "apikey", "auth", "authorization", "authentication", "credential", "credentials",
        "cookie", "cookies", "csrf", "xsrf", "csrftoken", "xsrftoken", "session", "sessionid",
        "phpsessid", "jwt", "bearer", "privatekey", "signature", "otp", "pin", "ssn",
    }
)  # fmt: skip
DEFAULT_PAIRS = frozenset(
    {
        ("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
        ("set", "cookie"), ("connect", "sid"), ("client", "secret"), ("card", "number"),
        ("credit", "card"), ("mysql", "pwd"),
    }
)  # fmt: skip

_PATTERNS: dict[str, Any] = {}


def _pattern(name: str) -> Any:
    """The compiled regular expressions, made on first use (``re`` is a slow import)."""
    if not _PATTERNS:
        import re

        _PATTERNS["words"] = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
        _PATTERNS["url_password"] = re.compile(
            r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)([^@\s/]+)(@)"
        )
        _PATTERNS["query_pair"] = re.compile(r"([^&=;]+)=([^&;]*)")
    return _PATTERNS[name]


# Contexts that hold no app data and need no scrubbing.
_PLAIN_CONTEXTS = frozenset({"trace", "runtime", "os", "device", "app", "response"})


class EventScrubber:
    """Replaces the values of sensitive keys with ``"[Filtered]"`` throughout an event.

    ``denylist`` adds key names (matched whole, case-insensitively) to the default words;
    ``recursive=False`` limits scrubbing of nested data to the first level.
    """

    def __init__(self, denylist: Iterable[str] | None = None, recursive: bool = True) -> None:
        self.extra_keys = frozenset(k.lower() for k in denylist or ())
        self.recursive = recursive
        self._cache: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        lowered = key.lower()
        words = [w.lower() for w in _pattern("words").findall(key)]
        result = (
            lowered in self.extra_keys
            or lowered.replace("-", "_") in self.extra_keys
            or any(w in DEFAULT_WORDS for w in words)
            or any(pair in DEFAULT_PAIRS for pair in zip(words, words[1:]))
            or "".join(words) in DEFAULT_WORDS
        )
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = result
        return result

    def scrub_data(self, data: Any, depth: int = 0) -> Any:
        """Scrub a value in place where possible; returns the (possibly new) value."""
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(key, str) and self.is_sensitive(key):
                    if value is not None and value != "":
                        data[key] = FILTERED
                elif self.recursive or depth == 0:
                    data[key] = self.scrub_data(value, depth + 1)
            return data
        if isinstance(data, list):
            for index, value in enumerate(data):
                data[index] = self.scrub_data(value, depth + 1)
            return data
        if isinstance(data, str) and "://" in data:
            return mask_url_passwords(data)
        return data

    def scrub_query_string(self, query: Any) -> Any:
        if isinstance(query, str):
            return _pattern("query_pair").sub(
                lambda m: (
                    f"{m.group(1)}={FILTERED}" if self.is_sensitive(m.group(1)) else m.group(0)
                ),
                query,
            )
        return self.scrub_data(query)

    def scrub_event(self, event: Event) -> None:
        """Scrub every part of ``event`` that carries app data."""
        request = event.get("request")
        if isinstance(request, dict):
            for part in ("headers", "cookies", "data", "env"):
                if part in request:
                    request[part] = self.scrub_data(request[part])
            if "query_string" in request:
                request["query_string"] = self.scrub_query_string(request["query_string"])
            if isinstance(request.get("url"), str):
                request["url"] = mask_url_passwords(request["url"])
        if "extra" in event:
            event["extra"] = self.scrub_data(event["extra"])
        contexts = event.get("contexts")
        if isinstance(contexts, dict):
            for name, value in contexts.items():
                if name not in _PLAIN_CONTEXTS:
                    contexts[name] = self.scrub_data(value)
        for crumb in event.get("breadcrumbs", {}).get("values", ()):
            if "data" in crumb:
                crumb["data"] = self.scrub_data(crumb["data"])
            if isinstance(crumb.get("message"), str) and "://" in crumb["message"]:  # type: ignore[operator]
                crumb["message"] = mask_url_passwords(crumb["message"])  # type: ignore[arg-type]
        for exc in event.get("exception", {}).get("values", ()):
            if isinstance(exc.get("value"), str) and "://" in exc["value"]:
                exc["value"] = mask_url_passwords(exc["value"])
            for frame in exc.get("stacktrace", {}).get("frames", ()):
                if "vars" in frame:
                    frame["vars"] = self.scrub_data(frame["vars"])
        logentry = event.get("logentry")
        if isinstance(logentry, dict) and isinstance(logentry.get("formatted"), str):
            logentry["formatted"] = mask_url_passwords(logentry["formatted"])


def mask_url_passwords(text: str) -> str:
    """``postgresql://app:hunter2@db/x`` → ``postgresql://app:[Filtered]@db/x``."""
    if "://" not in text:
        return text
    masked: str = _pattern("url_password").sub(lambda m: m.group(1) + FILTERED + m.group(3), text)
    return masked
