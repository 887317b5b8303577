"""Stack traces, their frames, and threads (protocol notes §5.5 and §5.6)."""

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
    read_bool,
    read_int,
    read_object,
    read_platform,
    string_list_reader,
    string_reader,
)
from bugnet_server.digest.trimming import (
    ENUMLIKE,
    LARGE,
    MEDIUM,
    PATH,
    SKIP,
    SMALL,
    SUMMARY,
    SYMBOL,
    trim_databag,
)

MAX_FRAMES: Final = 250
FRAMES_WITH_DATA: Final = 50
# A frame must say where it is: without any of these it cannot be shown or grouped.
_LOCATING_FIELDS: Final = ("filename", "abs_path", "function", "instruction_addr")
_FRAME_DATA_FIELDS: Final = ("vars", "pre_context", "post_context")


def _read_address(value: Any) -> Any:
    # Addresses are hex strings on the wire; some SDKs send plain integers.
    if type(value) is int and value >= 0:
        return hex(value)
    if type(value) is str:
        return value[: ENUMLIKE.soft]
    return INVALID


def _read_vars(value: Any) -> Any:
    # Relay also accepts vars as a list, indexed by position.
    if type(value) is list:
        value = {str(index): item for index, item in enumerate(value)}
    if type(value) is not dict:
        return INVALID
    trimmed = trim_databag(value, MEDIUM)
    return INVALID if trimmed is SKIP else trimmed


_FRAME_READERS: Final[dict[str, Reader]] = {
    "filename": string_reader(PATH),
    "abs_path": string_reader(PATH),
    "module": string_reader(SYMBOL),
    "package": string_reader(PATH),
    "function": string_reader(SYMBOL),
    "raw_function": string_reader(SYMBOL),
    "symbol": string_reader(SYMBOL),
    "platform": read_platform,
    "lineno": read_int,
    "colno": read_int,
    "pre_context": string_list_reader(SUMMARY),
    "context_line": string_reader(SUMMARY),
    "post_context": string_list_reader(SUMMARY),
    "in_app": read_bool,
    "vars": _read_vars,
    "instruction_addr": _read_address,
    "symbol_addr": _read_address,
    "image_addr": _read_address,
    "function_id": _read_address,
    "addr_mode": string_reader(ENUMLIKE),
    "stack_start": read_bool,
    "source_link": string_reader(PATH),
    "lock": bag_reader(SMALL),
    "data": bag_reader(SMALL),
}

_STACKTRACE_READERS: Final[dict[str, Reader]] = {
    "registers": bag_reader(LARGE),
    "snapshot": read_bool,
    "lang": string_reader(ENUMLIKE),
}

_THREAD_READERS: Final[dict[str, Reader]] = {
    "name": string_reader(SYMBOL),
    "crashed": read_bool,
    "current": read_bool,
    "main": read_bool,
    "state": string_reader(ENUMLIKE),
    "held_locks": bag_reader(SMALL),
}


def normalize_stacktrace(errors: ProcessingErrors, value: Any, path: str) -> dict[str, Any] | None:
    """``{"frames": [...], ...}`` keeping the newest ``MAX_FRAMES`` frames, with local data
    stripped from the middle ones; None (with an error) when no usable frame remains."""
    raw = expect_dict(errors, value, path)
    if raw is None:
        return None
    raw_frames = raw.get("frames")
    if type(raw_frames) is not list:
        if raw_frames is None:
            errors.add("missing_attribute", f"{path}.frames")
        else:
            errors.invalid(f"{path}.frames", raw_frames)
        return None
    first = max(0, len(raw_frames) - MAX_FRAMES)  # the last frames raised the error: keep them
    frames: list[dict[str, Any]] = []
    for index in range(first, len(raw_frames)):
        frame = _normalize_frame(errors, raw_frames[index], f"{path}.frames.{index}")
        if frame is not None:
            frames.append(frame)
    if not frames:
        errors.invalid(f"{path}.frames", raw_frames)
        return None
    slim_frames(frames)
    out = read_object(errors, raw, path, _STACKTRACE_READERS)
    out["frames"] = frames
    return out


def _normalize_frame(errors: ProcessingErrors, value: Any, path: str) -> dict[str, Any] | None:
    raw = expect_dict(errors, value, path)
    if raw is None:
        return None
    frame = read_object(errors, raw, path, _FRAME_READERS)
    for field in _LOCATING_FIELDS:
        if field in frame:
            return frame
    errors.add("missing_attribute", path)
    return None


def slim_frames(frames: list[dict[str, Any]]) -> None:
    """Strip vars and surrounding source lines from all but ``FRAMES_WITH_DATA`` frames: the
    outermost and innermost system frames lose them first, then the middle in-app frames."""
    if len(frames) <= FRAMES_WITH_DATA:
        return
    app = [frame for frame in frames if frame.get("in_app") is True]
    system = [frame for frame in frames if frame.get("in_app") is not True]
    app_kept = min(len(app), FRAMES_WITH_DATA)
    _strip_middle(system, FRAMES_WITH_DATA - app_kept)
    _strip_middle(app, app_kept)


def _strip_middle(frames: list[dict[str, Any]], keep: int) -> None:
    # Both ends carry the meaning: where the program entered and where it failed.
    if len(frames) <= keep:
        return
    head = keep // 2
    tail = keep - head
    for frame in frames[head : len(frames) - tail]:
        for field in _FRAME_DATA_FIELDS:
            frame.pop(field, None)


def normalize_threads(errors: ProcessingErrors, value: Any) -> dict[str, Any] | None:
    """``{"values": [...]}`` of threads; None when none remains."""
    items = expect_values(errors, value, "threads")
    if items is None:
        return None
    threads: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        thread = _normalize_thread(errors, item, f"threads.values.{index}")
        if thread:
            threads.append(thread)
    return {"values": threads} if threads else None


_read_thread_id: Final = lenient_string_reader(ENUMLIKE)


def _normalize_thread(errors: ProcessingErrors, value: Any, path: str) -> dict[str, Any] | None:
    raw = expect_dict(errors, value, path)
    if raw is None:
        return None
    thread = read_object(errors, raw, path, _THREAD_READERS)
    thread_id = read_thread_id(raw.get("id"))
    if thread_id is INVALID:
        errors.invalid(f"{path}.id", raw.get("id"))
    elif thread_id is not None:
        thread["id"] = thread_id
    stacktrace = normalize_stacktrace(errors, raw.get("stacktrace"), f"{path}.stacktrace")
    if stacktrace is not None:
        thread["stacktrace"] = stacktrace
    return thread


def read_thread_id(value: Any) -> Any:
    """A thread id: an integer stays one, a string is kept; None when absent."""
    if value is None:
        return None
    if type(value) is int:
        return value
    return _read_thread_id(value)
