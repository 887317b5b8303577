"""The API's JSON shapes (after Sentry's web API, camelCase), as OpenAPI documents them."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Field, Schema


class OrganizationRef(Schema):
    slug: str


class ProjectOut(Schema):
    id: str
    slug: str
    name: str
    platform: str
    organization: OrganizationRef


class IssueMetadata(Schema):
    type: str = ""
    value: str = ""
    filename: str | None = None
    function: str | None = None


class IssueOut(Schema):
    id: str
    shortId: str
    title: str
    culprit: str
    level: str
    status: Literal["unresolved", "resolved", "ignored"]
    count: str  # a string, as Sentry sends it (counts can exceed JavaScript's integers)
    userCount: int
    firstSeen: str
    lastSeen: str
    permalink: str
    metadata: IssueMetadata
    project: ProjectOut
    firstRelease: str | None = None
    lastRelease: str | None = None


# Bounds that keep the arithmetic in range: ten years of minutes, and a count far beyond any
# issue's (times_seen plus it must fit the database's 64-bit column).
MAX_IGNORE_MINUTES = 10 * 366 * 24 * 60
MAX_IGNORE_COUNT = 10**12


class StatusDetails(Schema):
    inNextRelease: bool = False
    ignoreDuration: int | None = Field(None, ge=1, le=MAX_IGNORE_MINUTES,
                                       description="minutes to ignore for")  # fmt: skip
    ignoreCount: int | None = Field(None, ge=1, le=MAX_IGNORE_COUNT,
                                    description="ignore until this many more events")  # fmt: skip


class IssueUpdate(Schema):
    status: Literal["resolved", "unresolved", "ignored"]
    statusDetails: StatusDetails | None = None


class ErrorOut(Schema):
    detail: str


class CategoryCount(Schema):
    category: str
    outcome: str  # accepted, rate_limited, invalid or client_discard
    reason: str | None  # why, for all but accepted: key_quota, an SDK's before_send...
    quantity: int


class TagOut(Schema):
    key: str
    value: str


class ProjectEventOut(Schema):
    """An item of a project's event list: Sentry's shape, plus what ``bugnet tail`` shows."""

    id: str  # the event id, as Sentry gives it
    eventID: str
    groupID: str
    title: str  # the issue's
    message: str  # the event's formatted log message ("" for an exception without one)
    dateCreated: str  # the event's timestamp
    dateReceived: str
    platform: str | None = None
    tags: list[TagOut]
    user: dict[str, Any] | None = None
    culprit: str
    level: str
    shortId: str
    release: str | None = None
    environment: str | None = None
    change: Literal["new", "regression", "unignored"] | None = Field(
        None, description="the state change this event caused"
    )
    permalink: str  # the event on its issue's page in the web UI
    project: ProjectOut


EventOut = dict[str, Any]  # the stored event, Sentry's event schema, plus eventID and groupID
