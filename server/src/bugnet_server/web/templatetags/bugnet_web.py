"""Template helpers of the web UI: inline SVG charts, short relative times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def sparkline(values: Sequence[int], label: str = "", width: int = 120, height: int = 24) -> str:
    """A small bar chart of ``values`` as inline SVG. The bars are built from integers only;
    the label is escaped by ``format_html``."""
    counts = [int(value) for value in values] or [0]  # numbers only: nothing to escape here
    top = max(counts) or 1
    step = width / len(counts)
    bar = round(max(step - (1 if step > 3 else 0), 0.5), 2)
    rects = []
    for index, value in enumerate(counts):
        h = round(value / top * (height - 1), 2) if value else 0
        rects.append(
            f'<rect x="{round(index * step, 2)}" y="{round(height - h, 2)}" '
            f'width="{bar}" height="{h}"><title>{value}</title></rect>'
        )
    return format_html(
        '<svg class="spark" role="img" aria-label="{} (peak {})" width="{}" height="{}" '
        'viewBox="0 0 {} {}" preserveAspectRatio="none">{}</svg>',
        label,
        max(counts),
        width,
        height,
        width,
        height,
        mark_safe("".join(rects)),  # built above from integers only
    )


@register.filter
def ago(moment: datetime | None) -> str:
    """``3 min ago``, ``5 h ago``, ``12 d ago``: short, for dense lists."""
    if moment is None:
        return "never"
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    for size, unit in ((86400 * 365, "y"), (86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"
