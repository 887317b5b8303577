"""The issue lists: one project's issues (``/projects/<org>/<project>/``) and those of every
project the user may see (``/issues/``). Searched with the API's query language, sorted, paged,
and resolved, ignored or reopened in bulk.

Everything that shapes a list lives in its URL (``?query=&sort=&stats=&after=|before=``), so a
list can be shared as a link; the filter menus only rewrite the query.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.db import transaction
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from bugnet_server.api import search
from bugnet_server.issues import state
from bugnet_server.issues.keyset import page_of
from bugnet_server.issues.models import HourlyCount, Issue, TagValue
from bugnet_server.projects.models import Project
from bugnet_server.web.access import project_for, visible_projects

PAGE_SIZE = 25
DEFAULT_QUERY = "is:unresolved"
# ?sort= as the API spells it: the ordering field and its label.
SORTS = {"date": ("last_seen", "Last seen"), "new": ("first_seen", "First seen"),
         "freq": ("times_seen", "Events")}  # fmt: skip
STATUSES = [("unresolved", "Unresolved"), ("resolved", "Resolved"), ("ignored", "Ignored")]
LEVELS = ["fatal", "error", "warning", "info", "debug"]
# ?stats=: how many bars, each how long, what they say, and the toggle's label.
STATS = {
    "24h": (24, dt.timedelta(hours=1), "Events per hour, last 24 hours", "24 h"),
    "14d": (14, dt.timedelta(days=1), "Events per day, last 14 days", "14 d"),
}
MENU_CHOICES = 15  # environments and releases offered in a filter menu
BULK_LIMIT = 500
_PLAIN = re.compile(r"[^\s\"'\\]+")  # a query word that needs no quotes


# -- The URL's parameters ------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """What the list shows, read from (and written back to) its query string."""

    path: str
    query: str
    sort: str = "date"
    stats: str = "24h"

    @classmethod
    def from_request(cls, request: HttpRequest) -> Listing:
        sort = request.GET.get("sort", "date")
        stats = request.GET.get("stats", "24h")
        return cls(
            path=request.path,
            query=request.GET.get("query", DEFAULT_QUERY).strip(),
            sort=sort if sort in SORTS else "date",
            stats=stats if stats in STATS else "24h",
        )

    def url(self, **cursor: str) -> str:
        """This list's URL (defaults left out, but the query always in: an empty query means
        every issue, no query the unresolved ones)."""
        params = {"query": self.query}
        if self.sort != "date":
            params["sort"] = self.sort
        if self.stats != "24h":
            params["stats"] = self.stats
        return f"{self.path}?{urlencode({**params, **cursor})}"

    @cached_property
    def terms(self) -> list[str] | None:
        """The query's words as ``search.apply`` reads them; None when it cannot be parsed."""
        try:
            return [term.text for term in search.parse(self.query)]
        except search.QueryError:
            return None

    def value_of(self, key: str) -> str | None:
        """The value of the query's first ``key:`` term, if any."""
        for term in self.terms or []:
            if term_key(term) == key:
                return term[len(key) + 1 :]
        return None

    def with_term(self, key: str, value: str | None) -> str:
        """The URL of this list with the query's ``key:`` terms replaced by ``key:value``
        (or removed, for None)."""
        terms: list[str] = []
        new = f"{key}:{value}" if value is not None else None
        for term in self.terms or []:
            if term_key(term) != key:
                terms.append(term)
            elif new is not None:  # in the place of the first one, the others dropped
                terms.append(new)
                new = None
        terms += [new] if new is not None else []
        return replace(self, query=join_terms(terms)).url()


def term_key(term: str) -> str | None:
    key, sep, _value = term.partition(":")
    return key if sep and key and " " not in key else None


def join_terms(terms: Iterable[str]) -> str:
    """The words back into a query that ``search.parse`` reads as the same words."""
    parts = []
    for term in terms:
        key = term_key(term)
        if key is not None and _PLAIN.fullmatch(key):
            parts.append(f"{key}:{_quoted(term[len(key) + 1 :])}")
        else:
            parts.append(_quoted(term))
    return " ".join(parts)


def _quoted(text: str) -> str:
    if _PLAIN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- What the rows show beyond the issue itself --------------------------------------------


def sparklines(issue_ids: list[int], stats: str) -> dict[int, list[int]]:
    """Per issue, its events per hour (24 h) or per day (14 d, UTC days): one query for
    the whole page."""
    bars, width, _label, _short = STATS[stats]
    now = timezone.now()
    if width == dt.timedelta(days=1):
        end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        end = now.replace(minute=0, second=0, microsecond=0)
    start = end - width * (bars - 1)
    values = {pk: [0] * bars for pk in issue_ids}
    rows = HourlyCount.objects.filter(issue_id__in=issue_ids, hour__gte=start).values_list(
        "issue_id", "hour", "count"
    )
    for issue_id, hour, count in rows:
        index = (hour - start) // width
        if 0 <= index < bars:
            values[issue_id][index] += count
    return values


def filter_values(projects: QuerySet[Project]) -> dict[str, list[str]]:
    """What the environment and release menus offer: the environments seen on the projects'
    issues (from the tag index alone: no row is read), and the releases their issues were
    last seen in, the most recent first (a scan of the issues, not of every tag value)."""
    environments = (
        TagValue.objects.filter(issue__project__in=projects, key="environment")
        .values_list("value", flat=True)
        .distinct()
        .order_by("value")
    )
    releases = (
        Issue.objects.filter(project__in=projects)
        .exclude(last_release="")
        .values_list("last_release")
        .annotate(seen=Max("last_seen"))
        .order_by("-seen")
    )
    return {
        "environment": list(environments[:MENU_CHOICES]),
        "release": [release for release, _seen in releases[:MENU_CHOICES]],
    }


