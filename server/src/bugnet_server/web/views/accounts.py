"""Sign in, sign out, change your password, choose your alert emails."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from bugnet_server.alerts.models import EmailPreference
from bugnet_server.projects.models import Project
from bugnet_server.web.access import member_projects
from bugnet_server.web.alert_forms import EmailPreferencesForm


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass  # POST only (Django's rule): a link cannot sign anyone out


@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)  # type: ignore[arg-type]  # signed in: the middleware saw to it
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)  # stay signed in
        messages.success(request, "Your password was changed.")
        return redirect("web:account")
    return _account_page(request, password=form)


@require_POST
def email_alerts(request: HttpRequest) -> HttpResponse:
    """Save the user's alert emails: on or off, and the projects they muted (among those they
    see; mutes of projects they no longer see are kept, for when they see them again)."""
    user: Any = request.user  # signed in: the middleware saw to it
    projects = _projects(user)
    form = EmailPreferencesForm(projects, request.POST)
    if not form.is_valid():
        return _account_page(request, alerts=form)
    with transaction.atomic():
        preference, _ = EmailPreference.objects.get_or_create(user=user)
        preference.alerts = form.cleaned_data["alerts"]
        preference.save(update_fields=["alerts"])
        unseen = list(preference.muted_projects.exclude(pk__in=projects.values("pk")))
        preference.muted_projects.set([*unseen, *form.cleaned_data["muted"]])
    messages.success(request, "Saved your alert emails.")
    return redirect(reverse("web:account") + "#alerts")


def _projects(user: Any) -> QuerySet[Project]:
    """The projects whose member emails reach the user: those of their teams (a superuser sees
    every project, but is emailed only as a member, like everyone)."""
    return member_projects(user).order_by("organization__slug", "name")


def _account_page(
    request: HttpRequest,
    password: PasswordChangeForm | None = None,
    alerts: EmailPreferencesForm | None = None,
) -> HttpResponse:
    if password is None:
        password = PasswordChangeForm(request.user)  # type: ignore[arg-type]
    for field in password.fields.values():
        field.widget.attrs.setdefault("autocomplete", "new-password")
    password.fields["old_password"].widget.attrs["autocomplete"] = "current-password"
    user: Any = request.user
    projects = _projects(user)
    if alerts is None:
        preference = EmailPreference.objects.filter(user=user).first()
        muted = preference.muted_projects.all() if preference else Project.objects.none()
        initial = {"alerts": preference.alerts if preference else True,
                   "muted": list(muted.filter(pk__in=projects.values("pk")))}  # fmt: skip
        alerts = EmailPreferencesForm(projects, initial=initial)
    context = {"form": password, "alerts": alerts, "nav": "account"}
    failed = bool(password.is_bound and password.errors) or alerts.is_bound
    return render(request, "web/account.html", context, status=400 if failed else 200)
