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
    if _remote_tail(args):
        # It reads a server's REST API and nothing of this machine: loading the settings must
        # not generate a secret key into a data dir a client machine never meant to have.
        os.environ.setdefault("BUGNET_SECRET_KEY", "unused-by-a-remote-tail")
    execute_from_command_line(["bugnet", *args])


def _remote_tail(args: list[str]) -> bool:
    if args[0] != "tail":
        return False
    return bool(os.environ.get("BUGNET_URL")) or any(
        arg == "--url" or arg.startswith("--url=") for arg in args
    )


if __name__ == "__main__":
    main()
