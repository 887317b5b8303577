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


class StatusDetails(Schema):
    inNextRelease: bool = False
    ignoreDuration: int | None = Field(None, description="minutes to ignore for")
    ignoreCount: int | None = Field(None, description="ignore until this many more events")


class IssueUpdate(Schema):
    status: Literal["resolved", "unresolved", "ignored"]
    statusDetails: StatusDetails | None = None


class ErrorOut(Schema):
    detail: str


class CategoryCount(Schema):
    category: str
    outcome: str
    quantity: int


EventOut = dict[str, Any]  # the stored event, Sentry's event schema, plus eventID and groupID
