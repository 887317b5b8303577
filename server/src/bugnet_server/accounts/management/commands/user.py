"""``bugnet user create EMAIL --password PW [--superuser]``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Create a login."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a login")
        create.add_argument("email")
        create.add_argument("--password", required=True)
        create.add_argument("--superuser", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        email = options["email"].strip().lower()
        if "@" not in email:
            raise CommandError(f"{email!r} is not an email address")
        if users.filter(username=email).exists():
            raise CommandError(f"a user {email!r} already exists")
        make = users.create_superuser if options["superuser"] else users.create_user
        make(username=email, email=email, password=options["password"])
        self.stdout.write(f"created {'superuser' if options['superuser'] else 'user'} {email}")
