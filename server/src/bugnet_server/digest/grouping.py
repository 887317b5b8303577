"""Grouping: the key that decides which issue an event belongs to.

An approximation of Sentry's ``newstyle:2023-01-11`` written from the protocol notes
(docs/sentry-protocol.md §6), not from Sentry's code. Each strategy (exception chain, thread,
top-level stack trace, message) yields the leaf values of an ``app`` variant (in-app frames only)
and a ``system`` variant (all frames); the key is the md5 of the chosen values concatenated with no
separator, after the event's fingerprint and legacy checksum have had their say.

This module holds the algorithm (§6.1, §6.3, §6.5); the frame rules (§6.2) are in ``frames.py``,
message normalization (§6.4) in ``message_templates.py`` and the event accessors it shares with
``titles.py`` in ``accessors.py``.

Pure: no Django, no I/O. Input is an event as any SDK may send it (``null`` anywhere, bare lists,
missing fields); nothing here raises on such input.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from bugnet_server.digest.accessors import (
    chosen_thread,
    crash_frame,
    event_level,
    exceptions_of,
    last_exception,
    lenient_text,
    message_parts,
    number_text,
)
from bugnet_server.digest.frames import Stack, basename, mapping, platform, read_stack, text
from bugnet_server.digest.message_templates import normalize_message

GROUPING_VERSION: Final = "bugnet-2026-11"

_log = logging.getLogger(__name__)

_MD5_HEX: Final = re.compile(r"[0-9a-f]{32}")
_FINGERPRINT_VARIABLE: Final = re.compile(r"\{\{\s*(\S+)\s*\}\}")


@dataclass(frozen=True)
class GroupingResult:
    """An event's grouping key and how it was made."""

    hash: str  # 32 lowercase hex characters (md5)
    version: str  # GROUPING_VERSION
    variant: str  # "app" | "system" | "fingerprint" | "checksum" | "message" | "fallback"
    values: tuple[str, ...]  # the contributing leaf values, for debugging and tests


def grouping_key(event: Mapping[str, Any]) -> GroupingResult:
    """The grouping key of ``event`` (a decoded event payload).

    Never raises: an event nothing can be derived from gets the fallback key (see ``_fallback``).
    An internal error is logged and also gives the fallback, so one odd event cannot stall the
    digest of a whole batch.
    """
    try:
        return _grouping_key(event if isinstance(event, Mapping) else {})
    except Exception:
        _log.exception("grouping failed; the event gets the empty fallback key")
        return GroupingResult(_md5(()), GROUPING_VERSION, "fallback", ())


def _grouping_key(event: Mapping[str, Any]) -> GroupingResult:
    checksum = lenient_text(event.get("checksum"))
    if checksum:
        key = checksum.lower() if _MD5_HEX.fullmatch(checksum.lower()) else _md5((checksum,))
        return GroupingResult(key, GROUPING_VERSION, "checksum", (checksum,))
    variant, values = _default_key(event)
    entries = _fingerprint_entries(event.get("fingerprint"))
    if entries is None or (len(entries) == 1 and _is_default(entries[0])):
        return _result(variant, values)
    if not any(_is_default(entry) for entry in entries):
        return _result("fingerprint", tuple(_resolve(entry, event) for entry in entries))
    salted: list[str] = []
    for entry in entries:
        if _is_default(entry):
            salted.extend(values)
        else:
            salted.append(_resolve(entry, event))
    return _result(variant, tuple(salted))


def _result(variant: str, values: tuple[str, ...]) -> GroupingResult:
    return GroupingResult(_md5(values), GROUPING_VERSION, variant, values)


