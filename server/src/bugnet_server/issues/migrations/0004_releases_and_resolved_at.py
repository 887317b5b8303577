import django.db.models.deletion
from django.db import migrations, models

# Releases already seen, each first seen when its earliest stored event was received.
BACKFILL = """
INSERT INTO issues_release (project_id, version, first_seen)
SELECT project_id, "release", MIN(received) FROM issues_event
WHERE "release" <> '' GROUP BY project_id, "release"
"""


class Migration(migrations.Migration):
    dependencies = [
        ("issues", "0003_tag_top_values"),
        ("projects", "0003_append_only_outcomes"),
    ]

    operations = [
        migrations.AddField(
            model_name="issue",
            name="resolved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="Release",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("version", models.CharField(max_length=200)),
                ("first_seen", models.DateTimeField()),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("project", "version"), name="one_release")
                ],
            },
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
