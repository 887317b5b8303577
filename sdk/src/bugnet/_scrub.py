"""Scrubbing secrets out of events before they leave the process.

The rule, for a key (a variable, header, cookie, query or data key): split it into words (on
``_ - . :``, spaces and camelCase, so ``X-Api-Key`` is ``x api key`` and ``accessToken`` is
``access token``). The key is sensitive when one word is a secret word (password, token, secret,
auth, cookie, session, csrf...), two adjacent words form one (``api key``, ``private key``...) or
the words run together spell one (``api_key`` → ``apikey``), unless the key ends in a word that
only measures the secret (count, length, size, limit, ttl, timeout, expiry...), as in
``token_count``. So ``db_password``, ``accessToken`` and ``X-CSRFToken`` are scrubbed, while
``author``, ``sessions_count`` and ``token_count`` are not. Passwords inside URLs are masked
wherever they appear in strings.
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
# A last word that measures a secret rather than holding it: ``token_count``, ``session_ttl``.
MEASURE_WORDS = frozenset(
    {
        "count", "counts", "length", "len", "size", "limit", "limits", "ttl", "timeout",
        "expiry", "expires", "expiration",
    }
)  # fmt: skip

# sentry-sdk's names for the keys that identify a person rather than unlock something.
DEFAULT_PII_DENYLIST = ("x_forwarded_for", "x_real_ip", "ip_address", "remote_addr")

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


def _words(key: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _pattern("words").findall(key))


# Contexts that hold no app data and need no scrubbing.
_PLAIN_CONTEXTS = frozenset({"trace", "runtime", "os", "device", "app", "response"})


class EventScrubber:
    """Replaces the values of sensitive keys with ``"[Filtered]"`` throughout an event.

    ``denylist`` adds keys to the default rule (it never removes any): an entry matches a key
    equal to it (case-insensitively, ``-`` and ``_`` alike) or containing its words in a row,
    so ``"iban"`` also covers ``customer_iban`` and ``"card_cvv"`` covers ``cardCvv``.
    ``recursive=False`` limits scrubbing of nested data to the first level.

    ``send_default_pii`` and ``pii_denylist`` are accepted as sentry-sdk spells them: with
    ``send_default_pii=False`` the PII keys (client addresses by default) are scrubbed too. Left
    at None, that is the client's job, following ``init(send_default_pii=...)``.
    """

    def __init__(
        self,
        denylist: Iterable[str] | None = None,
        recursive: bool = True,
        send_default_pii: bool | None = None,
        pii_denylist: Iterable[str] | None = None,
    ) -> None:
        entries = [str(k) for k in denylist or ()]
        if send_default_pii is False:
            entries += [str(k) for k in (pii_denylist or DEFAULT_PII_DENYLIST)]
        self.extra_keys = frozenset(k.lower().replace("-", "_") for k in entries)
        self._extra_words = tuple(w for w in (_words(k) for k in entries) if w)
        self.recursive = recursive
        self._cache: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._is_sensitive(key)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _is_sensitive(self, key: str) -> bool:
        if key.lower().replace("-", "_") in self.extra_keys:
            return True
        words = _words(key)
        if any(_contains(words, entry) for entry in self._extra_words):
            return True
        if len(words) > 1 and words[-1] in MEASURE_WORDS:
            return False
        return (
            any(w in DEFAULT_WORDS for w in words)
            or any(pair in DEFAULT_PAIRS for pair in zip(words, words[1:]))
            or "".join(words) in DEFAULT_WORDS
        )

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

    def scrub_pairs(self, data: Any) -> Any:
        """Scrub ``{"k": v}``, ``[["k", v], ...]`` (repeated headers) or ``"k=v&k2=v2"``."""
        if isinstance(data, str):
            return self.scrub_query_string(data)
        if isinstance(data, list):
            for pair in data:
                if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str):
                    if self.is_sensitive(pair[0]) and pair[1] not in (None, ""):
                        pair[1] = FILTERED
                    else:
                        pair[1] = self.scrub_data(pair[1], 1)
            return data
        return self.scrub_data(data)

    def scrub_query_string(self, query: Any) -> Any:
        if isinstance(query, str):
            scrubbed: str = _pattern("query_pair").sub(
                lambda m: (
                    f"{m.group(1)}={FILTERED}"
                    if self.is_sensitive(m.group(1).strip())
                    else m.group(0)
                ),
                query,
            )
            return mask_url_passwords(scrubbed)
        return self.scrub_pairs(query)

    def scrub_event(self, event: Event) -> None:
        """Scrub every part of ``event`` that carries app data."""
        request = event.get("request")
        if isinstance(request, dict):
            for part in ("headers", "cookies", "query_string"):
                if part in request:
                    request[part] = self.scrub_pairs(request[part])
            for part in ("data", "env"):
                if part in request:
                    request[part] = self.scrub_data(request[part])
            if isinstance(request.get("url"), str):
                request["url"] = mask_url_passwords(request["url"])
        if "extra" in event:
            event["extra"] = self.scrub_data(event["extra"])
        contexts = event.get("contexts")
        if isinstance(contexts, dict):
            for name, value in contexts.items():
                if name not in _PLAIN_CONTEXTS:
                    contexts[name] = self.scrub_data(value)
        for crumb in _values(event.get("breadcrumbs")):
            if "data" in crumb:
                crumb["data"] = self.scrub_data(crumb["data"])
            if "message" in crumb:
                crumb["message"] = _masked(crumb["message"])
        for exc in _values(event.get("exception")):
            if "value" in exc:
                exc["value"] = _masked(exc["value"])
            self._scrub_frames(exc)
        for thread in _values(event.get("threads")):
            self._scrub_frames(thread)
        if "message" in event:
            event["message"] = _masked(event["message"])
        logentry = event.get("logentry")
        if isinstance(logentry, dict):
            for part in ("message", "formatted"):
                if part in logentry:
                    logentry[part] = _masked(logentry[part])  # type: ignore[literal-required]
            if "params" in logentry:
                logentry["params"] = self.scrub_data(logentry["params"])

    def _scrub_frames(self, holder: dict[str, Any]) -> None:
        stacktrace = holder.get("stacktrace")
        if not isinstance(stacktrace, dict):
            return
        for frame in stacktrace.get("frames") or ():
            if isinstance(frame, dict) and "vars" in frame:
                frame["vars"] = self.scrub_data(frame["vars"])


def _contains(words: tuple[str, ...], entry: tuple[str, ...]) -> bool:
    size = len(entry)
    return any(words[i : i + size] == entry for i in range(len(words) - size + 1))


def _values(container: Any) -> list[Any]:
    """The dict items of ``{"values": [...]}`` or a bare list (the protocol allows both)."""
    if isinstance(container, dict):
        container = container.get("values")
    if isinstance(container, list):
        return [item for item in container if isinstance(item, dict)]
    return []


def _masked(value: Any) -> Any:
    return mask_url_passwords(value) if isinstance(value, str) else value


def mask_url_passwords(text: str) -> str:
    """``postgresql://app:hunter2@db/x`` → ``postgresql://app:[Filtered]@db/x``."""
    if "://" not in text:
        return text
    masked: str = _pattern("url_password").sub(lambda m: m.group(1) + FILTERED + m.group(3), text)
    return masked
