"""``bugnet tail [PROJECT] [--level LEVEL] [--json] [--url URL --token TOKEN]``: follow new
events live, from this server's database or, with ``--url``, from a server's REST API."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bugnet_server.runtime import tail


class Command(BaseCommand):
    help = (
        "Follow new events live: one line each (coloured on a terminal; NEW and REGRESSED "
        "marked), or JSON lines with --json. From this server's database, or from a server's "
        "REST API with --url and --token (or BUGNET_URL and BUGNET_TOKEN)."
    )
    requires_system_checks: list[str] = []  # the remote mode needs no database

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", nargs="?", help="SLUG or ORG/SLUG (default: every project)")
        parser.add_argument("--org", help="the project's organization (or write ORG/SLUG)")
        parser.add_argument("--level", choices=tail.LEVELS, help="show this level and above")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")
        parser.add_argument("--color", action="store_true", help="colour even when not a terminal")
        parser.add_argument("--url", default=os.environ.get("BUGNET_URL"),
                            help="a Bugnet server's URL: read its REST API, not the database")  # fmt: skip
        parser.add_argument("--token", default=os.environ.get("BUGNET_TOKEN"),
                            help="an API token for --url (`bugnet token create EMAIL`)")  # fmt: skip
        parser.add_argument("--interval", type=float,
                            help="seconds between polls (default 0.5, or 1 with --url)")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        # SIGTERM ends the tail as quietly as Ctrl-C does.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        out = sys.stdout
        if options["color"] and options["no_color"]:
            raise CommandError("--color and --no-color cannot be used together")
        choice = True if options["color"] or options["force_color"] else None
        color = tail.wants_color(out, False if options["no_color"] else choice)
        try:
            source, interval = self._source(options)
            self._say(f"following new events {source.start()} (Ctrl-C to stop)")
            tail.follow(source, tail.printer(out, options["json"], color), self._say,
                        options["interval"] or interval, lambda: tail.reader_gone(out))  # fmt: skip
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:
            # Nobody reads any more (`bugnet tail | head -1`): point stdout at /dev/null so
            # the interpreter's last flush does not complain either.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
            os.close(devnull)
        except (tail.TailError, tail.Unreachable) as exc:  # at start: say so rather than wait
            raise CommandError(str(exc)) from None

    def _source(self, options: dict[str, Any]) -> tuple[tail.Source, float]:
        levels = tail.levels_from(options["level"])
        spec, org = options["project"], options["org"]
        if options["url"]:
            if not options["token"]:
                raise tail.TailError("--url needs --token (or BUGNET_TOKEN): make one with "
                                     "`bugnet token create EMAIL` on the server")  # fmt: skip
            api = tail.ApiClient(options["url"], options["token"])
            return tail.RemoteSource(api, spec, org, levels), 1.0
        return tail.LocalSource(spec, org, levels), 0.5

    def _say(self, message: str) -> None:
        with contextlib.suppress(OSError):  # stderr closed too: nothing to tell anyone
            sys.stderr.write(f"bugnet tail: {message}\n")
            sys.stderr.flush()
