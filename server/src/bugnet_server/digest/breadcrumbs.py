"""Breadcrumbs (protocol notes §5.6): kept in the order sent, oldest first, never re-sorted."""

from __future__ import annotations

from typing import Any, Final

from bugnet_server.digest.fields import (
    INVALID,
    ProcessingErrors,
    Reader,
    bag_reader,
    expect_dict,
    expect_values,
    lenient_string_reader,
    read_level,
    read_object,
    read_uuid,
    string_reader,
)
from bugnet_server.digest.timestamps import parse_timestamp
from bugnet_server.digest.trimming import ENUMLIKE, MEDIUM, MESSAGE

DEFAULT_TYPE: Final = "default"
DEFAULT_LEVEL: Final = "info"


def _read_timestamp(value: Any) -> Any:
    seconds = parse_timestamp(value)
    return INVALID if seconds is None else seconds


_read_type: Final = string_reader(ENUMLIKE)

_BREADCRUMB_READERS: Final[dict[str, Reader]] = {
    "timestamp": _read_timestamp,
    "type": _read_type,
    "category": string_reader(ENUMLIKE),
    "message": lenient_string_reader(MESSAGE),
    "level": read_level,
    "data": bag_reader(MEDIUM),
    "event_id": read_uuid,
}


def normalize_breadcrumbs(errors: ProcessingErrors, value: Any) -> list[dict[str, Any]]:
    """The usable breadcrumbs, each with a ``type`` and a ``level``. A breadcrumb without a
    usable timestamp has none yet: the caller gives it the event's."""
    items = expect_values(errors, value, "breadcrumbs")
    if items is None:
        return []
    crumbs: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        crumb = _normalize_breadcrumb(errors, item, f"breadcrumbs.values.{index}")
        if crumb is not None:
            crumbs.append(crumb)
    return crumbs


def _normalize_breadcrumb(errors: ProcessingErrors, value: Any, path: str) -> dict[str, Any] | None:
    raw = expect_dict(errors, value, path)
    if raw is None:
        return None
    crumb = read_object(errors, raw, path, _BREADCRUMB_READERS)
    if "type" not in crumb and raw.get("ty") is not None:  # Relay's alias
        kind = _read_type(raw["ty"])
        if kind is INVALID:
            errors.invalid(f"{path}.ty", raw["ty"])
        else:
            crumb["type"] = kind
    crumb.setdefault("type", DEFAULT_TYPE)
    crumb.setdefault("level", DEFAULT_LEVEL)
    return crumb