def _md5(values: tuple[str, ...]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for value in values:
        # A lone surrogate is valid JSON; it must hash, and differently from other text.
        digest.update(value.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


# --- choosing between strategies and variants (§6.1 steps 5 and 7) -------------------------


class _Candidate(NamedTuple):
    """What one strategy contributes to each variant."""

    strategy: str  # "exception" | "threads" | "stacktrace" | "message"
    app: tuple[str, ...]
    app_stack: bool  # a stack trace contributes to ``app``
    system: tuple[str, ...]
    system_stack: bool


def _default_key(event: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The variant and values of the event's own grouping (before fingerprints)."""
    app: _Candidate | None = None
    system: _Candidate | None = None
    for candidate in _candidates(event):
        app = app or (candidate if candidate.app else None)
        system = system or (candidate if candidate.system else None)
        if app and system:
            break
    if app and app.app_stack:
        return "app", app.app
    if system and system.system_stack:
        return "system", system.system
    if app:
        # Without a contributing stack trace both variants agree; Sentry lists ``app`` first.
        return ("message" if app.strategy == "message" else "app"), app.app
    return "fallback", _fallback(event)


def _candidates(event: Mapping[str, Any]) -> Iterator[_Candidate]:
    """Each strategy's contribution, by descending score; lazily, the first ones usually win."""
    event_platform = platform(event.get("platform"))
    exceptions = [_read_exception(raw, event_platform) for raw in exceptions_of(event)]
    if exceptions:
        yield _exception_candidate(exceptions, _uses_exception_groups(event))
    threads = chosen_thread(event)
    if threads is not None:
        yield _stack_candidate("threads", read_stack(threads.get("stacktrace"), event_platform))
    yield _stack_candidate("stacktrace", read_stack(event.get("stacktrace"), event_platform))
    yield _message_candidate(event)


def _fallback(event: Mapping[str, Any]) -> tuple[str, ...]:
    """Values for an event no strategy could group.

    Sentry hashes nothing here, so every such event shares one issue. We prefer whatever still
    tells events apart: a synthetic exception's type, then the transaction, then the legacy
    culprit. Only an event with none of these gets md5("").
    """
    last = last_exception(event)
    candidates = (
        lenient_text(last.get("type")) if last else None,
        text(event.get("transaction")),
        text(event.get("culprit")),
    )
    return next(((value,) for value in candidates if value), ())


# --- exceptions (§6.3) ---------------------------------------------------------------------


class _Exception(NamedTuple):
    type: str | None
    value: str | None
    synthetic: bool
    ns_error: tuple[str, ...]
    stack: Stack
    exception_id: int | None
    parent_id: int | None
    is_group: bool


def _read_exception(raw: Mapping[str, Any], platform: str) -> _Exception:
    mechanism = mapping(raw.get("mechanism"))
    return _Exception(
        type=lenient_text(raw.get("type")),
        value=lenient_text(raw.get("value")),
        synthetic=mechanism.get("synthetic") is True,
        ns_error=_ns_error(mechanism),
        stack=read_stack(raw.get("stacktrace"), platform),
        exception_id=_integer(mechanism.get("exception_id")),
        parent_id=_integer(mechanism.get("parent_id")),
        is_group=mechanism.get("is_exception_group") is True,
    )


def _ns_error(mechanism: Mapping[str, Any]) -> tuple[str, ...]:
    ns_error = mapping(mapping(mechanism.get("meta")).get("ns_error"))
    parts = (text(ns_error.get("domain")), lenient_text(ns_error.get("code")))
    return tuple(part for part in parts if part)


def _exception_candidate(exceptions: list[_Exception], use_groups: bool) -> _Candidate:
    app, app_stack = _chain(exceptions, "app", use_groups)
    system, system_stack = _chain(exceptions, "system", use_groups)
    return _Candidate("exception", app, app_stack, system, system_stack)


def _chain(
    exceptions: list[_Exception], variant: str, use_groups: bool
) -> tuple[tuple[str, ...], bool]:
    """A variant's values for a chain of exceptions, oldest first, and whether a stack
    trace contributes to them."""
    parts = [_exception_values(exception, variant) for exception in exceptions]
    chosen: list[int] = list(range(len(exceptions)))
    if use_groups and len(exceptions) > 1:
        chosen = _filter_exception_groups(exceptions, [values for values, _ in parts])
    values = tuple(value for index in chosen for value in parts[index][0])
    return values, any(parts[index][1] for index in chosen)


def _exception_values(exception: _Exception, variant: str) -> tuple[tuple[str, ...], bool]:
    stack = exception.stack.app if variant == "app" else exception.stack.system
    values = list(stack)
    if exception.type and not exception.synthetic:
        values.append(exception.type)
    values.extend(exception.ns_error)
    # The message of an error varies with its data; it only decides when nothing else can.
    if not stack and not exception.ns_error and exception.value:
        normalized = normalize_message(exception.value)
        if normalized:
            values.append(normalized)
    return tuple(values), bool(stack)


def _uses_exception_groups(event: Mapping[str, Any]) -> bool:
    # Sentry skips the exception-group filter for the Python SDK from version 3.
    sdk = mapping(event.get("sdk"))
    name, version = text(sdk.get("name")) or "", text(sdk.get("version")) or ""
    major = version.split(".", 1)[0]
    return not (name.startswith("sentry.python") and major.isdigit() and int(major) >= 3)


def _filter_exception_groups(
    exceptions: list[_Exception], values: list[tuple[str, ...]]
) -> list[int]:
    """Indices of the exceptions an exception group is grouped by (§6.3): its distinct
    top-level exceptions plus the root group, or the single distinct one and its first-child
    path. Applies only when every exception has an ``exception_id`` and a root (id 0) exists."""
    if any(exception.exception_id is None for exception in exceptions):
        return list(range(len(exceptions)))
    by_id: dict[int, int] = {}
    children: dict[int, list[int]] = {}
    for index in reversed(range(len(exceptions))):
        exception = exceptions[index]
        assert exception.exception_id is not None
        by_id[exception.exception_id] = index
        if exception.parent_id is not None:
            children.setdefault(exception.parent_id, []).append(index)
    root = by_id.get(0)
    if root is None:
        return list(range(len(exceptions)))
    top = _top_level_exceptions(root, exceptions, children)
    top.sort(key=lambda index: exceptions[index].type or "", reverse=True)
    distinct: list[int] = []
    seen: set[tuple[str, ...]] = set()
    for index in top:
        if values[index] not in seen:
            seen.add(values[index])
            distinct.append(index)
    if len(distinct) == 1:
        return _first_path(distinct[0], exceptions, children)
    return [root, *distinct]


def _top_level_exceptions(
    root: int, exceptions: list[_Exception], children: dict[int, list[int]]
) -> list[int]:
    """The first non-group exceptions below ``root``, in tree order (iterative: the tree is
    untrusted input and may be deep or cyclic)."""
    found: list[int] = []
    seen: set[int] = set()
    pending = [root]
    while pending:
        index = pending.pop()
        if index in seen:
            continue
        seen.add(index)
        exception = exceptions[index]
        if not exception.is_group:
            found.append(index)
            continue
        assert exception.exception_id is not None
        pending.extend(reversed(children.get(exception.exception_id, [])))
    return found


def _first_path(
    start: int, exceptions: list[_Exception], children: dict[int, list[int]]
) -> list[int]:
    path: list[int] = []
    seen: set[int] = set()
    index: int | None = start
    while index is not None and index not in seen:
        path.append(index)
        seen.add(index)
        exception_id = exceptions[index].exception_id
        assert exception_id is not None
        below = children.get(exception_id)
        index = below[0] if below else None
    return path


# --- threads, top-level stack traces and messages -----------------------------------------


def _stack_candidate(strategy: str, stack: Stack) -> _Candidate:
    return _Candidate(strategy, stack.app, bool(stack.app), stack.system, bool(stack.system))


def _message_candidate(event: Mapping[str, Any]) -> _Candidate:
    template, formatted = message_parts(event)
    message = template or formatted
    normalized = normalize_message(message) if message else ""
    values = (normalized,) if normalized else ()
    return _Candidate("message", values, False, values, False)


# --- fingerprints (§6.5) -------------------------------------------------------------------


def _fingerprint_entries(raw: Any) -> list[str] | None:
    """The fingerprint as strings (numbers and booleans converted, other entries dropped);
    None when it is missing or empty, which means ``["{{ default }}"]``."""
    if not isinstance(raw, list):
        return None
    entries = [entry for entry in map(_fingerprint_entry, raw) if entry is not None]
    return entries or None


def _fingerprint_entry(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return number_text(value)
    return None


def _variable(entry: str) -> str | None:
    match = _FINGERPRINT_VARIABLE.fullmatch(entry)
    return match.group(1) if match else None


def _is_default(entry: str) -> bool:
    return (_variable(entry) or "").lower() == "default"


def _resolve(entry: str, event: Mapping[str, Any]) -> str:
    """A fingerprint entry with its variable, if any, replaced; unknown variables stay as
    written."""
    name = _variable(entry)
    if name is None:
        return entry
    key = name.lower()
    if key.startswith("tags."):
        tag = name[len("tags.") :]
        return _tag_value(event.get("tags"), tag) or f"<no-value-for-tag-{tag}>"
    resolver = _VARIABLES.get(key)
    if resolver is None:
        return entry
    fallback, read = resolver
    return read(event) or fallback


def _from_last_exception(field: str) -> Callable[[Mapping[str, Any]], str | None]:
    def read(event: Mapping[str, Any]) -> str | None:
        return lenient_text((last_exception(event) or {}).get(field))

    return read


def _from_crash_frame(*fields: str) -> Callable[[Mapping[str, Any]], str | None]:
    def read(event: Mapping[str, Any]) -> str | None:
        frame = crash_frame(event) or {}
        return next((value for value in map(text, map(frame.get, fields)) if value), None)

    return read


def _message_variable(event: Mapping[str, Any]) -> str | None:
    template, formatted = message_parts(event)
    return formatted or template or _from_last_exception("value")(event)


def _package_variable(event: Mapping[str, Any]) -> str | None:
    package = _from_crash_frame("package")(event)
    return basename(package) if package else None


_Resolver = tuple[str, Callable[[Mapping[str, Any]], str | None]]
_VARIABLES: Final[dict[str, _Resolver]] = {
    "transaction": ("<no-transaction>", lambda event: text(event.get("transaction"))),
    "message": ("<no-message>", _message_variable),
    "type": ("<no-type>", _from_last_exception("type")),
    "error.type": ("<no-type>", _from_last_exception("type")),
    "value": ("<no-value>", _from_last_exception("value")),
    "error.value": ("<no-value>", _from_last_exception("value")),
    "function": ("<no-function>", _from_crash_frame("function")),
    "stack.function": ("<no-function>", _from_crash_frame("function")),
    "module": ("<no-module>", _from_crash_frame("module")),
    "stack.module": ("<no-module>", _from_crash_frame("module")),
    "path": ("<no-abs-path>", _from_crash_frame("abs_path", "filename")),
    "stack.abs_path": ("<no-abs-path>", _from_crash_frame("abs_path", "filename")),
    "stack.filename": ("<no-filename>", _from_crash_frame("filename", "abs_path")),
    "package": ("<no-package>", _package_variable),
    "stack.package": ("<no-package>", _package_variable),
    "level": ("<no-level>", lambda event: event_level(event)),
    "logger": ("<no-logger>", lambda event: text(event.get("logger"))),
}


def _tag_value(tags: Any, key: str) -> str | None:
    if isinstance(tags, Mapping):
        return _tag_text(tags.get(key))
    for pair in tags if isinstance(tags, list) else ():
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and pair[0] == key:
            return _tag_text(pair[1])
    return None


def _tag_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "True" if value else "False"  # as Relay writes boolean tags
    return lenient_text(value)


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
