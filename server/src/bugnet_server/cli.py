"""The ``bugnet`` command: ``serve``, ``user``, ``project``, ``token``, and any Django
management command (``migrate``, ``shell``, ``createsuperuser``...)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bugnet_server.settings")
    from django.core.management import execute_from_command_line

    args = sys.argv[1:] if argv is None else argv
    if not args:
        args = ["help"]
    execute_from_command_line(["bugnet", *args])


if __name__ == "__main__":
    main()
