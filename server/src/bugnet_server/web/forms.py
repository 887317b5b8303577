"""The forms of the admin pages: projects, their settings and keys, users, roles and teams.

Each form validates everything it is given (a choice outside what the acting user manages is
a form error, not a 500), so a page can re-render it with its errors.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.db.models import QuerySet
from django.utils.text import slugify

from bugnet_server.projects.models import Organization, OrganizationMember, Project, Team
from bugnet_server.web.admin_access import is_owner, other_owners

MAX_INT = 2_147_483_647  # what every database's integer column holds


class TeamChoices(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    """Teams as checkboxes, labelled ``org / Team name``."""

    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.organization.slug} / {obj.name}"


def offer(form: forms.BaseForm, name: str, queryset: QuerySet[Any]) -> None:
    """Limit the model choice field ``name`` of ``form`` to ``queryset``."""
    field: Any = form.fields[name]
    field.queryset = queryset


def choices_of(form: forms.BaseForm, name: str) -> QuerySet[Any]:
    field: Any = form.fields[name]
    return field.queryset  # type: ignore[no-any-return]


def teams_of(organizations: QuerySet[Organization]) -> QuerySet[Team]:
    return Team.objects.filter(organization__in=organizations).select_related("organization")


def _unique_team_slug(organization: Organization, name: str) -> str:
    slug = slugify(name)
    if not slug:
        raise forms.ValidationError("Use letters or digits in the name.")
    if Team.objects.filter(organization=organization, slug=slug).exists():
        raise forms.ValidationError(f"{organization.slug} already has a team {slug!r}.")
    return slug


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    organization = forms.ModelChoiceField(queryset=Organization.objects.none(), empty_label=None)
    teams = TeamChoices(queryset=Team.objects.none(), required=False)
    new_team = forms.CharField(
        max_length=200, required=False, label="Or a new team",
        help_text="Made in the organization with you as its member.",
    )  # fmt: skip

    def __init__(self, user: Any, organizations: QuerySet[Organization], *args: Any) -> None:
        super().__init__(*args)
        self.user = user
        offer(self, "organization", organizations)
        teams = teams_of(organizations).order_by("organization__slug", "name")
        offer(self, "teams", teams if user.is_superuser else teams.filter(members=user))
        self.slug = ""
        self.new_team_slug = ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        organization = data.get("organization")
        if organization is None or "name" not in data:
            return data
        self.slug = slugify(data["name"])
        if not self.slug:
            self.add_error("name", "Use letters or digits in the name (it makes the slug).")
        elif Project.objects.filter(organization=organization, slug=self.slug).exists():
            self.add_error("name", f"{organization.slug} already has a project {self.slug!r}.")
        teams = list(data.get("teams") or [])
        if any(team.organization_id != organization.pk for team in teams):
            self.add_error("teams", f"Choose teams of {organization.slug}.")
        if data.get("new_team"):
            try:
                self.new_team_slug = _unique_team_slug(organization, data["new_team"])
            except forms.ValidationError as exc:
                self.add_error("new_team", exc)
        elif not teams:
            offered = choices_of(self, "teams").exists()
            self.add_error(
                "teams" if offered else "new_team",
                "Choose a team (its members see the project), or make one.",
            )
        return data


class ProjectSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    retention_days = forms.IntegerField(
        min_value=1, max_value=MAX_INT, label="Keep events for (days)"
    )
    retention_max_events = forms.IntegerField(
        min_value=1, max_value=MAX_INT, label="Keep at most (events)",
        help_text="The oldest events go first once the project holds more.",
    )  # fmt: skip

    class Meta:
        model = Project
        fields = ["name", "retention_days", "retention_max_events"]


class ProjectTeamsForm(forms.Form):
    teams = TeamChoices(queryset=Team.objects.none(), required=False)

    def __init__(self, user: Any, project: Project, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        offer(
            self,
            "teams",
            Team.objects.filter(organization_id=project.organization_id)
            .select_related("organization")
            .order_by("name"),
        )

    def clean_teams(self) -> list[Team]:
        teams = list(self.cleaned_data["teams"])
        if not self.user.is_superuser and not any(
            team.members.filter(pk=self.user.pk).exists() for team in teams
        ):
            raise forms.ValidationError(
                "Keep at least one of your own teams, or you could no longer see the project."
            )
        return teams


class KeyCreateForm(forms.Form):
    label = forms.CharField(max_length=64, initial="Default")


class RateLimitForm(forms.Form):
    rate_limit_per_minute = forms.IntegerField(
        min_value=1, max_value=MAX_INT, required=False, label="Events per minute",
        help_text="Events per minute; empty: no limit.",
    )  # fmt: skip


class UserCreateForm(forms.Form):
    MODES = [
        ("invite", "Send a set-password link (shown to you, and emailed if email is set up)"),
        ("generate", "Generate a password (shown to you once)"),
        ("password", "Set a password (below)"),
    ]
    email = forms.EmailField(max_length=150)
    name = forms.CharField(max_length=150, required=False)
    mode = forms.ChoiceField(
        choices=MODES, initial="invite", widget=forms.RadioSelect, label="Password"
    )
    password = forms.CharField(
        required=False, strip=False, label="The password you set",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )  # fmt: skip
    organization = forms.ModelChoiceField(queryset=Organization.objects.none(), required=False)
    role = forms.ChoiceField(choices=OrganizationMember.Role.choices, initial="member")
    teams = TeamChoices(queryset=Team.objects.none(), required=False)
    is_superuser = forms.BooleanField(
        required=False, label="Superuser (sees and manages everything)"
    )

    def __init__(self, user: Any, organizations: QuerySet[Organization], *args: Any) -> None:
        super().__init__(*args)
        self.user = user
        offer(self, "organization", organizations)
        offer(self, "teams", teams_of(organizations).order_by("organization__slug", "name"))
        only = list(organizations[:2])
        if len(only) == 1:
            self.fields["organization"].initial = only[0]
        if not user.is_superuser:
            organization: Any = self.fields["organization"]
            organization.required = True
            organization.empty_label = None
            del self.fields["is_superuser"]
            role: Any = self.fields["role"]
            role.choices = _roles_for(user, organizations)

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"]).strip().lower()
        if get_user_model().objects.filter(username=email).exists():
            raise forms.ValidationError("There is a user with this email already.")
        return email

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "password":
            password = data.get("password") or ""
            if not password:
                self.add_error("password", "Type the password, or choose another option.")
            else:
                try:
                    password_validation.validate_password(password)
                except forms.ValidationError as exc:
                    self.add_error("password", exc)
        organization = data.get("organization")
        teams = list(data.get("teams") or [])
        if teams and organization is None:
            self.add_error("organization", "Teams belong to an organization: choose it.")
        elif organization is not None and any(t.organization_id != organization.pk for t in teams):
            self.add_error("teams", f"Choose teams of {organization.slug}.")
        if (
            organization is not None
            and data.get("role") == "owner"
            and not is_owner(self.user, organization)
        ):
            self.add_error("role", "Only an owner makes owners.")
        return data


def _roles_for(user: Any, organizations: QuerySet[Organization]) -> list[tuple[str, str]]:
    roles = list(OrganizationMember.Role.choices)
    if any(is_owner(user, org) for org in organizations):
        return roles
    return [(value, label) for value, label in roles if value != "owner"]


class UserRolesForm(forms.Form):
    """The user's role in each organization the actor manages ("": not a member)."""

    def __init__(
        self, actor: Any, user: Any, organizations: QuerySet[Organization], *args: Any
    ) -> None:
        super().__init__(*args)
        self.actor = actor
        self.user = user
        self.current = {m.organization_id: m.role for m in user.memberships.all()}
        self.organizations = list(organizations)
        choices = [("", "not a member"), *OrganizationMember.Role.choices]
        for org in self.organizations:
            self.fields[f"role_{org.pk}"] = forms.ChoiceField(
                choices=choices, required=False, label=org.name or org.slug,
                initial=self.current.get(org.pk, ""),
            )  # fmt: skip

    def changes(self) -> list[tuple[Organization, str, str]]:
        """(organization, old role, new role) for each role the form changes."""
        found = []
        for org in self.organizations:
            new = self.cleaned_data.get(f"role_{org.pk}") or ""
            old = self.current.get(org.pk, "")
            if new != old:
                found.append((org, old, new))
        return found

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for org, old, new in self.changes():
            field = f"role_{org.pk}"
            if "owner" in (old, new) and not is_owner(self.actor, org):
                self.add_error(field, "Only an owner makes or unmakes owners.")
            elif old == "owner" and not other_owners(org, self.user):
                self.add_error(field, f"{org.slug} needs another owner first.")
        return data


