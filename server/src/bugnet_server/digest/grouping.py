"""Grouping: the key that decides which issue an event belongs to.

An approximation of Sentry's ``newstyle:2023-01-11`` written from the protocol notes
(docs/sentry-protocol.md §6), not from Sentry's code. Each strategy (exception chain, thread,
top-level stack trace, message) yields the leaf values of an ``app`` variant (in-app frames only)
and a ``system`` variant (all frames); the key is the md5 of the chosen values concatenated with no
separator, after the event's fingerprint and legacy checksum have had their say.

Pure: no Django, no I/O. Input is an event as any SDK may send it (``null`` anywhere, bare lists,
missing fields); nothing here raises on such input.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

GROUPING_VERSION: Final = "bugnet-2026-11"

_log = logging.getLogger(__name__)

# Relay keeps the last 250 frames of a stack trace; grouping never sees more.
_MAX_FRAMES: Final = 250
# A context line this long is minified code or data: it would split groups, not describe them.
_MAX_CONTEXT_LINE: Final = 120

_JS_PLATFORMS: Final = frozenset({"javascript", "node"})
_NATIVE_PLATFORMS: Final = frozenset({"objc", "cocoa", "swift", "native", "c"})
_CONTEXT_LINE_PLATFORMS: Final = frozenset({"javascript", "node", "python", "php", "ruby"})
_LEVELS: Final = frozenset({"fatal", "error", "warning", "info", "debug"})
_LEVEL_ALIASES: Final = {"warn": "warning", "critical": "fatal", "log": "info"}
_PYTHON_LEVELS: Final = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "fatal"}

# The default enhancement rules that mark frames as not in-app (§6.1).
_SYSTEM_PATH: Final = re.compile(
    r"(?:^|/)(?:site-packages|dist-packages|node_modules|vendor|go/pkg/mod)/", re.IGNORECASE
)
_SYSTEM_JAVA_MODULE: Final = re.compile(r"(?:java|javax|sun|org\.springframework|org\.apache)\.")
_URL_PREFIXES: Final = ("http:", "https:", "blob:", "applewebdata:")
_JS_FRAME_URL_PREFIXES: Final = (*_URL_PREFIXES, "file:")
_JS_LOW_QUALITY_PATHS: Final = frozenset(
    {"[native code]", "native code", "eval code", "<anonymous>"}
)
_JS_UNKNOWN_FUNCTIONS: Final = frozenset(
    {"?", "<anonymous>", "<anonymous function>", "Anonymous function"}
)
_DROPPED_FILENAMES: Final = frozenset({"<anonymous>", "[native code]"})
_PATH_SEPARATORS: Final = re.compile(r"[/\\]")

# Generated Java class names carry per-build or per-process counters and hashes.
_JAVA_GENERATED: Final = (
    (re.compile(r"(\$\$[\w$]*?CGLIB\$\$)[0-9a-fA-F]+(?:_\d+)?"), r"\1<auto>"),
    (re.compile(r"(\$\$_javassist)(?:_seam)?(?:_\d+)?"), r"\1<auto>"),
    (re.compile(r"(\$fn__)\d+"), r"\1<auto>"),
    (re.compile(r"(\$HibernateProxy\$)\w+"), r"\1<auto>"),
    (re.compile(r"(Generated(?:Method|(?:Serialization)?Constructor)Accessor)\d+"), r"\1"),
)
_RUBY_ERB_SUFFIX: Final = re.compile(r"__\d+_\d+$")
_PHP_ANONYMOUS_PREFIXES: Final = ("[Anonymous", "class@anonymous")
_NATIVE_UNKNOWN_FUNCTIONS: Final = frozenset({"<unknown>", "<redacted>"})

_NATIVE_OPERATOR: Final = re.compile(
    r"\boperator\s*(?:<=>|<<=|>>=|<<|>>|<=|>=|->\*|->|\(\)|\[\]|new\[\]|delete\[\]|"
    r"[-+*/%^&|~!=<>,]=?|\s\w+)"
)
_NATIVE_QUALIFIERS: Final = (" const", " volatile", " &&", " &", " noexcept", " override", " final")
_ANONYMOUS_NAMESPACE: Final = "(anonymous namespace)"

_MD5_HEX: Final = re.compile(r"[0-9a-f]{32}")
_FINGERPRINT_VARIABLE: Final = re.compile(r"\{\{\s*(\S+)\s*\}\}")

# Common TLDs. Two-letter ones that are also English words or file extensions (.id, .is, .in,
# .it, .to, .me, .pl, .rs, .cc ...) are left out: "user.id" or "main.rs" are not hostnames.
_TLDS: Final = (
    "com|net|org|edu|gov|mil|io|co|biz|xyz|online|club|shop|tech|cloud|uk|de|fr|nl|eu|ru|cn|"
    "jp|br|au|ca|ch|es|se|dk|fi|cz|kr|mx|tw|tr|ar|ir|ua|gr|pt|hu|ro|za|nz|sg|hk|il|ie|vn|cl|sk|"
    "lt|lv|ee|bg|hr|si|th|ph|pk|ng|ke|eg|sa|ae|kz|by"
)
_HEX4: Final = "[0-9a-fA-F]{1,4}"
_IPV4: Final = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV6: Final = (
    rf"(?<![\w:])(?:(?:{_HEX4}:){{7}}{_HEX4}|(?:{_HEX4}:){{1,7}}:(?![\w:])|"
    rf"(?:{_HEX4}:){{1,6}}:{_HEX4}|(?:{_HEX4}:){{1,5}}(?::{_HEX4}){{1,2}}|"
    rf"(?:{_HEX4}:){{1,4}}(?::{_HEX4}){{1,3}}|(?:{_HEX4}:){{1,3}}(?::{_HEX4}){{1,4}}|"
    rf"(?:{_HEX4}:){{1,2}}(?::{_HEX4}){{1,5}}|{_HEX4}:(?::{_HEX4}){{1,6}}|"
    rf"::(?:ffff(?::0{{1,4}})?:)?{_IPV4}|:(?::{_HEX4}){{1,7}})(?![\w:])"
)
_MONTH: Final = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_ZONE: Final = r"[+-]\d{4}|UT|GMT|[ECMP][SD]T|[A-IK-Z]"
_DATE: Final = (
    r"\b\d{4}-[01]\d-[0-3]\d(?:[T ][0-2]\d:[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?"
    r"(?:Z|[+-][0-2]\d(?::?[0-5]\d)?)?)?"
    rf"|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s\d{{1,2}}\s(?:{_MONTH})\s\d{{2,4}}\s"
    rf"\d{{1,2}}:\d{{2}}(?::\d{{2}})?\s(?:{_ZONE})\b"
    rf"|\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday),\s\d{{2}}-(?:{_MONTH})-"
    rf"\d{{2}}\s\d{{2}}:\d{{2}}:\d{{2}}\s(?:{_ZONE})\b"
    r"|\b[0-2]?\d:[0-5]\d:[0-5]\d(?:[.,]\d+)?\b"
    r"|\bdatetime\.datetime\([^)]*\)"
)
# One alternation, tried left to right at each position: the order is the precedence of §6.4.
# The email and hostname parts are anchored or bounded so a long run of word characters costs
# linear time, not quadratic.
_VOLATILE_VALUES: Final = re.compile(
    r"(?P<email>(?<![a-zA-Z0-9._%+-])[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,})"
    r"|(?P<url>\b(?:wss?|https?|ftp)://[^\s/$.?#][^\s'\"<>]*)"
    rf"|(?P<hostname>\b(?:[a-zA-Z0-9-]{{1,63}}\.){{1,16}}(?=[a-zA-Z]{{2,6}}\b)(?i:{_TLDS})\b)"
    rf"|(?P<ip>{_IPV6}|\b{_IPV4}\b)"
    r"|(?P<uuid>\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b)"
    r"|(?P<sha1>\b[0-9a-fA-F]{40}\b)"
    r"|(?P<md5>\b[0-9a-fA-F]{32}\b)"
    rf"|(?P<date>{_DATE})"
    r"|(?P<duration>\b\d+(?:ms|(?:\.\d+)?s)\b)"
    r"|(?P<hex>\b0[xX][0-9a-fA-F]+\b)"
    r"|(?P<float>(?:-|\b)\d+\.\d+\b)"
    r"|(?P<int>(?:-|\b)\d+\b)"
    r"|(?P<quoted_str>='[^'\n]*'|=\"[^\"\n]*\")"
    r"|(?P<bool>=(?:[Tt]rue|[Ff]alse)\b)"
)
_AFTER_EQUALS: Final = frozenset({"quoted_str", "bool"})


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
    checksum = _lenient_text(event.get("checksum"))
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
    platform = _platform(event.get("platform"))
    exceptions = [_read_exception(raw, platform) for raw in exceptions_of(event)]
    if exceptions:
        yield _exception_candidate(exceptions, _uses_exception_groups(event))
    threads = _chosen_thread(event)
    if threads is not None:
        yield _stack_candidate("threads", _read_stack(threads.get("stacktrace"), platform))
    yield _stack_candidate("stacktrace", _read_stack(event.get("stacktrace"), platform))
    yield _message_candidate(event)


def _fallback(event: Mapping[str, Any]) -> tuple[str, ...]:
    """Values for an event no strategy could group.

    Sentry hashes nothing here, so every such event shares one issue. We prefer whatever still
    tells events apart: a synthetic exception's type, then the transaction, then the legacy
    culprit. Only an event with none of these gets md5("").
    """
    last = last_exception(event)
    candidates = (
        _lenient_text(last.get("type")) if last else None,
        _text(event.get("transaction")),
        _text(event.get("culprit")),
    )
    return next(((value,) for value in candidates if value), ())


# --- exceptions (§6.3) ---------------------------------------------------------------------


class _Stack(NamedTuple):
    app: tuple[str, ...]
    system: tuple[str, ...]


_NO_STACK: Final = _Stack((), ())


class _Exception(NamedTuple):
    type: str | None
    value: str | None
    synthetic: bool
    ns_error: tuple[str, ...]
    stack: _Stack
    exception_id: int | None
    parent_id: int | None
    is_group: bool


def _read_exception(raw: Mapping[str, Any], platform: str) -> _Exception:
    mechanism = _mapping(raw.get("mechanism"))
    return _Exception(
        type=_lenient_text(raw.get("type")),
        value=_lenient_text(raw.get("value")),
        synthetic=mechanism.get("synthetic") is True,
        ns_error=_ns_error(mechanism),
        stack=_read_stack(raw.get("stacktrace"), platform),
        exception_id=_integer(mechanism.get("exception_id")),
        parent_id=_integer(mechanism.get("parent_id")),
        is_group=mechanism.get("is_exception_group") is True,
    )


def _ns_error(mechanism: Mapping[str, Any]) -> tuple[str, ...]:
    ns_error = _mapping(_mapping(mechanism.get("meta")).get("ns_error"))
    parts = (_text(ns_error.get("domain")), _lenient_text(ns_error.get("code")))
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
    sdk = _mapping(event.get("sdk"))
    name, version = _text(sdk.get("name")) or "", _text(sdk.get("version")) or ""
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


def _chosen_thread(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The one crashed thread, else the one current thread, else the only thread."""
    threads = _values(event.get("threads"))
    for subset in (
        [thread for thread in threads if thread.get("crashed") is True],
        [thread for thread in threads if thread.get("current") is True],
        threads,
    ):
        if len(subset) == 1:
            return subset[0]
    return None


