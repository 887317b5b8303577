"""``bugnet retention``: apply every project's retention now (the digest worker also does it
every few minutes)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bugnet_server.digest import retention


class Command(BaseCommand):
    help = "Delete events past each project's retention (days or event count) now."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = retention.enforce()
        self.stdout.write(f"removed {removed} events")
