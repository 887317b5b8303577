"""Template helpers of the admin pages."""

from __future__ import annotations

from typing import Any

from django import template

from bugnet_server.web.admin_access import may_manage_users

register = template.Library()


@register.filter
def manages_users(user: Any) -> bool:
    """``{% if user|manages_users %}``: a superuser, or an owner or admin of an organization
    (one query for those who are not superusers)."""
    return bool(user.is_authenticated and may_manage_users(user))