def _stack_candidate(strategy: str, stack: _Stack) -> _Candidate:
    return _Candidate(strategy, stack.app, bool(stack.app), stack.system, bool(stack.system))


def _message_candidate(event: Mapping[str, Any]) -> _Candidate:
    template, formatted = message_parts(event)
    text = template or formatted
    normalized = normalize_message(text) if text else ""
    values = (normalized,) if normalized else ()
    return _Candidate("message", values, False, values, False)


# Cached: the same few messages recur across events. 1024 entries of at most ~8 KiB each.
@functools.lru_cache(maxsize=1024)
def normalize_message(text: str) -> str:
    """``text`` without what varies between occurrences of the same error (§6.4): the first
    two non-empty lines (plus ``...`` when more followed), with emails, URLs, hostnames, IPs,
    UUIDs, hashes, dates, durations, hex, floats, integers and ``=``-assigned quoted strings and
    booleans replaced by ``<email>``, ``<url>``... ``=<quoted_str>``, ``=<bool>``."""
    lines = [line for line in text.splitlines() if line.strip()]
    kept = "\n".join(lines[:2]) + ("..." if len(lines) > 2 else "")
    return _VOLATILE_VALUES.sub(_placeholder, kept)


def _placeholder(match: re.Match[str]) -> str:
    name = match.lastgroup or ""
    return f"=<{name}>" if name in _AFTER_EQUALS else f"<{name}>"


