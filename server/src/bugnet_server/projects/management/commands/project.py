"""``bugnet project create NAME [--org SLUG]`` and ``bugnet project dsn SLUG``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.text import slugify

from bugnet_server.projects.models import Organization, Project, ProjectKey


class Command(BaseCommand):
    help = "Create a project (prints its DSN as the last line) or print a project's DSN."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a project; the last line is its DSN")
        create.add_argument("name")
        create.add_argument("--org", default=None, help="organization slug (default: the only one)")
        create.add_argument("--platform", default="python")
        dsn = sub.add_parser("dsn", help="print a project's DSN")
        dsn.add_argument("slug")
        dsn.add_argument("--org", default=None)
        change = sub.add_parser("set", help="change a project's limits")
        change.add_argument("slug")
        change.add_argument("--org", default=None)
        change.add_argument("--rate-limit", help="events per minute per key, or 'none'")
        change.add_argument("--retention-days", type=int)
        change.add_argument("--retention-max-events", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = _organization(options["org"])
        if options["action"] == "create":
            slug = slugify(options["name"])
            if not slug:
                raise CommandError(
                    f"{options['name']!r} gives an empty slug; use letters or digits"
                )
            if Project.objects.filter(organization=organization, slug=slug).exists():
                raise CommandError(f"project {slug!r} already exists in {organization.slug!r}")
            with transaction.atomic():
                project = Project.objects.create(organization=organization, slug=slug,
                                                 name=options["name"], platform=options["platform"])  # fmt: skip
                project.teams.set(organization.teams.all()[:1])
                key = ProjectKey.objects.create(project=project)
            self.stdout.write(f"created project {organization.slug}/{slug}")
            self.stdout.write(key.dsn)
            return
        found = Project.objects.filter(organization=organization, slug=options["slug"]).first()
        if found is None:
            raise CommandError(f"no project {options['slug']!r} in {organization.slug!r}")
        if options["action"] == "set":
            self._set(found, options)
            return
        active = found.keys.filter(active=True).order_by("id").first()
        if active is None:
            raise CommandError(f"project {found} has no active key")
        self.stdout.write(active.dsn)

    def _set(self, project: Project, options: dict[str, Any]) -> None:
        limit = options["rate_limit"]
        if limit is not None:
            if limit != "none" and not limit.isdigit():
                raise CommandError("--rate-limit takes a number of events per minute, or none")
            project.keys.update(rate_limit_per_minute=None if limit == "none" else int(limit))
        for name in ("retention_days", "retention_max_events"):
            if options[name] is not None:
                if options[name] < 1:
                    raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
                setattr(project, name, options[name])
        project.save(update_fields=["retention_days", "retention_max_events"])
        self.stdout.write(f"updated {project}")


def _organization(slug: str | None) -> Organization:
    if slug:
        found = Organization.objects.filter(slug=slug).first()
        if found is None:
            raise CommandError(f"no organization {slug!r}")
        return found
    organizations = list(Organization.objects.all()[:2])
    if len(organizations) != 1:
        raise CommandError("say which organization with --org SLUG" if organizations else
                           "no organization yet: run `bugnet serve` once, or `bugnet migrate` first")  # fmt: skip
    return organizations[0]
