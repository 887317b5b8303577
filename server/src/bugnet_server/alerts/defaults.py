"""Every new project starts with one rule (design.md §4.4): on a new issue and on a regression,
email the project's members. It sends once ``BUGNET_EMAIL_URL`` is set."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save

DEFAULT_RULE_NAME = "New issues and regressions"


def add_default_rule(project: Any) -> None:
    from bugnet_server.alerts.models import AlertChannel, AlertRule

    rule = AlertRule.objects.create(
        project=project, name=DEFAULT_RULE_NAME, on_new=True, on_regression=True
    )
    AlertChannel.objects.create(rule=rule, kind=AlertChannel.Kind.EMAIL)


def _project_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **_: Any) -> None:
    if created and not raw and _alerts_migrated():
        add_default_rule(instance)


def _alerts_migrated() -> bool:
    """False while the database is migrated only part way (a project made then gets its rule
    from the migration that adds alerts, ``0002_default_rules``)."""
    from django.db import connection

    from bugnet_server.alerts.models import AlertRule

    return AlertRule._meta.db_table in connection.introspection.table_names()


def connect() -> None:
    from bugnet_server.projects.models import Project

    post_save.connect(_project_saved, sender=Project, dispatch_uid="bugnet-default-alert-rule")
