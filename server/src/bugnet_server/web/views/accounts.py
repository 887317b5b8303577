"""Sign in, sign out, change your password."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass  # POST only (Django's rule): a link cannot sign anyone out


@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)  # type: ignore[arg-type]  # signed in: the middleware saw to it
    for field in form.fields.values():
        field.widget.attrs.setdefault("autocomplete", "new-password")
    form.fields["old_password"].widget.attrs["autocomplete"] = "current-password"
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)  # stay signed in
        messages.success(request, "Your password was changed.")
        return redirect("web:account")
    return render(request, "web/account.html", {"form": form, "nav": "account"})
