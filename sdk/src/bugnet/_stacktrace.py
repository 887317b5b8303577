"""Exceptions and frames to the protocol's ``exception`` and ``stacktrace`` shapes.

Frames go oldest (caller) first; a chain of exceptions goes oldest (the cause) first. The
static part of a frame (file names, module, function, in-app flag, source lines) is cached per
code object and line, so a capture costs little more than snapshotting the locals.
"""

from __future__ import annotations

import os
import sys

from bugnet._serialize import cut, safe_repr, snapshot_locals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType, TracebackType
    from typing import Any, Optional

    from bugnet.types import ExceptionValue, Frame, Mechanism

CONTEXT_LINES = 5
MAX_EXCEPTIONS = 25
MAX_FRAMES = 250  # what Relay keeps; beyond it we keep the outermost 50 and innermost 200
_CACHE_LIMIT = 8192


class FrameOptions:
    """What a frame snapshot includes (derived once from the client's options)."""

    __slots__ = (
        "in_app_exclude",
        "in_app_include",
        "include_locals",
        "include_source",
        "max_value_length",
    )

    def __init__(
        self,
        include_locals: bool = True,
        include_source: bool = True,
        in_app_include: tuple[str, ...] = (),
        in_app_exclude: tuple[str, ...] = (),
        max_value_length: int = 1024,
    ) -> None:
        self.include_locals = include_locals
        self.include_source = include_source
        self.in_app_include = in_app_include
        self.in_app_exclude = in_app_exclude
        self.max_value_length = max_value_length


_static_cache: dict[Any, Frame] = {}
_stdlib_dirs: Optional[tuple[str, ...]] = None


def _library_dirs() -> tuple[str, ...]:
    global _stdlib_dirs
    if _stdlib_dirs is None:
        stdlib = os.path.dirname(os.__file__)
        dirs = {stdlib, os.path.realpath(stdlib)}
        _stdlib_dirs = tuple(d.rstrip(os.sep) + os.sep for d in dirs)
    return _stdlib_dirs


def is_in_app(module: Optional[str], abs_path: str, options: FrameOptions) -> bool:
    """In-app unless excluded by module prefix, inside site-packages or the standard library."""
    if module:
        for prefix in options.in_app_include:
            if module == prefix or module.startswith(prefix + "."):
                return True
        for prefix in options.in_app_exclude:
            if module == prefix or module.startswith(prefix + "."):
                return False
    if not abs_path or abs_path.startswith("<"):
        return False
    if "site-packages" in abs_path or "dist-packages" in abs_path:
        parts = abs_path.replace("\\", "/").split("/")
        if "site-packages" in parts or "dist-packages" in parts:
            return False
    return not abs_path.startswith(_library_dirs())


def _relative_filename(module: Optional[str], abs_path: str) -> str:
    """The path relative to its ``sys.path`` entry, e.g. ``flask/app.py`` for ``flask.app``."""
    if not module or not abs_path or abs_path.startswith("<"):
        return abs_path
    depth = module.count(".") + 1
    parts = abs_path.replace("\\", "/").split("/")
    if parts[-1].startswith("__init__."):
        depth += 1
    if module == "__main__":
        depth = 1
    return "/".join(parts[-depth:])


def _static_frame(frame: FrameType, lineno: int, options: FrameOptions) -> Frame:
    code = frame.f_code
    key = (code, lineno, options.include_source, options.in_app_include, options.in_app_exclude)
    cached = _static_cache.get(key)
    if cached is not None:
        return cached
    module = frame.f_globals.get("__name__")
    if not isinstance(module, str):
        module = None
    abs_path = code.co_filename
    if abs_path and not abs_path.startswith("<"):
        abs_path = os.path.abspath(abs_path)
    data: Frame = {
        "filename": _relative_filename(module, abs_path),
        "abs_path": abs_path,
        "function": code.co_name,
        "module": module,
        "lineno": lineno,
    }
    if options.include_source:
        import linecache

        lines = linecache.getlines(code.co_filename, frame.f_globals)
        if 0 < lineno <= len(lines):
            index = lineno - 1
            data["pre_context"] = [
                cut(line.rstrip("\r\n"), 300)
                for line in lines[max(index - CONTEXT_LINES, 0) : index]
            ]
            data["context_line"] = cut(lines[index].rstrip("\r\n"), 300)
            data["post_context"] = [
                cut(line.rstrip("\r\n"), 300)
                for line in lines[index + 1 : index + 1 + CONTEXT_LINES]
            ]
    data["in_app"] = is_in_app(module, abs_path, options)
    if len(_static_cache) >= _CACHE_LIMIT:
        _static_cache.clear()
    _static_cache[key] = data
    return data


def frame_to_dict(frame: FrameType, lineno: int, options: FrameOptions) -> Frame:
    data: Frame = dict(_static_frame(frame, lineno, options))  # type: ignore[assignment]
    # Fresh lists: a before_send that edits an event's context lines must not edit the cache.
    if "pre_context" in data:
        data["pre_context"] = list(data["pre_context"])
        data["post_context"] = list(data.get("post_context", ()))
    if options.include_locals:
        try:
            data["vars"] = snapshot_locals(frame.f_locals, options.max_value_length)
        except Exception:
            data["vars"] = {}
    return data


def frames_from_traceback(tb: Optional[TracebackType], options: FrameOptions) -> list[Frame]:
    pairs = []
    while tb is not None:
        if not _is_hidden(tb.tb_frame):
            pairs.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return _frames(pairs, options)


