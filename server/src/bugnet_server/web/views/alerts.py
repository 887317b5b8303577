"""A project's alert rules: their section of the settings page, a rule's page (its settings,
channels, test alerts, and recent deliveries with every attempt), a new rule, deleting one.

Seeing them takes seeing the project (404 otherwise); changing anything, a test alert
included, takes being an owner or admin of its organization (403 otherwise), as with the
project's other settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from bugnet_server.alerts import delivery, formats, retry
from bugnet_server.alerts.models import AlertChannel, AlertRule, Delivery, DeliveryAttempt
from bugnet_server.projects.models import Project
from bugnet_server.web.access import is_org_admin, project_for
from bugnet_server.web.alert_forms import ChannelForm, RuleForm

DELIVERIES_SHOWN = 50


def _managed(request: HttpRequest, org: str, project: str) -> Project:
    """The project if the user may change its alerts: 404 if they cannot see it, 403 if they
    may only look."""
    found = project_for(request.user, org, project)
    if not is_org_admin(request.user, found):
        raise PermissionDenied("only the organization's owners and admins change its alerts")
    return found


def _rule(project: Project, rule_id: int) -> AlertRule:
    found = project.alert_rules.filter(pk=rule_id).first()
    if found is None:
        raise Http404("no such alert rule")
    return found


def _channel(rule: AlertRule, channel_id: int) -> AlertChannel:
    found = rule.channels.select_related("rule__project__organization").filter(pk=channel_id)
    channel = found.first()
    if channel is None:
        raise Http404("no such channel")
    return channel


def _rule_url(rule: AlertRule, section: str = "") -> str:
    project = rule.project
    url = reverse("web:alert-rule", args=[project.organization.slug, project.slug, rule.pk])
    return f"{url}#{section}" if section else url


def email_off(channels: list[AlertChannel]) -> bool:
    """Whether some of ``channels`` email while email is not set up (they send nothing)."""
    return not settings.BUGNET.email and any(c.kind == AlertChannel.Kind.EMAIL for c in channels)


def with_attempts(deliveries: QuerySet[Delivery]) -> QuerySet[Delivery]:
    """``deliveries`` with their attempts, oldest first, in one more query."""
    return deliveries.prefetch_related(
        Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("created", "id"))
    )


# --- the settings page's section ---------------------------------------------------------------


@dataclass
class RuleRow:
    rule: AlertRule
    summary: str
    channels: list[AlertChannel]
    last: Delivery | None


@dataclass
class AlertsSection:
    rules: list[RuleRow]
    email_off: bool


def section(project: Project) -> AlertsSection:
    """The project's rules with their channels and latest delivery, in three queries."""
    latest = Delivery.objects.filter(alert__rule=OuterRef("pk")).order_by("-created", "-id")
    rules = list(
        project.alert_rules.order_by("id")
        .prefetch_related(Prefetch("channels", queryset=AlertChannel.objects.order_by("id")))
        .annotate(last_delivery=Subquery(latest.values("id")[:1]))
    )
    last = Delivery.objects.select_related("alert").in_bulk(
        [r.last_delivery for r in rules if r.last_delivery]
    )
    rows = [
        RuleRow(rule, rule.summary(), list(rule.channels.all()), last.get(rule.last_delivery))
        for rule in rules
    ]
    return AlertsSection(rows, email_off([c for row in rows for c in row.channels]))


# --- a new rule ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def rule_create(request: HttpRequest, org: str, project: str) -> HttpResponse:
    found = _managed(request, org, project)
    data = request.POST if request.method == "POST" else None
    form = RuleForm(data, instance=AlertRule(project=found))
    channel_form = ChannelForm(data, optional=True, prefix="channel")
    valid = [form.is_valid(), channel_form.is_valid()]  # both: the page shows every error
    if request.method == "POST" and all(valid):
        channel = channel_form.channel()
        with transaction.atomic():
            rule = form.save()
            if channel is not None:
                channel.rule = rule
                channel.save()
        messages.success(request, f"Added the rule “{rule.name}”.")
        return redirect(_rule_url(rule))
    context = {"project": found, "form": form, "channel_form": channel_form, "nav": "projects"}
    status = 400 if form.errors or channel_form.errors else 200
    return render(request, "web/alert_rule_new.html", context, status=status)


