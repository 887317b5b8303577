"""Logins are Django's users (the email is the username); API tokens belong to a user."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """A Bearer token for the REST API. Only its hash is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    @classmethod
    def issue(cls, user: object) -> tuple[ApiToken, str]:
        token = "bnt_" + secrets.token_hex(24)
        return cls.objects.create(user=user, token_hash=hash_token(token), prefix=token[:8]), token

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