# --- stack traces and frames (§6.2) --------------------------------------------------------


def _read_stack(stacktrace: Any, event_platform: str) -> _Stack:
    """The values each variant takes from a stack trace; empty when no frame contributes."""
    frames = _frames(stacktrace)
    app: list[str] = []
    system: list[str] = []
    previous: Mapping[str, Any] | None = None
    for frame in frames:
        recursion = previous is not None and _same_call_site(frame, previous)
        previous = frame
        if recursion:
            continue
        platform = _platform(frame.get("platform"), event_platform)
        values = _frame_values(frame, platform)
        if values:
            system.extend(values)
            if is_in_app(frame, platform):
                app.extend(values)
    if system and len(frames) == 1 and _is_bad_single_js_frame(frames[0], event_platform):
        return _NO_STACK
    return _Stack(tuple(app), tuple(system))


def _frames(stacktrace: Any) -> list[Mapping[str, Any]]:
    frames = _mapping(stacktrace).get("frames")
    if not isinstance(frames, list):
        return []
    return [frame for frame in frames if isinstance(frame, Mapping)][-_MAX_FRAMES:]


# Fields that tell call sites apart, the most often different first.
_CALL_SITE_FIELDS: Final = (
    "lineno",
    "function",
    "colno",
    "module",
    "filename",
    "abs_path",
    "package",
)


