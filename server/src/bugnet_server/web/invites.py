"""Set-password links: how an invited user (or one an admin resets) chooses a password.

A link carries Django's password-reset token, which is signed with the secret key and made
from the user's password hash and last login: it stops working once the password is set (or
the user signs in), and after ``PASSWORD_RESET_TIMEOUT``. Email is optional on this server, so
the admin is always shown the link; it is also emailed when ``BUGNET_EMAIL_URL`` is set.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.urls import reverse
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

logger = logging.getLogger(__name__)


def valid_days() -> int:
    return max(1, int(settings.PASSWORD_RESET_TIMEOUT) // 86400)


def set_password_link(user: Any) -> str:
    """The absolute URL of ``user``'s set-password page (under ``BUGNET_BASE_URL``)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return str(settings.BASE_URL) + reverse("web:activate", args=[uid, token])


def user_for(uidb64: str, token: str) -> Any:
    """The active user a link is for, or None when the link is wrong, used or expired."""
    try:
        user_id = int(force_str(urlsafe_base64_decode(uidb64)))
    except (ValueError, TypeError, OverflowError):
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


def email_enabled() -> bool:
    return bool(settings.BUGNET.email)


def email_link(user: Any, link: str, sent_by: Any) -> str | None:
    """Email ``link`` to ``user`` when email is set up; returns what went wrong, or None.

    Never raises: the admin has the link on screen either way.
    """
    by = sent_by.get_full_name() or sent_by.get_username()
    body = (
        f"{by} invited you to Bugnet at {settings.BASE_URL}.\n\n"
        f"Choose your password here (the link works once, for {valid_days()} days):\n\n"
        f"{link}\n\nYou sign in with this email address: {user.email}\n"
    )
    try:
        send_mail("Your Bugnet account", body, None, [user.email])
    except Exception as exc:  # SMTP refusals, DNS, timeouts: all mean "give them the link"
        logger.warning("could not email a set-password link to %s: %s", user.email, exc)
        return str(exc) or type(exc).__name__
    return None
