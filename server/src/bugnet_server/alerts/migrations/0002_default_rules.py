"""Projects made before alerts existed get the rule a new project starts with."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def add_default_rules(apps: Any, schema_editor: Any) -> None:
    Project = apps.get_model("projects", "Project")
    AlertRule = apps.get_model("alerts", "AlertRule")
    AlertChannel = apps.get_model("alerts", "AlertChannel")
    for project in Project.objects.filter(alert_rules__isnull=True):
        rule = AlertRule.objects.create(
            project=project, name="New issues and regressions", on_new=True, on_regression=True
        )
        AlertChannel.objects.create(rule=rule, kind="email")


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]
    operations = [migrations.RunPython(add_default_rules, migrations.RunPython.noop)]
