"""Start-up checks: misconfiguration is reported with an id and the fix, not a stack trace."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def configuration(app_configs: Any, **kwargs: Any) -> list[Error]:
    return [
        Error(message, hint=hint, id=check_id)
        for check_id, message, hint in settings.BUGNET.problems
    ]
