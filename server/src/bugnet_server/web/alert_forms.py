"""The forms of the alert pages: a rule (when, how often), a channel (where to), and a user's
alert emails. Each validates everything it is given, so a page can re-render it with its
errors (status 400)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db.models import QuerySet

from bugnet_server.alerts.models import LEVELS, AlertChannel, AlertRule
from bugnet_server.projects.models import Project
from bugnet_server.web.forms import MAX_INT, ProjectChoices

MAX_ADDRESSES = 50
CHANNEL_KINDS = [
    (AlertChannel.Kind.EMAIL.value, "Email"),
    (AlertChannel.Kind.WEBHOOK.value, "Webhook: JSON, signed (generic)"),
    (AlertChannel.Kind.SLACK.value, "Webhook: Slack"),
    (AlertChannel.Kind.DISCORD.value, "Webhook: Discord"),
]
NO_CHANNEL = ("", "No channel yet (add one on the rule's page)")


class RuleForm(forms.ModelForm):  # type: ignore[type-arg]
    """A rule's name, triggers, filters and interval. A spike takes both numbers; a rule takes
    at least one trigger."""

    spike_count = forms.IntegerField(
        min_value=1, max_value=MAX_INT, required=False, label="Spike: more than (events)",
    )  # fmt: skip
    spike_minutes = forms.IntegerField(
        min_value=1, max_value=MAX_INT, required=False, label="within (minutes)",
        help_text="Both numbers, or neither (no spike alerts).",
    )  # fmt: skip
    min_level = forms.ChoiceField(
        choices=[("", "any level"), *[(level, f"{level} and above") for level in LEVELS]],
        required=False, label="Level",
    )  # fmt: skip
    environment = forms.CharField(
        max_length=64, required=False, label="Environment",
        help_text="Only events of this environment (e.g. production); empty: any.",
    )  # fmt: skip
    interval_minutes = forms.IntegerField(
        min_value=1, max_value=MAX_INT, label="At most once per issue every (minutes)",
        help_text="For each trigger: one alert per issue per interval.",
    )  # fmt: skip

    class Meta:
        model = AlertRule
        fields = ["name", "active", "on_new", "on_regression", "on_unignored", "spike_count",
                  "spike_minutes", "min_level", "environment", "interval_minutes"]  # fmt: skip
        labels = {
            "active": "Active (off: the rule alerts nothing)",
            "on_new": "A new issue",
            "on_regression": "A regression (a resolved issue back)",
            "on_unignored": "An ignored issue back (its ignore ended)",
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.has_error("spike_count") or self.has_error("spike_minutes"):
            return data
        count, minutes = data.get("spike_count"), data.get("spike_minutes")
        if (count is None) != (minutes is None):
            missing = "spike_minutes" if minutes is None else "spike_count"
            self.add_error(missing, "A spike takes both numbers: N events within M minutes.")
        elif not (data.get("on_new") or data.get("on_regression") or data.get("on_unignored")
                  or count is not None):  # fmt: skip
            raise ValidationError("Choose at least one trigger: a new issue, a regression, "
                                  "an ignored issue back, or a spike.")  # fmt: skip
        return data


class ChannelForm(forms.Form):
    """Where alerts go: email (addresses, or the project's members), or a webhook's URL.
    ``optional``: the kind may be left empty (a new rule without a channel yet)."""

    kind = forms.ChoiceField(choices=CHANNEL_KINDS, label="Send to", initial="email")
    addresses = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000,
        label="Email addresses (for email)",
        help_text="One per line. Empty: the project's members (who did not turn alert emails "
                  "off).",
    )  # fmt: skip
    url = forms.CharField(
        max_length=2000, required=False, label="Webhook URL (for a webhook)",
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
        help_text="An http(s) URL. Slack and Discord give one per channel (“incoming webhook”).",
    )  # fmt: skip

    def __init__(self, *args: Any, optional: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if optional:
            kind: Any = self.fields["kind"]
            kind.choices = [NO_CHANNEL, *CHANNEL_KINDS]
            kind.required = False
            kind.initial = "email"

    def clean_addresses(self) -> str:
        lines = [line.strip() for line in self.cleaned_data["addresses"].splitlines()]
        addresses = [line for line in lines if line]
        if len(addresses) > MAX_ADDRESSES:
            raise ValidationError(f"At most {MAX_ADDRESSES} addresses.")
        bad = []
        for address in addresses:
            try:
                EmailValidator()(address)
            except ValidationError:
                bad.append(address)
        if bad:
            raise ValidationError(f"Not an email address: {', '.join(bad)}")
        return "\n".join(addresses)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind and kind != AlertChannel.Kind.EMAIL:
            url = (data.get("url") or "").strip()
            if not url:
                self.add_error("url", "A webhook needs its URL.")
            else:
                try:
                    URLValidator(schemes=["http", "https"])(url)
                except ValidationError:
                    self.add_error("url", "Enter an http:// or https:// URL.")
                data["url"] = url
        return data

    def channel(self) -> AlertChannel | None:
        """The channel the valid form describes, unsaved (None: no channel chosen)."""
        kind = self.cleaned_data.get("kind")
        if not kind:
            return None
        if kind == AlertChannel.Kind.EMAIL:
            return AlertChannel(kind=kind, addresses=self.cleaned_data["addresses"])
        return AlertChannel(kind=kind, url=self.cleaned_data["url"])


class EmailPreferencesForm(forms.Form):
    """A user's alert emails: on or off, and the projects muted."""

    alerts = forms.BooleanField(required=False, label="Email me alerts")
    muted = ProjectChoices(
        queryset=Project.objects.none(), required=False, label="Mute these projects",
    )  # fmt: skip

    def __init__(self, projects: QuerySet[Project], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["muted"]
        field.queryset = projects
