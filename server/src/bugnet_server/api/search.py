"""The issue search language of the list endpoint (and the UI): Sentry's common subset.

``is:unresolved|resolved|ignored``, ``level:error``, ``release:x``, ``environment:y``, any
``tag:value`` (values may be quoted), and free text matched against title and culprit.
"""

from __future__ import annotations

import shlex

from django.db.models import Exists, OuterRef, Q, QuerySet

from bugnet_server.issues.models import Issue, TagValue

STATUSES = {"unresolved", "resolved", "ignored"}


class QueryError(ValueError):
    pass


def apply(issues: QuerySet[Issue], query: str | None) -> QuerySet[Issue]:
    """Filter ``issues`` by ``query``; without one, the unresolved issues."""
    if query is None:
        return issues.filter(status=Issue.Status.UNRESOLVED)
    try:
        terms = shlex.split(query)
    except ValueError as exc:
        raise QueryError(f"cannot parse the query: {exc}") from None
    for term in terms:
        key, sep, value = term.partition(":")
        if not sep or not key or " " in key:
            issues = issues.filter(Q(title__icontains=term) | Q(culprit__icontains=term))
        elif key == "is":
            if value not in STATUSES:
                raise QueryError(f"is:{value} is not one of is:unresolved, is:resolved, is:ignored")
            issues = issues.filter(status=value)
        elif key == "level":
            issues = issues.filter(level=value)
        else:
            tagged = TagValue.objects.filter(issue=OuterRef("pk"), key=key, value=value)
            issues = issues.filter(Exists(tagged))
    return issues
