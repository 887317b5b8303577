"""Template helpers of the issue page: an event's JSON shaped for display, charts, tag links.

Events are written by strangers. The digest normalizes them, but this code trusts no field's
type anyway: each section is read on its own, and a section that still fails is logged and
left out rather than failing the page. Everything returned here is plain text for Django's
autoescaping; nothing is marked safe but the SVG built from numbers with ``format_html``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import urlencode, urlsplit

import orjson
from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

log = logging.getLogger(__name__)
register = template.Library()
T = TypeVar("T")
P = ParamSpec("P")

# Contexts shown first, in this order; any others follow as sent.
KNOWN_CONTEXTS = ("os", "runtime", "browser", "device", "app", "culture", "trace")
LEVELS = frozenset({"fatal", "error", "warning", "info", "debug"})
_UNLINKABLE = re.compile(r"[\s\x00-\x1f\x7f\"'<>`\\]")


def _guarded(fallback: Callable[[], Any]) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Run a section builder; on an error, log it and show the section as empty."""

    def decorate(build: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(build)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return build(*args, **kwargs)
            except Exception:
                log.exception("event section %s could not be shown", build.__name__)
                return cast(T, fallback())

        return run

    return decorate


# ---- Values --------------------------------------------------------------------------------


def text(value: Any) -> str:
    """Any JSON value as text: strings as they are, anything else as (indented) JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                            default=str).decode()  # fmt: skip
    except Exception:
        return repr(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _values(container: Any) -> list[Any]:
    """``{"values": [...]}`` or a bare list (both occur on the wire)."""
    if isinstance(container, dict):
        container = container.get("values")
    return _list(container)


def pairs(value: Any) -> list[tuple[str, str]]:
    """An object or a list of ``[key, value]`` pairs as ``(key, text)`` pairs, in order."""
    if isinstance(value, dict):
        return [(text(k), text(v)) for k, v in value.items()]
    out = []
    for item in _list(value):
        if isinstance(item, (list, tuple)) and len(item) == 2:
            out.append((text(item[0]), text(item[1])))
        elif item is not None:
            out.append(("", text(item)))
    return out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _epoch(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.timestamp()
    return None


def http_url(value: Any) -> str:
    """``value`` when it is a plain absolute http(s) URL, safe to link to; otherwise "".

    A URL with quotes, angle brackets or blanks is shown as text only: a browser would have
    encoded them, so such a URL was made up, and its text stays out of the tag."""
    if not isinstance(value, str) or _UNLINKABLE.search(value):
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    return value if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


# ---- Exceptions and stack traces -----------------------------------------------------------

NEWEST_LABELS = {
    "__cause__": "The above exception was directly caused by the following exception:",
    "__context__": "The above exception occurred during handling of the following exception:",
}
OLDEST_LABELS = {
    "__cause__": "The above exception was the direct cause of the following exception:",
    "__context__": "During handling of the above exception, another exception occurred:",
}


def _relation(exception: dict[str, Any], order: str, by_id: dict[int, dict[str, Any]]) -> str:
    """How this exception relates to the one that it led to, said as Python says it when
    the mechanism tells (``source``), else simply as a cause."""
    mechanism = _dict(exception.get("mechanism"))
    source = mechanism.get("source") if _int(mechanism.get("parent_id")) is not None else None
    labels = NEWEST_LABELS if order == "newest" else OLDEST_LABELS
    if isinstance(source, str) and source in labels:
        return labels[source]
    if isinstance(source, str) and source.startswith("exceptions["):
        parent = by_id.get(_int(mechanism.get("parent_id")) or 0, {})
        group = text(parent.get("type")) or "an exception group"
        if order == "newest":
            return f"In the exception group {group} ({source}):"
        return f"The above exception is {source} of the exception group {group}."
    return "Caused by:" if order == "newest" else "The above exception caused the following:"


def _source_lines(frame: dict[str, Any]) -> list[tuple[int | None, str, bool]]:
    """``(line number, text, is the error line)`` from the frame's source context."""
    context = frame.get("context_line")
    if not isinstance(context, str):
        return []
    before = [line for line in _list(frame.get("pre_context")) if isinstance(line, str)]
    after = [line for line in _list(frame.get("post_context")) if isinstance(line, str)]
    lineno = _int(frame.get("lineno"))
    start = lineno - len(before) if lineno is not None else None
    lines = [*before, context, *after]
    return [
        (start + i if start is not None else None, line, i == len(before))
        for i, line in enumerate(lines)
    ]


def _frame(frame: dict[str, Any]) -> dict[str, Any]:
    where = frame.get("filename") or frame.get("abs_path") or frame.get("module") or "?"
    return {
        "where": text(where),
        "module": text(frame.get("module")),
        "abs_path": text(frame.get("abs_path")),
        "function": text(frame.get("function") or frame.get("raw_function")),
        "lineno": _int(frame.get("lineno")),
        "colno": _int(frame.get("colno")),
        "package": text(frame.get("package")),
        "in_app": frame.get("in_app") is True,
        "open": frame.get("in_app") is True,
        "lines": _source_lines(frame),
        "vars": pairs(frame.get("vars")) if isinstance(frame.get("vars"), dict) else [],
    }


def frame_blocks(stacktrace: Any, order: str) -> list[dict[str, Any]]:
    """Frames in the chosen order, in blocks: each in-app frame on its own (shown open), runs
    of library frames together (collapsed). With no in-app frame at all, the frame where it
    broke is shown open instead."""
    frames = [_frame(f) for f in _list(_dict(stacktrace).get("frames")) if isinstance(f, dict)]
    if frames and not any(f["open"] for f in frames):
        frames[-1]["open"] = True
    if order == "newest":
        frames.reverse()
    blocks: list[dict[str, Any]] = []
    for frame in frames:
        if not frame["open"] and blocks and blocks[-1]["library"]:
            blocks[-1]["frames"].append(frame)
        else:
            blocks.append({"library": not frame["open"], "frames": [frame]})
    return blocks


@register.simple_tag
@_guarded(list)
def exception_chain(data: Any, order: str) -> list[dict[str, Any]]:
    """The event's exceptions in the chosen order (``newest``: the one raised first), each
    with its frame blocks and how it relates to the one it led to."""
    exceptions = [e for e in _values(_dict(data).get("exception")) if isinstance(e, dict)]
    by_id = {}
    for exception in exceptions:
        found = _int(_dict(exception.get("mechanism")).get("exception_id"))
        if found is not None:
            by_id[found] = exception
    chain = []
    for exception in exceptions:
        mechanism = _dict(exception.get("mechanism"))
        chain.append({
            "type": text(exception.get("type")),
            "value": text(exception.get("value")),
            "module": text(exception.get("module")),
            "mechanism": text(mechanism.get("type")),
            "handled": mechanism.get("handled"),
            "help_link": http_url(mechanism.get("help_link")),
            "relation": _relation(exception, order, by_id),
            "blocks": frame_blocks(exception.get("stacktrace"), order),
        })  # fmt: skip
    if order == "newest":
        chain.reverse()
    return chain


@register.simple_tag
@_guarded(list)
def thread_stack(data: Any, order: str) -> list[dict[str, Any]]:
    """Frame blocks of an event without exceptions but with a stack trace (a message with
    ``attach_stacktrace``): the event's own, else the crashed, current or first thread's."""
    event = _dict(data)
    if _values(event.get("exception")):
        return []
    stacktrace = event.get("stacktrace")
    if not isinstance(stacktrace, dict):
        threads = [t for t in _values(event.get("threads")) if isinstance(t, dict)]
        threads = [t for t in threads if isinstance(t.get("stacktrace"), dict)]
        threads.sort(key=lambda t: (t.get("crashed") is not True, t.get("current") is not True))
        stacktrace = threads[0]["stacktrace"] if threads else None
    return frame_blocks(stacktrace, order)


# ---- Breadcrumbs, request, user, contexts, tags --------------------------------------------


def _moment(epoch: float) -> str:
    try:
        moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _offset(seconds: float) -> str:
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.3f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes} min {rest} s"
    return f"{sign}{minutes // 60} h {minutes % 60} min"


