"""REST API routes under /api/0/ (design.md §4.3); OpenAPI at /api/0/openapi.json."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, Query
from ninja.errors import HttpError

from bugnet_server.api import paging, search
from bugnet_server.api.access import TokenAuth, visible_projects
from bugnet_server.api.schemas import (
    CategoryCount,
    ErrorOut,
    EventOut,
    IssueOut,
    IssueUpdate,
    ProjectEventOut,
    ProjectOut,
)
from bugnet_server.digest.accessors import message_parts
from bugnet_server.digest.batch import tags_of
from bugnet_server.ingest.store import decompress
from bugnet_server.issues import keyset, state
from bugnet_server.issues.changes import changes_by_event, event_permalink
from bugnet_server.issues.models import Event, Issue
from bugnet_server.issues.summary import iso, issue_fields, project_fields
from bugnet_server.projects.models import Project
from bugnet_server.projects.usage import usage

api = NinjaAPI(
    title="Bugnet API",
    version="0",
    urls_namespace="api0",
    openapi_url="/openapi.json",
    docs_url=None,
    auth=TokenAuth(),
)
SORTS = {"date": "last_seen", "new": "first_seen", "freq": "times_seen"}  # newest, most first


def project_json(project: Project) -> dict[str, Any]:
    return {**project_fields(project), "platform": project.platform}


def issue_json(issue: Issue) -> dict[str, Any]:
    metadata = issue.metadata or {}
    return {
        **issue_fields(issue),
        "count": str(issue.times_seen),
        "metadata": {
            "type": str(metadata.get("type") or ""),
            "value": str(metadata.get("value") or ""),
            "filename": metadata.get("filename"),
            "function": metadata.get("function"),
        },
        "project": project_json(issue.project),
        "firstRelease": issue.first_release or None,
        "lastRelease": issue.last_release or None,
    }


def event_json(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(decompress(event.data))
    data["eventID"] = event.event_id
    data["groupID"] = str(event.issue_id)
    data["id"] = event.event_id
    data["dateReceived"] = iso(event.received)
    return data


def event_item_json(event: Event, change: str | None) -> dict[str, Any]:
    """A project event list's item (``event.issue.project`` loaded): title, culprit and short
    id come from the issue; message, tags, user and platform from the stored event."""
    data: dict[str, Any] = orjson.loads(decompress(event.data))
    template, formatted = message_parts(data)
    issue = event.issue
    user = data.get("user")
    return {
        "id": event.event_id,
        "eventID": event.event_id,
        "groupID": str(event.issue_id),
        "title": issue.title,
        "message": formatted or template or "",
        "dateCreated": iso(event.timestamp),
        "dateReceived": iso(event.received),
        "platform": data.get("platform"),
        "tags": [{"key": key, "value": value} for key, value in tags_of(data)],
        "user": user if isinstance(user, dict) else None,
        "culprit": issue.culprit,
        "level": event.level,
        "shortId": issue.short_name,
        "release": event.release or None,
        "environment": event.environment or None,
        "change": change,
        "permalink": event_permalink(event.issue_id, event.event_id),
        "project": project_json(issue.project),
    }


def _issue(request: HttpRequest, issue_id: int) -> Issue:
    projects = visible_projects(request.auth)  # type: ignore[attr-defined]
    return get_object_or_404(
        Issue.objects.select_related("project__organization"), pk=issue_id, project__in=projects
    )


@api.get("/projects/", response=list[ProjectOut], summary="The projects the token may see")
def list_projects(request: HttpRequest, response: HttpResponse, cursor: str | None = None) -> Any:
    rows, link = paging.page(request, visible_projects(request.auth).order_by("id"), cursor, None)  # type: ignore[attr-defined]
    response["Link"] = link
    return [project_json(p) for p in rows]


@api.get(
    "/projects/{org}/{project}/issues/",
    response={200: list[IssueOut], 400: ErrorOut},
    summary="A project's issues: ?query= (default is:unresolved), ?sort=date|new|freq, ?cursor=",
)
def list_issues(
    request: HttpRequest,
    response: HttpResponse,
    org: str,
    project: str,
    query: str | None = None,
    sort: str = "date",
    cursor: str | None = None,
    limit: int | None = None,
) -> Any:
    found = get_object_or_404(visible_projects(request.auth), organization__slug=org, slug=project)  # type: ignore[attr-defined]
    if sort not in SORTS:
        raise HttpError(400, f"sort must be one of {', '.join(SORTS)}")
    try:
        issues = search.apply(Issue.objects.filter(project=found), query)
    except search.QueryError as exc:
        raise HttpError(400, str(exc)) from None
    key, is_prev = paging.key_of(cursor)
    page = keyset.page_of(issues.select_related("project__organization"), SORTS[sort],
                          None if is_prev else key, key if is_prev else None,
                          paging.size_of(limit))  # fmt: skip
    response["Link"] = paging.keyset_link_header(request, page.older, page.newer)
    return [issue_json(issue) for issue in page.issues]


@api.get(
    "/projects/{org}/{project}/events/",
    response=list[ProjectEventOut],
    summary="A project's error events, newest first (by received time); ?since=<ISO time> "
    "keeps those received at or after it; ?cursor=, ?limit=",
)
def list_project_events(
    request: HttpRequest,
    response: HttpResponse,
    org: str,
    project: str,
    since: dt.datetime | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Any:
    found = get_object_or_404(visible_projects(request.auth), organization__slug=org, slug=project)  # type: ignore[attr-defined]
    events = Event.objects.filter(project=found)
    if since is not None:
        events = events.filter(
            received__gte=since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)
        )
    events = events.select_related("issue").order_by("-received", "-id")
    rows, link = paging.page(request, events, cursor, limit)
    response["Link"] = link
    changes = changes_by_event(rows)
    for event in rows:
        event.issue.project = found
    return [event_item_json(e, changes.get((e.issue_id, e.event_id))) for e in rows]


@api.get("/issues/{issue_id}/", response=IssueOut, summary="One issue")
def get_issue(request: HttpRequest, issue_id: int) -> Any:
    return issue_json(_issue(request, issue_id))


@api.put("/issues/{issue_id}/", response=IssueOut, summary="Resolve, reopen or ignore an issue")
def update_issue(request: HttpRequest, issue_id: int, change: IssueUpdate) -> Any:
    issue = _issue(request, issue_id)
    details = change.statusDetails
    user = request.auth  # type: ignore[attr-defined]
    if change.status == "resolved":
        try:
            state.resolve(issue, user, in_next_release=bool(details and details.inNextRelease))
        except ValueError as exc:  # no release to wait for
            raise HttpError(400, str(exc)) from None
    elif change.status == "unresolved":
        state.unresolve(issue, user)
    else:
        until = None
        if details and details.ignoreDuration:
            until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=details.ignoreDuration)
        state.ignore(issue, user, until=until, more_events=details.ignoreCount if details else None)
    return issue_json(issue)


@api.get(
    "/issues/{issue_id}/events/", response=list[EventOut], summary="An issue's events, newest first"
)
def list_events(
    request: HttpRequest, response: HttpResponse, issue_id: int, cursor: str | None = None
) -> Any:
    issue = _issue(request, issue_id)
    rows, link = paging.page(request, issue.events.order_by("-timestamp", "-id"), cursor, None)
    response["Link"] = link
    return [event_json(event) for event in rows]


@api.get("/issues/{issue_id}/events/latest/", response=EventOut, summary="An issue's latest event")
def latest_event(request: HttpRequest, issue_id: int) -> Any:
    issue = _issue(request, issue_id)
    event = issue.events.order_by("-timestamp", "-id").first()
    if event is None:
        raise HttpError(404, "this issue has no stored events (retention removed them)")
    return event_json(event)


@api.get(
    "/projects/{org}/{project}/stats/",
    response=list[CategoryCount],
    summary="What the project received, by data category and outcome (?days=, default 30)",
)
def project_stats(request: HttpRequest, org: str, project: str, days: int = Query(30)) -> Any:  # type: ignore[type-arg]
    found = get_object_or_404(visible_projects(request.auth), organization__slug=org, slug=project)  # type: ignore[attr-defined]
    return usage(found, days)
