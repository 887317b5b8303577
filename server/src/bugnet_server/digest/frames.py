"""Frame rules of grouping: what a stack trace and each of its frames contribute.

Implements docs/sentry-protocol.md §6.2 (frame components) and the default ``-app`` enhancement
rules of §6.1 step 2 (``is_in_app``), with the native function trimming of §6.1 step 3. Also the
field readers (``text``, ``mapping``, ``platform``) shared with ``accessors.py`` and
``grouping.py``: this module is the bottom of the grouping modules and imports none of them.

Pure: no Django, no I/O; nothing here raises on odd input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

# Relay keeps the last 250 frames of a stack trace; grouping never sees more.
_MAX_FRAMES: Final = 250
# A context line this long is minified code or data: it would split groups, not describe them.
_MAX_CONTEXT_LINE: Final = 120

_JS_PLATFORMS: Final = frozenset({"javascript", "node"})
_NATIVE_PLATFORMS: Final = frozenset({"objc", "cocoa", "swift", "native", "c"})
_CONTEXT_LINE_PLATFORMS: Final = frozenset({"javascript", "node", "python", "php", "ruby"})

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
NATIVE_UNKNOWN_FUNCTIONS: Final = frozenset({"<unknown>", "<redacted>"})

_NATIVE_OPERATOR: Final = re.compile(
    r"\boperator\s*(?:<=>|<<=|>>=|<<|>>|<=|>=|->\*|->|\(\)|\[\]|new\[\]|delete\[\]|"
    r"[-+*/%^&|~!=<>,]=?|\s\w+)"
)
_NATIVE_QUALIFIERS: Final = (" const", " volatile", " &&", " &", " noexcept", " override", " final")
_ANONYMOUS_NAMESPACE: Final = "(anonymous namespace)"


class Stack(NamedTuple):
    """The values a stack trace contributes to each variant."""

    app: tuple[str, ...]
    system: tuple[str, ...]


_NO_STACK: Final = Stack((), ())


def read_stack(stacktrace: Any, event_platform: str) -> Stack:
    """The values each variant takes from a stack trace; empty when no frame contributes."""
    frames = stack_frames(stacktrace)
    app: list[str] = []
    system: list[str] = []
    previous: Mapping[str, Any] | None = None
    for frame in frames:
        recursion = previous is not None and _same_call_site(frame, previous)
        previous = frame
        if recursion:
            continue
        frame_platform = platform(frame.get("platform"), event_platform)
        values = _frame_values(frame, frame_platform)
        if values:
            system.extend(values)
            if is_in_app(frame, frame_platform):
                app.extend(values)
    if system and len(frames) == 1 and _is_bad_single_js_frame(frames[0], event_platform):
        return _NO_STACK
    return Stack(tuple(app), tuple(system))


def stack_frames(stacktrace: Any) -> list[Mapping[str, Any]]:
    """The frames of a stack trace, oldest first: objects only, at most the last 250."""
    frames = mapping(stacktrace).get("frames")
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
    if platform(frame.get("platform"), event_platform) not in _JS_PLATFORMS:
        return False
    abs_path = text(frame.get("abs_path")) or ""
    return not text(frame.get("function")) and not abs_path.startswith(_JS_FRAME_URL_PREFIXES)


def is_in_app(frame: Mapping[str, Any], platform: str) -> bool:
    """Whether ``frame`` is the application's own code: the default ``-app`` rules (installed
    packages, vendored code, JDK and framework modules) overrule the SDK's flag, and a frame
    without a flag is not in-app."""
    path = text(frame.get("abs_path")) or text(frame.get("filename"))
    if path and _SYSTEM_PATH.search(path.replace("\\", "/") if "\\" in path else path):
        return False
    if platform == "java":
        module = text(frame.get("module"))
        if module and _SYSTEM_JAVA_MODULE.match(module):
            return False
    return frame.get("in_app") is True


def _frame_values(frame: Mapping[str, Any], platform: str) -> tuple[str, ...]:
    """The leaf values ``frame`` contributes, in order module/filename, function, context line;
    empty when the whole frame is ignored."""
    abs_path = text(frame.get("abs_path"))
    function = text(frame.get("function"))
    raw_function = text(frame.get("raw_function"))
    javascript = platform in _JS_PLATFORMS
    if javascript and _is_low_quality_js_frame(abs_path, function, raw_function):
        return ()
    module = _module_value(text(frame.get("module")), abs_path, platform)
    filename = None if module else _filename_value(text(frame.get("filename")), abs_path, platform)
    name = _function_value(function, raw_function, platform)
    line = None
    if platform in _CONTEXT_LINE_PLATFORMS:
        line = _context_line_value(frame.get("context_line"), javascript, function, abs_path)
    if javascript and name and line and mapping(frame.get("data")).get("sourcemap"):
        name = None  # function names from a source map are unreliable; the line is not
    if platform in _NATIVE_PLATFORMS and name:
        filename = None  # a native function name already carries its namespace
    values = tuple(filter(None, (module or filename, name, line)))
    if not values:
        package = basename(text(frame.get("package")) or "").lower()
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
    name = basename(filename or abs_path or "")
    if platform == "java":
        name = _without_generated_java_names(name)
    name = name.lower()
    return name if name and name not in _DROPPED_FILENAMES else None


def basename(path: str) -> str:
    """The last component of a ``/`` or ``\\`` separated path."""
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
    if platform in _NATIVE_PLATFORMS and name in NATIVE_UNKNOWN_FUNCTIONS:
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


# --- field readers shared with accessors.py and grouping.py --------------------------------


def platform(value: Any, default: str = "other") -> str:
    """A platform name, stripped and lowercased; ``default`` when missing or not a string."""
    return (value.strip().lower() or default) if isinstance(value, str) else default


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is an object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def text(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None