class UserTeamsForm(forms.Form):
    """The user's teams among those of the organizations the actor manages."""

    teams = TeamChoices(queryset=Team.objects.none(), required=False)

    def __init__(
        self, user: Any, organizations: QuerySet[Organization], *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        teams = teams_of(organizations).order_by("organization__slug", "name")
        offer(self, "teams", teams)
        self.fields["teams"].initial = list(teams.filter(members=user))


class UserAccountForm(forms.Form):
    name = forms.CharField(max_length=150, required=False)
    is_active = forms.BooleanField(required=False, label="Active (may sign in)")
    is_superuser = forms.BooleanField(
        required=False, label="Superuser (sees and manages everything)"
    )

    def __init__(self, actor: Any, user: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "name": user.first_name,
                "is_active": user.is_active,
                "is_superuser": user.is_superuser,
            },
        )
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.user = user
        if not actor.is_superuser:
            del self.fields["is_superuser"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.user.pk == self.actor.pk:
            if not data.get("is_active"):
                self.add_error("is_active", "You cannot deactivate yourself.")
            if "is_superuser" in self.fields and not data.get("is_superuser"):
                self.add_error("is_superuser", "Another superuser has to take this away.")
        return data


class TeamCreateForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.none(), empty_label=None)
    name = forms.CharField(max_length=200)

    def __init__(self, organizations: QuerySet[Organization], *args: Any) -> None:
        super().__init__(*args)
        offer(self, "organization", organizations)
        self.slug = ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("organization") is not None and data.get("name"):
            try:
                self.slug = _unique_team_slug(data["organization"], data["name"])
            except forms.ValidationError as exc:
                self.add_error("name", exc)
        return data


class UserChoices(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: Any) -> str:
        name = obj.get_full_name()
        return f"{name} <{obj.username}>" if name else str(obj.username)


class ProjectChoices(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.slug})"


class TeamForm(forms.ModelForm):  # type: ignore[type-arg]
    """A team's name, members (members of its organization) and projects."""

    members = UserChoices(queryset=get_user_model().objects.none(), required=False)
    projects = ProjectChoices(queryset=Project.objects.none(), required=False)

    class Meta:
        model = Team
        fields = ["name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team = self.instance
        users = get_user_model().objects.filter(memberships__organization_id=team.organization_id)
        offer(self, "members", users.order_by("username"))
        offer(
            self,
            "projects",
            Project.objects.filter(organization_id=team.organization_id).order_by("name"),
        )
        self.initial.setdefault("members", list(team.members.all()))
        self.initial.setdefault("projects", list(team.projects.all()))