def _same_call_site(frame: Mapping[str, Any], previous: Mapping[str, Any]) -> bool:
    # Consecutive frames almost always differ in line number: test it before building a generator.
    if frame.get("lineno") != previous.get("lineno"):
        return False
    return all(frame.get(field) == previous.get(field) for field in _CALL_SITE_FIELDS)


def _is_bad_single_js_frame(frame: Mapping[str, Any], event_platform: str) -> bool:
    # newstyle:2023-01-11 keeps a legacy bug: the check meant to drop a lone function-less frame
    # pointing at a URL drops one that does *not* point at a URL instead (§6.2).
    if _platform(frame.get("platform"), event_platform) not in _JS_PLATFORMS:
        return False
    abs_path = _text(frame.get("abs_path")) or ""
    return not _text(frame.get("function")) and not abs_path.startswith(_JS_FRAME_URL_PREFIXES)


def is_in_app(frame: Mapping[str, Any], platform: str) -> bool:
    """Whether ``frame`` is the application's own code: the default ``-app`` rules (installed
    packages, vendored code, JDK and framework modules) overrule the SDK's flag, and a frame
    without a flag is not in-app."""
    path = _text(frame.get("abs_path")) or _text(frame.get("filename"))
    if path and _SYSTEM_PATH.search(path.replace("\\", "/") if "\\" in path else path):
        return False
    if platform == "java":
        module = _text(frame.get("module"))
        if module and _SYSTEM_JAVA_MODULE.match(module):
            return False
    return frame.get("in_app") is True


def _frame_values(frame: Mapping[str, Any], platform: str) -> tuple[str, ...]:
    """The leaf values ``frame`` contributes, in order module/filename, function, context line;
    empty when the whole frame is ignored."""
    abs_path = _text(frame.get("abs_path"))
    function = _text(frame.get("function"))
    raw_function = _text(frame.get("raw_function"))
    javascript = platform in _JS_PLATFORMS
    if javascript and _is_low_quality_js_frame(abs_path, function, raw_function):
        return ()
    module = _module_value(_text(frame.get("module")), abs_path, platform)
    filename = None if module else _filename_value(_text(frame.get("filename")), abs_path, platform)
    name = _function_value(function, raw_function, platform)
    line = None
    if platform in _CONTEXT_LINE_PLATFORMS:
        line = _context_line_value(frame.get("context_line"), javascript, function, abs_path)
    if javascript and name and line and _mapping(frame.get("data")).get("sourcemap"):
        name = None  # function names from a source map are unreliable; the line is not
    if platform in _NATIVE_PLATFORMS and name:
        filename = None  # a native function name already carries its namespace
    values = tuple(filter(None, (module or filename, name, line)))
    if not values:
        package = _basename(_text(frame.get("package")) or "").lower()
        return (package,) if package else ()
    return values


def _is_low_quality_js_frame(abs_path: str | None, function: str | None, raw: str | None) -> bool:
    if abs_path in _JS_LOW_QUALITY_PATHS:
        return True
    return (raw or function or "").rsplit(".", 1)[-1] == "eval"


