"""``bugnet token create EMAIL``: an API token, printed once as the last line."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bugnet_server.accounts.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for a user; the token is the last line printed."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token")
        create.add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["email"].strip().lower()).first()
        if user is None:
            raise CommandError(
                f"no user {options['email']!r}; create one with `bugnet user create`"
            )
        _token, value = ApiToken.issue(user)
        self.stdout.write(f"created a token for {user.username} (shown once)")
        self.stdout.write(value)