def _is_hidden(frame: FrameType) -> bool:
    """A frame that asks to be left out of tracebacks, as pytest's and Jinja's helpers do
    (``__tracebackhide__`` / ``__traceback_hide__``, in its locals or its module)."""
    try:
        for scope in (frame.f_locals, frame.f_globals):
            if scope.get("__tracebackhide__") or scope.get("__traceback_hide__"):
                return True
    except Exception:
        pass
    return False


def frames_from_stack(frame: Optional[FrameType], options: FrameOptions) -> list[Frame]:
    """The current call stack from ``frame`` outwards, returned oldest first; SDK frames skipped."""
    pairs = []
    while frame is not None:
        name = frame.f_globals.get("__name__")
        is_sdk = isinstance(name, str) and (name == "bugnet" or name.startswith("bugnet."))
        if not is_sdk and not _is_hidden(frame):
            pairs.append((frame, frame.f_lineno))
        frame = frame.f_back
    pairs.reverse()
    return _frames(pairs, options)


def _frames(pairs: list[tuple[FrameType, int]], options: FrameOptions) -> list[Frame]:
    if len(pairs) > MAX_FRAMES:
        pairs = pairs[:50] + pairs[-(MAX_FRAMES - 50) :]
    return [frame_to_dict(frame, lineno, options) for frame, lineno in pairs]


def _type_name(exc_type: type) -> str:
    return getattr(exc_type, "__qualname__", None) or exc_type.__name__


def _value(exc: BaseException) -> str:
    """Like sentry-sdk: a ``message`` (an ExceptionGroup's own text) or ``detail`` attribute
    wins over ``str(exc)``; string ``__notes__`` follow, one a line."""
    try:
        value = safe_str(getattr(exc, "message", "") or getattr(exc, "detail", "") or exc)
    except Exception:
        value = safe_str(exc)
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list) and notes:
        value = "\n".join([value, *(note for note in notes if isinstance(note, str))])
    return cut(value, 8192)


def safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def single_exception(
    exc: BaseException, options: FrameOptions, mechanism: Optional[Mechanism]
) -> ExceptionValue:
    exc_type = type(exc)
    module = exc_type.__module__
    data: ExceptionValue = {
        "type": _type_name(exc_type),
        "value": _value(exc),
        "module": None if module == "builtins" else module,
    }
    if mechanism is not None:
        data["mechanism"] = mechanism
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and isinstance(exc, OSError) and mechanism is not None:
        data["mechanism"] = {**mechanism, "meta": {"errno": {"number": errno}}}
    frames = frames_from_traceback(exc.__traceback__, options)
    if frames:
        data["stacktrace"] = {"frames": frames}
    return data


def _is_group(exc: BaseException) -> bool:
    return isinstance(getattr(exc, "exceptions", None), (list, tuple)) and any(
        cls.__name__ == "BaseExceptionGroup" for cls in type(exc).__mro__
    )


def _cause(exc: BaseException) -> tuple[Optional[BaseException], str]:
    if exc.__cause__ is not None:
        return exc.__cause__, "__cause__"
    if exc.__context__ is not None and not exc.__suppress_context__:
        return exc.__context__, "__context__"
    return None, ""


def exceptions_from_error(
    exc: BaseException, options: FrameOptions, mechanism: Optional[Mechanism] = None
) -> list[ExceptionValue]:
    """The ``exception.values`` list for ``exc``: its chain (and groups), oldest first."""
    mechanism = mechanism if mechanism is not None else {"type": "generic", "handled": True}
    if not _chain_has_group(exc):
        chain: list[BaseException] = []
        seen: set[int] = set()
        current: Optional[BaseException] = exc
        while current is not None and id(current) not in seen and len(chain) < MAX_EXCEPTIONS:
            seen.add(id(current))
            chain.append(current)
            current = _cause(current)[0]
        chain.reverse()
        return [single_exception(e, options, mechanism.copy()) for e in chain]
    tree: list[ExceptionValue] = []
    _walk_tree(exc, options, mechanism, tree, parent_id=None, source=None, seen=set())
    tree.reverse()
    return tree


def _chain_has_group(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        if _is_group(current):
            return True
        seen.add(id(current))
        current = _cause(current)[0]
    return False


def _walk_tree(
    exc: BaseException,
    options: FrameOptions,
    root_mechanism: Mechanism,
    out: list[ExceptionValue],
    parent_id: Optional[int],
    source: Optional[str],
    seen: set[int],
) -> None:
    if len(out) >= MAX_EXCEPTIONS or id(exc) in seen:
        return
    seen.add(id(exc))
    exception_id = len(out)
    mechanism: Mechanism
    if parent_id is None:
        mechanism = {**root_mechanism, "exception_id": exception_id}
    else:
        mechanism = {
            "type": "chained",
            "handled": root_mechanism.get("handled", True),
            "exception_id": exception_id,
            "source": source or "",
            "parent_id": parent_id,
        }
    if _is_group(exc):
        mechanism["is_exception_group"] = True
    out.append(single_exception(exc, options, mechanism))
    cause, cause_source = _cause(exc)
    if cause is not None:
        _walk_tree(cause, options, root_mechanism, out, exception_id, cause_source, seen)
    if _is_group(exc):
        for index, child in enumerate(exc.exceptions):  # type: ignore[attr-defined]
            _walk_tree(
                child, options, root_mechanism, out, exception_id, f"exceptions[{index}]", seen
            )


def current_stacktrace(options: FrameOptions) -> list[Frame]:
    return frames_from_stack(sys._getframe(1), options)
