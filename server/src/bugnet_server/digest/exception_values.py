"""Exceptions and their mechanisms (protocol notes §5.4). The order, cause first and the
exception finally raised last, is kept as sent."""

from __future__ import annotations

from typing import Any, Final

from bugnet_server.digest.fields import (
    INVALID,
    ProcessingErrors,
    Reader,
    as_json_text,
    bag_reader,
    expect_dict,
    expect_values,
    lenient_string,
    read_bool,
    read_int,
    read_object,
    string_reader,
)
from bugnet_server.digest.stacktraces import normalize_stacktrace, read_thread_id
from bugnet_server.digest.trimming import (
    ENUMLIKE,
    MEDIUM,
    MESSAGE,
    PATH,
    SMALL,
    SYMBOL,
    trim_string,
)

DEFAULT_MECHANISM: Final = "generic"


def _read_exception_value(value: Any) -> Any:
    # The value is shown as text whatever the SDK sent.
    text = lenient_string(value)
    if text is None:
        text = str(value) if type(value) is bool else as_json_text(value)
    return trim_string(text, MESSAGE)


_EXCEPTION_READERS: Final[dict[str, Reader]] = {
    "type": string_reader(SYMBOL),
    "value": _read_exception_value,
    "module": string_reader(SYMBOL),
}

_MECHANISM_READERS: Final[dict[str, Reader]] = {
    "type": string_reader(ENUMLIKE),
    "handled": read_bool,
    "synthetic": read_bool,
    "is_exception_group": read_bool,
    "exception_id": read_int,
    "parent_id": read_int,
    "source": string_reader(SYMBOL),
    "description": string_reader(MESSAGE),
    "help_link": string_reader(PATH),
    "data": bag_reader(MEDIUM),
    "meta": bag_reader(SMALL),
}


def normalize_exceptions(errors: ProcessingErrors, value: Any) -> dict[str, Any] | None:
    """``{"values": [...]}`` of exceptions that have a type or a value; None when none has."""
    items = expect_values(errors, value, "exception")
    if items is None:
        return None
    values: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        exception = _normalize_exception(errors, item, f"exception.values.{index}")
        if exception is not None:
            values.append(exception)
    return {"values": values} if values else None


def _normalize_exception(errors: ProcessingErrors, value: Any, path: str) -> dict[str, Any] | None:
    raw = expect_dict(errors, value, path)
    if raw is None:
        return None
    exception = read_object(errors, raw, path, _EXCEPTION_READERS)
    if not exception.get("type") and not exception.get("value"):
        errors.add("missing_attribute", f"{path}.type")
        return None
    thread_id = read_thread_id(raw.get("thread_id"))
    if thread_id is INVALID:
        errors.invalid(f"{path}.thread_id", raw.get("thread_id"))
    elif thread_id is not None:
        exception["thread_id"] = thread_id
    mechanism = _normalize_mechanism(errors, raw.get("mechanism"), f"{path}.mechanism")
    if mechanism is not None:
        exception["mechanism"] = mechanism
    for field in ("stacktrace", "raw_stacktrace"):
        stacktrace = normalize_stacktrace(errors, raw.get(field), f"{path}.{field}")
        if stacktrace is not None:
            exception[field] = stacktrace
    return exception


def _normalize_mechanism(errors: ProcessingErrors, value: Any, path: str) -> dict[str, Any] | None:
    raw = expect_dict(errors, value, path)
    if raw is None:
        return None
    mechanism = read_object(errors, raw, path, _MECHANISM_READERS)
    if not mechanism.get("type"):
        mechanism["type"] = DEFAULT_MECHANISM
    return mechanism