# --- a rule's page ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def rule_detail(request: HttpRequest, org: str, project: str, rule_id: int) -> HttpResponse:
    """The rule's page; a POST saves its settings."""
    if request.method == "GET":
        found = project_for(request.user, org, project)
        return _rule_page(request, _rule(found, rule_id))
    found = _managed(request, org, project)
    saved = _rule(found, rule_id)
    # A copy for the form: validating writes into its instance, the page shows the saved one.
    form = RuleForm(request.POST, instance=AlertRule.objects.get(pk=saved.pk))
    if not form.is_valid():
        return _rule_page(request, saved, rule_form=form)
    form.save()
    messages.success(request, f"Saved the rule “{form.instance.name}”.")
    return redirect(_rule_url(saved))


@require_POST
def rule_delete(request: HttpRequest, org: str, project: str, rule_id: int) -> HttpResponse:
    found = _managed(request, org, project)
    doomed = _rule(found, rule_id)
    doomed.delete()
    messages.success(request, f"Deleted the rule “{doomed.name}”.")
    url = reverse("web:project-settings", args=[found.organization.slug, found.slug])
    return redirect(f"{url}#alerts")


@require_POST
def channel_add(request: HttpRequest, org: str, project: str, rule_id: int) -> HttpResponse:
    found = _rule(_managed(request, org, project), rule_id)
    form = ChannelForm(request.POST, prefix="channel")
    if not form.is_valid():
        return _rule_page(request, found, channel_form=form)
    channel = form.channel()
    assert channel is not None  # the kind is required here
    channel.rule = found
    channel.save()
    note = " Its signing secret is below." if channel.kind == AlertChannel.Kind.WEBHOOK else ""
    messages.success(request, f"Added {channel}.{note}")
    return redirect(_rule_url(found, f"channel-{channel.pk}"))


@require_POST
def channel_remove(
    request: HttpRequest, org: str, project: str, rule_id: int, channel_id: int
) -> HttpResponse:
    found = _rule(_managed(request, org, project), rule_id)
    channel = _channel(found, channel_id)
    channel.delete()
    messages.success(request, f"Removed {channel}. Its past deliveries stay listed.")
    return redirect(_rule_url(found, "channels"))


@require_POST
def channel_test(
    request: HttpRequest, org: str, project: str, rule_id: int, channel_id: int
) -> HttpResponse:
    """Send a test alert to the channel now (no retries) and say how it went."""
    found = _rule(_managed(request, org, project), rule_id)
    channel = _channel(found, channel_id)
    sent = delivery.send_test(channel)
    attempt = sent.attempt_log.order_by("-id").first()
    detail = attempt.detail if attempt else sent.last_error
    if sent.status == Delivery.Status.SENT:
        messages.success(request, f"Sent a test alert to {channel}: {detail}.")
    else:
        messages.error(request, f"The test alert to {channel} failed: {detail}")
    return redirect(_rule_url(found, f"channel-{channel.pk}"))


def _rule_page(request: HttpRequest, rule: AlertRule, **bound: Any) -> HttpResponse:
    """The rule's page, with ``bound`` forms (that failed validation) in place of fresh ones."""
    channels = list(rule.channels.order_by("id"))
    deliveries = with_attempts(
        Delivery.objects.filter(alert__rule=rule)
        .select_related("alert__issue__project")
        .order_by("-created", "-id")
    )[:DELIVERIES_SHOWN]
    context = {
        "project": rule.project,
        "rule": rule,
        "summary": rule.summary(),
        "can_manage": is_org_admin(request.user, rule.project),
        "rule_form": bound.get("rule_form") or RuleForm(instance=rule),
        "channel_form": bound.get("channel_form") or ChannelForm(prefix="channel"),
        "channels": channels,
        "email_off": email_off(channels),
        "deliveries": list(deliveries),
        "deliveries_shown": DELIVERIES_SHOWN,
        "max_attempts": retry.MAX_ATTEMPTS,
        "signature_header": formats.SIGNATURE_HEADER,
        "nav": "projects",
    }
    return render(request, "web/alert_rule.html", context, status=400 if bound else 200)
