"""What every page of the web UI gets: a login, and a Content-Security-Policy.

Event data is written by strangers and shown on these pages. Templates escape it; the policy is
the second wall: no inline script, no script from anywhere but this server, no plugins, no
framing, forms only to this server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)

# Paths that answer without a login: the login page itself, the REST API (tokens), static files.
PUBLIC_PREFIXES = ("/login/", "/api/", "/static/", "/favicon.ico")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class LoginRequiredMiddleware:
    """Every page but the public ones needs a signed-in, active user; others are sent to the
    login page (and back to where they were going after it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        if request.path.startswith(PUBLIC_PREFIXES) or (user is not None and user.is_authenticated):
            return self.get_response(request)
        target = quote(request.get_full_path(), safe="/")
        return HttpResponseRedirect(f"{settings.LOGIN_URL}?next={target}")