@register.simple_tag
@_guarded(list)
def breadcrumbs(data: Any, fallback_time: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The breadcrumbs, oldest first, with their time in UTC and relative to the event."""
    event = _dict(data)
    at = _epoch(event.get("timestamp"))
    if at is None and fallback_time is not None:
        at = fallback_time.timestamp()
    rows = []
    for crumb in _values(event.get("breadcrumbs")):
        if not isinstance(crumb, dict):
            continue
        when = _epoch(crumb.get("timestamp"))
        data_field = crumb.get("data")
        level = crumb.get("level")
        rows.append({
            "time": _moment(when) if when is not None else "",
            "offset": _offset(when - at) if when is not None and at is not None else "",
            "type": text(crumb.get("type")),
            "category": text(crumb.get("category")),
            "level": text(level) or "info",
            "level_class": level if isinstance(level, str) and level in LEVELS else "info",
            "message": text(crumb.get("message")),
            "data": pairs(data_field) if isinstance(data_field, dict) else [],
            "raw_data": "" if isinstance(data_field, dict) else text(data_field),
        })  # fmt: skip
    return rows


@register.simple_tag
@_guarded(dict)
def request_view(data: Any) -> dict[str, Any]:
    """Method, URL (and a link only for http(s) URLs), query, headers, cookies, body, env."""
    request = _dict(_dict(data).get("request"))
    if not request:
        return {}
    query = request.get("query_string")
    cookies = request.get("cookies")
    body = request.get("data")
    return {
        "method": text(request.get("method")),
        "url": text(request.get("url")),
        "href": http_url(request.get("url")),
        "fragment": text(request.get("fragment")),
        "query": pairs(query) if not isinstance(query, str) else [],
        "raw_query": query if isinstance(query, str) else "",
        "headers": pairs(request.get("headers")),
        "cookies": pairs(cookies) if not isinstance(cookies, str) else [],
        "raw_cookies": cookies if isinstance(cookies, str) else "",
        "body": text(body),
        "env": pairs(request.get("env")),
    }


@register.simple_tag
@_guarded(list)
def contexts(data: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each context (os, runtime, browser...) with its fields, the known ones first."""
    found = _dict(_dict(data).get("contexts"))
    names = [n for n in KNOWN_CONTEXTS if n in found]
    names += [n for n in found if n not in KNOWN_CONTEXTS]
    out = []
    for name in names:
        value = found[name]
        fields = pairs(value) if isinstance(value, dict) else [("", text(value))]
        fields = [(k, v) for k, v in fields if not (k == "type" and v == name)]
        out.append((text(name), fields))
    return out


@register.simple_tag
@_guarded(list)
def event_pairs(data: Any, field: str) -> list[tuple[str, str]]:
    """A top-level object of the event (user, tags, extra, modules...) as pairs."""
    return pairs(_dict(data).get(field))


@register.simple_tag
@_guarded(list)
def processing_errors(data: Any) -> list[str]:
    """What the digest found wrong with the event, one line each."""
    lines = []
    for error in _list(_dict(data).get("errors")):
        if isinstance(error, dict):
            parts = [text(error.get(k)) for k in ("type", "name", "value") if error.get(k)]
            lines.append(" · ".join(parts))
        else:
            lines.append(text(error))
    return lines


@register.simple_tag
@_guarded(dict)
def sdk_view(data: Any) -> dict[str, Any]:
    sdk = _dict(_dict(data).get("sdk"))
    integrations = [text(i) for i in _list(sdk.get("integrations"))]
    return {"name": text(sdk.get("name")), "version": text(sdk.get("version")),
            "integrations": ", ".join(integrations)}  # fmt: skip


@register.simple_tag
@_guarded(str)
def event_message(data: Any) -> str:
    """The event's log message (formatted), if it has one."""
    event = _dict(data)
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        return text(logentry.get("formatted") or logentry.get("message"))
    return text(event.get("message") or logentry)


@register.filter
def utc_time(moment: dt.datetime | None, form: str = "seconds") -> str:
    """A time in UTC: ``2024-05-01 14:03:05`` (``seconds``), ``...14:03`` (``minutes``) or ISO
    8601 (``iso``, for ``<time datetime>``). Quicker than ``|date``, which pages call often."""
    if moment is None:
        return ""
    moment = moment.astimezone(dt.timezone.utc)
    if form == "iso":
        return moment.isoformat()
    return moment.strftime("%Y-%m-%d %H:%M" if form == "minutes" else "%Y-%m-%d %H:%M:%S")


@register.filter
def iso_moment(value: Any) -> str:
    """An ISO 8601 time (as activity data stores it) as ``YYYY-MM-DD HH:MM UTC``."""
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@register.simple_tag
def field(data: Any, name: str) -> str:
    """One top-level field of the event as text ("" when missing)."""
    return text(_dict(data).get(name))


@register.simple_tag
def tag_search(base: str, key: Any, value: Any) -> str:
    """``base`` (the project's issue list) searched for ``key:"value"``, quoted as the search
    parses it."""
    quoted = str(value).replace("\\", "\\\\").replace('"', '\\"')
    query = f'{key}:"{quoted}"'
    return f"{base}?{urlencode({'query': query})}"


# ---- Charts --------------------------------------------------------------------------------


@register.simple_tag
def bar_chart(bars: Iterable[Any], label: str, width: int = 480, height: int = 64) -> SafeString:
    """A bar chart as inline SVG, each bar with its label and count as a tooltip."""
    bars = list(bars)
    top = max((b.count for b in bars), default=0) or 1
    step = width / max(len(bars), 1)
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
        (
            (round(i * step, 2), round(height - h, 2), round(max(step - 2, 1), 2), h,
             bar.label, bar.count)
            for i, bar in enumerate(bars)
            for h in [round(bar.count / top * (height - 2), 2) if bar.count else 0]
        ),
    )  # fmt: skip
    return format_html(
        '<svg class="chart" role="img" aria-label="{} (peak {})" viewBox="0 0 {} {}" '
        'preserveAspectRatio="none">{}</svg>',
        label, max((b.count for b in bars), default=0), width, height, rects,
    )  # fmt: skip


@register.simple_tag
def share_bar(percent: float) -> SafeString:
    """A thin bar for a share in percent (SVG: the CSP allows no inline style widths)."""
    width = max(0.0, min(100.0, float(percent)))
    return format_html(
        '<svg class="share" viewBox="0 0 100 4" preserveAspectRatio="none" aria-hidden="true">'
        '<rect class="track" width="100" height="4"></rect>'
        '<rect width="{}" height="4"></rect></svg>',
        round(width, 1),
    )