def _choice(label: str, url: str, active: bool) -> dict[str, Any]:
    return {"label": label, "url": url, "active": active}


def status_tabs(listing: Listing) -> list[dict[str, Any]]:
    status = listing.value_of("is")
    tabs = [_choice(label, listing.with_term("is", value), status == value)
            for value, label in STATUSES]  # fmt: skip
    return [*tabs, _choice("All", listing.with_term("is", None), status is None)]


def filter_menus(listing: Listing, values: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The level, environment and release menus: each choice a link to this list with the
    query's term for it rewritten (the chosen value is offered even when not seen lately)."""
    menus = []
    for key, offered in (("level", LEVELS), ("environment", values["environment"]),
                         ("release", values["release"])):  # fmt: skip
        chosen = listing.value_of(key)
        choices = [_choice(f"Any {key}", listing.with_term(key, None), chosen is None)]
        first = [chosen] if chosen is not None else []
        for value in dict.fromkeys([*first, *offered]):
            choices.append(_choice(value, listing.with_term(key, value), value == chosen))
        menus.append({"label": key.capitalize(), "chosen": chosen, "choices": choices})
    return menus


def view_tabs(listing: Listing) -> dict[str, list[dict[str, Any]]]:
    """The sort orders and the graph's spans, each a link to this list so changed."""
    sorts = [_choice(label, replace(listing, sort=key).url(), key == listing.sort)
             for key, (_field, label) in SORTS.items()]  # fmt: skip
    stats = [_choice(short, replace(listing, stats=key).url(), key == listing.stats)
             for key, (*_, short) in STATS.items()]  # fmt: skip
    return {"sorts": sorts, "stats": stats}


# -- The pages -----------------------------------------------------------------------------


@require_safe
def project_issues(request: HttpRequest, org: str, project: str) -> HttpResponse:
    found = project_for(request.user, org, project)
    projects = Project.objects.filter(pk=found.pk)
    return _issue_list(request, projects, found)


@require_safe
def all_issues(request: HttpRequest) -> HttpResponse:
    return _issue_list(request, visible_projects(request.user), None)


def _issue_list(
    request: HttpRequest, projects: QuerySet[Project], project: Project | None
) -> HttpResponse:
    listing = Listing.from_request(request)
    field, _label = SORTS[listing.sort]
    scope = Issue.objects.filter(project__in=projects)
    error = ""
    try:
        matching = search.apply(scope, listing.query)
    except search.QueryError as exc:
        error, matching = str(exc), scope.none()
    page = page_of(
        matching.select_related("project__organization"),
        field,
        request.GET.get("after"),
        request.GET.get("before"),
        PAGE_SIZE,
    )
    bars = sparklines([issue.pk for issue in page.issues], listing.stats)
    context = {
        "project": project,
        "nav": "issues" if project is None else "projects",
        "listing": listing,
        "error": error,
        "rows": [{"issue": issue, "bars": bars[issue.pk]} for issue in page.issues],
        "total": matching.count() if not error else 0,
        "older": listing.url(after=page.older) if page.older else None,
        "newer": _newer_url(listing, page.newer),
        "statuses": status_tabs(listing),
        "menus": filter_menus(listing, filter_values(projects)),
        **view_tabs(listing),
        "stats_label": STATS[listing.stats][2],
        "stats_span": STATS[listing.stats][3],
        "default_url": replace(listing, query=DEFAULT_QUERY).url(),
        "here": request.get_full_path(),
    }
    if not page.issues:
        context.update(_empty_state(scope, projects, project))
    return render(request, "web/issues.html", context, status=400 if error else 200)


def _newer_url(listing: Listing, newer: str | None) -> str | None:
    if newer is None:
        return None
    return listing.url(before=newer) if newer else listing.url()


def _empty_state(
    scope: QuerySet[Issue], projects: QuerySet[Project], project: Project | None
) -> dict[str, Any]:
    """What an empty list says: nothing matches, or nothing was ever sent (then where to
    set a project up)."""
    if scope.exists():
        return {"nothing_yet": False}
    return {"nothing_yet": True, "setup": [] if project else list(projects.order_by("name")[:5])}


# -- Bulk changes --------------------------------------------------------------------------

# action: the state change, the status it leads to, and how the message says it.
ACTIONS: dict[str, tuple[Callable[..., None], str, str]] = {
    "resolve": (state.resolve, Issue.Status.RESOLVED, "resolved"),
    "ignore": (state.ignore, Issue.Status.IGNORED, "ignored"),
    "unresolve": (state.unresolve, Issue.Status.UNRESOLVED, "unresolved"),
}


@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    """Resolve, ignore or reopen the selected issues (``issue``: their ids), then go back to
    ``next``. Issues the user may not see are skipped without a word (a 404 would only make
    one page of a mixed selection fail), as are those already in that state; the message
    counts what changed."""
    action = ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        return HttpResponseBadRequest("action must be one of resolve, ignore, unresolve")
    change, status, done = action
    ids = [int(pk) for pk in request.POST.getlist("issue")[:BULK_LIMIT] if pk.isdigit()]
    issues = Issue.objects.filter(pk__in=ids, project__in=visible_projects(request.user)).exclude(
        status=status
    )
    changed = 0
    with transaction.atomic():
        for issue in issues.select_for_update().order_by("pk"):
            change(issue, request.user)
            changed += 1
    if not ids:
        messages.info(request, "Select issues first, then choose what to do with them.")
    elif changed:
        messages.success(request, f"{changed} issue{'' if changed == 1 else 's'} {done}.")
    else:
        messages.info(request, "No issues changed.")
    return redirect(_safe_next(request))


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("web:all-issues")