def _module_value(module: str | None, abs_path: str | None, platform: str) -> str | None:
    if not module:
        return None
    if platform in _JS_PLATFORMS and "/" in module and abs_path and abs_path.endswith(module):
        return None  # a path the SDK guessed, not a module name
    if platform == "java":
        if "$$Lambda$" in module:
            return None
        return _without_generated_java_names(module)
    return module


def _filename_value(filename: str | None, abs_path: str | None, platform: str) -> str | None:
    if abs_path and abs_path.startswith(_URL_PREFIXES):
        return None  # a URL changes with hosts and cache busters
    name = _basename(filename or abs_path or "")
    if platform == "java":
        name = _without_generated_java_names(name)
    name = name.lower()
    return name if name and name not in _DROPPED_FILENAMES else None


def _basename(path: str) -> str:
    return _PATH_SEPARATORS.split(path)[-1] if ("/" in path or "\\" in path) else path


def _without_generated_java_names(name: str) -> str:
    if "$" not in name and "Generated" not in name:
        return name
    for pattern, replacement in _JAVA_GENERATED:
        name = pattern.sub(replacement, name)
    return name


def _function_value(function: str | None, raw_function: str | None, platform: str) -> str | None:
    if platform in _JS_PLATFORMS:
        return _js_function_value(function, raw_function)
    name = function or raw_function
    if not name:
        return None
    if not raw_function and (platform in _NATIVE_PLATFORMS or platform == "csharp"):
        name = trim_native_function(name)
    if platform == "ruby":
        return "block" if name.startswith("block ") else _RUBY_ERB_SUFFIX.sub("", name)
    if platform == "php":
        anonymous = name.startswith(_PHP_ANONYMOUS_PREFIXES) or name.endswith("{closure}")
        return None if anonymous else name
    if platform == "java":
        return None if name.startswith("lambda$") else name
    if platform in _NATIVE_PLATFORMS and name in _NATIVE_UNKNOWN_FUNCTIONS:
        return None
    return name


def _js_function_value(function: str | None, raw_function: str | None) -> str | None:
    # Browsers disagree on the receiver (`Object.foo`, `Foo.foo`); only the last part is stable.
    checked = (raw_function or function or "").rsplit(".", 1)[-1]
    if not checked or checked in _JS_UNKNOWN_FUNCTIONS or checked.endswith("/<"):
        return None
    return (function or raw_function or "").rsplit(".", 1)[-1] or None


def _context_line_value(
    raw: Any, javascript: bool, function: str | None, abs_path: str | None
) -> str | None:
    if not isinstance(raw, str) or len(raw) > _MAX_CONTEXT_LINE:
        return None
    if javascript and not function and abs_path and abs_path.startswith(_URL_PREFIXES):
        return None
    return " ".join(raw.split()) or None


def trim_native_function(name: str) -> str:
    """A C, C++, Objective-C or C# function signature reduced to its qualified name:
    ``void ns::Foo<int>::bar(int) const`` → ``ns::Foo<T>::bar``. Return types, argument lists and
    template arguments vary between compilers and builds; the qualified name does not."""
    text = name.strip()
    if not text or text[0] in "<-+[":  # `<unknown>`, Objective-C `-[Cls sel:]`
        return text
    operators: list[str] = []

    def protect(match: re.Match[str]) -> str:
        operators.append(match.group(0))
        return f"\x00{len(operators) - 1}\x00"

    text = _NATIVE_OPERATOR.sub(protect, text.replace(_ANONYMOUS_NAMESPACE, "\x01"))
    text = _without_template_arguments(_without_arguments(_without_qualifiers(text)))
    text = text.rsplit(" ", 1)[-1]  # the return type
    for index, operator in enumerate(operators):
        text = text.replace(f"\x00{index}\x00", operator)
    return text.replace("\x01", "`anonymous namespace'")


def _without_qualifiers(text: str) -> str:
    trimmed = True
    while trimmed:
        trimmed = False
        for qualifier in _NATIVE_QUALIFIERS:
            if text.endswith(qualifier):
                text, trimmed = text[: -len(qualifier)].rstrip(), True
    return text


