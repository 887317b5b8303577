"""``logentry``: the legacy ``message`` string, and formatting from ``params`` (protocol §5.3).

Formatting follows Python's semantics (``%`` for logging-style templates, ``str.format`` for
``{}``-style ones) one placeholder at a time, so a mismatched or missing parameter leaves that
placeholder as written instead of failing the whole message.
"""

from __future__ import annotations

import re
from typing import Any, Final

from bugnet_server.digest.fields import ProcessingErrors, lenient_string
from bugnet_server.digest.trimming import MEDIUM, MESSAGE, SKIP, trim_databag, trim_string

_PERCENT: Final = re.compile(
    r"%(?:\(([^)]*)\))?([#0 +\-]*\d*(?:\.\d+)?)[hlL]?([diouxXeEfFgGcrsa%])"
)
_BRACE: Final = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_WIDTH: Final = re.compile(r"\d+")
# A width like %999999999d would allocate a huge string before any limit applies.
_MAX_WIDTH: Final = 100
_OUTPUT_MAX: Final = MESSAGE.soft + MESSAGE.allowance


def normalize_logentry(
    errors: ProcessingErrors, logentry: Any, legacy: Any
) -> dict[str, Any] | None:
    """The canonical logentry, ``{"formatted", "message"?, "params"?}``, from ``logentry`` or,
    when that is absent or unusable, the legacy top-level ``message``. None when neither gives a
    text. ``message`` (the template) is kept only when it differs from ``formatted``."""
    result = _from_value(errors, logentry, "logentry")
    if result is None and legacy is not None:
        result = _from_value(errors, legacy, "message")
    return result


def _from_value(errors: ProcessingErrors, value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if type(value) is dict:
        return _from_object(errors, value, path)
    text = lenient_string(value)  # a plain string is the formatted message, as in Relay
    if text is None:
        errors.invalid(path, value)
        return None
    return {"formatted": trim_string(text, MESSAGE)}


def _from_object(errors: ProcessingErrors, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    message = _text(errors, raw.get("message"), f"{path}.message")
    formatted = _text(errors, raw.get("formatted"), f"{path}.formatted")
    params = _params(errors, raw.get("params"), f"{path}.params")
    if formatted is None and message is not None:
        formatted = format_message(message, params) if params is not None else message
    if formatted is None:
        if raw:
            errors.add("missing_attribute", path)
        return None
    out: dict[str, Any] = {"formatted": trim_string(formatted, MESSAGE)}
    if message is not None and message != formatted:
        out["message"] = message
        if params is not None:
            out["params"] = params
    return out


def _text(errors: ProcessingErrors, value: Any, path: str) -> str | None:
    if value is None:
        return None
    text = lenient_string(value)
    if text is None:
        errors.invalid(path, value)
        return None
    return trim_string(text, MESSAGE)


def _params(errors: ProcessingErrors, value: Any, path: str) -> list[Any] | dict[str, Any] | None:
    if value is None:
        return None
    if type(value) is not list and type(value) is not dict:
        errors.invalid(path, value)
        return None
    trimmed = trim_databag(value, MEDIUM)
    return None if trimmed is SKIP else trimmed


def format_message(template: str, params: list[Any] | dict[str, Any]) -> str:
    """``template`` with its placeholders replaced from ``params``; never raises."""
    if "%" in template:
        formatted = _percent_format(template, params)
        if formatted != template or "{" not in template:
            return formatted
    if "{" in template:
        return _brace_format(template, params)
    return template


def _percent_format(template: str, params: list[Any] | dict[str, Any]) -> str:
    position = 0
    produced = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal position, produced
        key, spec, conversion = match.groups()
        if conversion == "%":
            return "%"
        if key is not None:
            found, value = _lookup(params, key)
        else:
            found, value = _lookup(params, position)
            position += 1
        if not found or produced > _OUTPUT_MAX:
            return match.group(0)
        text = _percent_one(spec + conversion, value)
        produced += len(text)
        return text

    return _PERCENT.sub(replace, template)


def _percent_one(spec: str, value: Any) -> str:
    if _too_wide(spec):
        return _plain(value)
    try:
        return ("%" + spec) % (value,)
    except (TypeError, ValueError, OverflowError):
        return _plain(value)


def _brace_format(template: str, params: list[Any] | dict[str, Any]) -> str:
    position = 0
    produced = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal position, produced
        field = match.group(1)
        if field is None:
            return match.group(0)[0]  # "{{" or "}}"
        name, _, spec = field.partition(":")
        name, _, conversion = name.partition("!")
        if name == "":
            found, value = _lookup(params, position)
            position += 1
        else:
            # Short indexes only: int() refuses (raises on) numbers of thousands of digits.
            index = int(name) if name.isdecimal() and len(name) <= 9 else name
            found, value = _lookup(params, index)
        if not found or produced > _OUTPUT_MAX:
            return match.group(0)
        text = _brace_one(spec, conversion, value)
        produced += len(text)
        return text

    return _BRACE.sub(replace, template)


def _brace_one(spec: str, conversion: str, value: Any) -> str:
    if conversion == "r":
        value = repr(value)
    if _too_wide(spec):
        return _plain(value)
    try:
        return format(value, spec)
    except (TypeError, ValueError, OverflowError):
        return _plain(value)


def _lookup(params: list[Any] | dict[str, Any], key: int | str) -> tuple[bool, Any]:
    if isinstance(params, dict):
        name = str(key)
        return (True, params[name]) if name in params else (False, None)
    if isinstance(key, int) and key < len(params):
        return True, params[key]
    return False, None


def _too_wide(spec: str) -> bool:
    return any(len(number) > 3 or int(number) > _MAX_WIDTH for number in _WIDTH.findall(spec))


def _plain(value: Any) -> str:
    try:
        return str(value)
    except ValueError:  # an int beyond Python's digit limit
        return "[unrepresentable]"
