"""``bugnet alert add PROJECT (--email ADDR | --members | --webhook URL [--format F]) [--on ...]``,
``bugnet alert list PROJECT``, ``bugnet alert test RULE_ID`` and ``bugnet alert remove RULE_ID``
(design.md §4.4). PROJECT is a slug, or ``org/slug`` when several organizations have one."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction

from bugnet_server.alerts import delivery
from bugnet_server.alerts.models import LEVELS, AlertChannel, AlertRule, Delivery
from bugnet_server.projects.models import Project

TRIGGERS = ("new", "regression", "unignored", "spike")
FORMATS = {"generic": AlertChannel.Kind.WEBHOOK, "slack": AlertChannel.Kind.SLACK,
           "discord": AlertChannel.Kind.DISCORD}  # fmt: skip
DEFAULT_SPIKE = (100, 60)


class Command(BaseCommand):
    help = "Add, list, test or remove a project's alert rules."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a rule with one channel")
        add.add_argument("project", help="project slug, or org/slug")
        where = add.add_mutually_exclusive_group(required=True)
        where.add_argument("--email", action="append", metavar="ADDR",
                           help="email this address (repeat for more)")  # fmt: skip
        where.add_argument("--members", action="store_true",
                           help="email the project's members (who did not opt out)")  # fmt: skip
        where.add_argument("--webhook", metavar="URL", help="POST to this URL")
        add.add_argument("--format", choices=sorted(FORMATS), default="generic",
                         help="the webhook's format (default generic: signed JSON)")  # fmt: skip
        add.add_argument("--on", default="new,regression",
                         help=f"when, comma-separated from {', '.join(TRIGGERS)} "
                              "(default new,regression)")  # fmt: skip
        add.add_argument("--spike", metavar="N/M",
                         help="a spike is more than N events of an issue in M minutes "
                              f"(default {DEFAULT_SPIKE[0]}/{DEFAULT_SPIKE[1]})")  # fmt: skip
        add.add_argument("--level", choices=LEVELS, help="only events of this level and above")
        add.add_argument("--environment", help="only events of this environment")
        add.add_argument("--interval", type=int, default=30, metavar="MINUTES",
                         help="at most one alert per issue and trigger per interval (default 30)")  # fmt: skip
        add.add_argument("--name", help="the rule's name")
        listing = sub.add_parser("list", help="show rules, channels and recent deliveries")
        listing.add_argument("project", help="project slug, or org/slug")
        test = sub.add_parser("test", help="send a test alert to each channel of a rule")
        test.add_argument("rule", type=int, help="the rule's number (see `bugnet alert list`)")
        remove = sub.add_parser("remove", help="remove a rule")
        remove.add_argument("rule", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _add(self, options: dict[str, Any]) -> None:
        project = find_project(options["project"])
        triggers = [t.strip() for t in options["on"].split(",") if t.strip()]
        unknown = sorted(set(triggers) - set(TRIGGERS))
        if unknown or not triggers:
            given = ", ".join(unknown) or "nothing"
            raise CommandError(f"--on takes {', '.join(TRIGGERS)}; not {given}")
        spike = _spike(options["spike"]) if "spike" in triggers else None
        if options["spike"] and spike is None:
            raise CommandError("--spike needs --on ...,spike")
        if options["interval"] < 1:
            raise CommandError("--interval must be at least 1 minute")
        channel = _channel(options)
        rule = AlertRule(
            project=project,
            name=options["name"] or _default_name(triggers, channel),
            on_new="new" in triggers,
            on_regression="regression" in triggers,
            on_unignored="unignored" in triggers,
            spike_count=spike[0] if spike else None,
            spike_minutes=spike[1] if spike else None,
            min_level=options["level"] or "",
            environment=options["environment"] or "",
            interval_minutes=options["interval"],
        )
        with transaction.atomic():
            rule.save()
            channel.rule = rule
            channel.save()
        self.stdout.write(f"added rule {rule.pk} to {project}: {rule.summary()} → {channel}")
        if channel.kind == AlertChannel.Kind.EMAIL and not settings.BUGNET.email:
            self.stderr.write("note: email is not set up; set BUGNET_EMAIL_URL to send it")
        if channel.kind == AlertChannel.Kind.WEBHOOK:
            self.stdout.write("signing secret (X-Bugnet-Signature: sha256=HMAC of the body):")
            self.stdout.write(channel.secret)

    def _list(self, options: dict[str, Any]) -> None:
        project = find_project(options["project"])
        rules = project.alert_rules.prefetch_related("channels").order_by("id")
        if not rules:
            self.stdout.write(f"{project} has no alert rules")
        for rule in rules:
            state = "" if rule.active else " (off)"
            self.stdout.write(f"rule {rule.pk}{state}: {rule.name}")
            self.stdout.write(f"  when: {rule.summary()}")
            for channel in rule.channels.all():
                self.stdout.write(f"  → {channel}")
        recent = (
            Delivery.objects.filter(alert__rule__project=project)
            .select_related("alert__issue__project", "alert__rule")
            .order_by("-created", "-id")[:20]
        )
        if recent:
            self.stdout.write("recent deliveries:")
        for row in recent:
            issue = row.alert.issue
            what = f"{issue.short_name}" if issue else "test"
            error = f"  ({row.last_error})" if row.last_error else ""
            self.stdout.write(
                f"  {row.created:%Y-%m-%d %H:%M:%S} rule {row.alert.rule_id} {row.alert.action:<10}"
                f" {what:<12} {row.kind:<8} {row.status:<8} {row.attempts} attempt"
                f"{'s' if row.attempts != 1 else ''}{error}"
            )

    def _test(self, options: dict[str, Any]) -> None:
        rule = AlertRule.objects.filter(pk=options["rule"]).first()
        if rule is None:
            raise CommandError(f"no rule {options['rule']}")
        failed = 0
        for channel in rule.channels.all():
            sent = delivery.send_test(channel)
            ok = sent.status == Delivery.Status.SENT
            failed += not ok
            detail = sent.attempt_log.order_by("-id").values_list("detail", flat=True).first()
            self.stdout.write(f"{'sent' if ok else 'FAILED'}: {channel}: {detail}")
        if failed:
            raise CommandError(f"{failed} channel{'s' if failed != 1 else ''} failed")

    def _remove(self, options: dict[str, Any]) -> None:
        deleted, _ = AlertRule.objects.filter(pk=options["rule"]).delete()
        if not deleted:
            raise CommandError(f"no rule {options['rule']}")
        self.stdout.write(f"removed rule {options['rule']}")


def find_project(name: str) -> Project:
    org, _, slug = name.rpartition("/")
    projects = Project.objects.select_related("organization").filter(slug=slug)
    if org:
        projects = projects.filter(organization__slug=org)
    found = list(projects[:2])
    if not found:
        raise CommandError(f"no project {name!r}")
    if len(found) > 1:
        raise CommandError(f"several organizations have a project {slug!r}: say ORG/{slug}")
    return found[0]


def _spike(value: str | None) -> tuple[int, int]:
    if not value:
        return DEFAULT_SPIKE
    count, _, minutes = value.partition("/")
    if not (count.isdigit() and minutes.isdigit() and int(count) > 0 and int(minutes) > 0):
        raise CommandError("--spike takes N/M: more than N events in M minutes, e.g. 100/10")
    return int(count), int(minutes)


def _channel(options: dict[str, Any]) -> AlertChannel:
    if options["webhook"]:
        try:
            URLValidator(schemes=["http", "https"])(options["webhook"])
        except ValidationError:
            raise CommandError(f"--webhook {options['webhook']!r} is not an http(s) URL") from None
        return AlertChannel(kind=FORMATS[options["format"]], url=options["webhook"])
    addresses = options["email"] or []
    for address in addresses:
        try:
            EmailValidator()(address)
        except ValidationError:
            raise CommandError(f"--email {address!r} is not an email address") from None
    return AlertChannel(kind=AlertChannel.Kind.EMAIL, addresses="\n".join(addresses))


def _default_name(triggers: list[str], channel: AlertChannel) -> str:
    return f"{', '.join(triggers).capitalize()} → {channel.get_kind_display()}"[:100]