def _without_arguments(text: str) -> str:
    if not text.endswith(")"):
        return text
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        if text[index] == ")":
            depth += 1
        elif text[index] == "(":
            depth -= 1
        if depth == 0:
            return text[:index].rstrip() if index > 0 else text
    return text


def _without_template_arguments(text: str) -> str:
    out: list[str] = []
    depth = 0
    for char in text:
        if char == "<":
            if depth == 0:
                out.append("<T>")
            depth += 1
        elif char == ">" and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out) if depth == 0 else text


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
        return _number_text(value)
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
        return _lenient_text((last_exception(event) or {}).get(field))

    return read


def _from_crash_frame(*fields: str) -> Callable[[Mapping[str, Any]], str | None]:
    def read(event: Mapping[str, Any]) -> str | None:
        frame = crash_frame(event) or {}
        return next((value for value in map(_text, map(frame.get, fields)) if value), None)

    return read


def _message_variable(event: Mapping[str, Any]) -> str | None:
    template, formatted = message_parts(event)
    return formatted or template or _from_last_exception("value")(event)


def _package_variable(event: Mapping[str, Any]) -> str | None:
    package = _from_crash_frame("package")(event)
    return _basename(package) if package else None


_Resolver = tuple[str, Callable[[Mapping[str, Any]], str | None]]
_VARIABLES: Final[dict[str, _Resolver]] = {
    "transaction": ("<no-transaction>", lambda event: _text(event.get("transaction"))),
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
    "logger": ("<no-logger>", lambda event: _text(event.get("logger"))),
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
    return _lenient_text(value)


# --- event accessors shared with titles.py -------------------------------------------------


def exceptions_of(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The event's exceptions, oldest first (``{"values": [...]}`` or a bare list; entries that
    are not objects are dropped)."""
    return _values(event.get("exception"))


def last_exception(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The exception that was finally raised (the last one), if any."""
    exceptions = exceptions_of(event)
    return exceptions[-1] if exceptions else None


def crash_frame(event: Mapping[str, Any], *, named: bool = False) -> Mapping[str, Any] | None:
    """The frame where the event happened: the last in-app frame of the last exception's stack
    trace (else of the top-level stack trace, else of the chosen thread), or the last frame when
    none is in-app. ``named`` skips frames without a usable function name."""
    last = last_exception(event)
    frames = _frames(last.get("stacktrace")) if last else []
    if not frames:
        frames = _frames(event.get("stacktrace"))
    if not frames:
        thread = _chosen_thread(event)
        frames = _frames(thread.get("stacktrace")) if thread else []
    platform = _platform(event.get("platform"))
    fallback: Mapping[str, Any] | None = None
    for frame in frames[::-1]:
        if named and (_text(frame.get("function")) or "<unknown>") in _NATIVE_UNKNOWN_FUNCTIONS:
            continue
        if is_in_app(frame, _platform(frame.get("platform"), platform)):
            return frame
        fallback = fallback or frame
    return fallback


def message_parts(event: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(template, formatted)`` of the event's message: ``logentry``, else the legacy
    top-level ``message`` (a plain string there is the formatted text)."""
    for source in (event.get("logentry"), event.get("message")):
        if isinstance(source, Mapping):
            parts = (_lenient_text(source.get("message")), _lenient_text(source.get("formatted")))
        else:
            parts = (None, _lenient_text(source))
        if parts[0] or parts[1]:
            return parts
    return None, None


def event_level(event: Mapping[str, Any]) -> str:
    """The event's level as Relay normalizes it: one of fatal, error, warning, info, debug
    (aliases and Python's numeric levels accepted); ``error`` when missing or unknown."""
    raw = event.get("level")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return _PYTHON_LEVELS.get(raw, "error")
    level = raw.strip().lower() if isinstance(raw, str) else ""
    level = _LEVEL_ALIASES.get(level, level)
    return level if level in _LEVELS else "error"


def _platform(value: Any, default: str = "other") -> str:
    return (value.strip().lower() or default) if isinstance(value, str) else default


def _values(container: Any) -> list[Mapping[str, Any]]:
    if isinstance(container, Mapping):
        container = container.get("values")
    if not isinstance(container, list):
        return []
    return [item for item in container if isinstance(item, Mapping)]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _lenient_text(value: Any) -> str | None:
    """A field the protocol converts to a string: numbers and booleans as text, objects and
    arrays as JSON (as Relay does for exception values)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_text(value)
    if isinstance(value, (Mapping, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return None


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
