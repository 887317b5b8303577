"""The loop that polls a source, and what every source shares: its errors, its protocol, and
how ``PROJECT`` names one project."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from bugnet_server.runtime.tail.lines import EventLine

MAX_DELAY = 30.0  # seconds between retries while the database or server is unreachable


class TailError(Exception):
    """A mistake the user can fix (an unknown project, a refused token): stop and say so."""


class Unreachable(Exception):
    """The database or the server cannot be reached right now: warn, wait, retry."""


class Source(Protocol):
    def start(self) -> str:
        """Take the current state as seen; returns what is followed ("in shop/web")."""

    def poll(self) -> list[EventLine]: ...


def pick_project(spec: str, org: str | None, known: Iterable[str]) -> str:
    """The one of ``known`` ("org/slug" names) that ``spec`` ("slug" or "org/slug", with
    ``org`` from ``--org``) names. Raises ``TailError`` when none or several match."""
    if "/" in spec:
        org, _, slug = spec.partition("/")
    else:
        slug = spec
    matches = [name for name in known
               if name.split("/", 1)[1] == slug and org in (None, name.split("/", 1)[0])]  # fmt: skip
    if not matches:
        raise TailError(f"no project {spec!r}" + (f" in {org!r}" if org and "/" not in spec else "")
                        + " (`bugnet project create NAME` makes one)")  # fmt: skip
    if len(matches) > 1:
        raise TailError(f"several projects are called {slug!r} ({', '.join(sorted(matches))}): "
                        "say which, as ORG/SLUG")  # fmt: skip
    return matches[0]


def follow(
    source: Source,
    write: Callable[[EventLine], None],
    warn: Callable[[str], None],
    interval: float,
    gone: Callable[[], bool] = lambda: False,
) -> None:
    """Poll the (started) ``source`` every ``interval`` seconds and ``write`` what it gives,
    until ``gone()`` or interrupted (``KeyboardInterrupt`` propagates). While the source is
    unreachable, ``warn`` once and retry, waiting longer each time (up to ``MAX_DELAY``)."""
    delay = interval
    failing = False
    while not gone():
        try:
            lines = source.poll()
        except Unreachable as exc:
            if not failing:
                warn(f"{exc}; retrying")
            failing = True
            delay = min(delay * 2, MAX_DELAY)
            time.sleep(delay)
            continue
        if failing:
            warn("reconnected")
            failing, delay = False, interval
        for line in lines:
            write(line)
        time.sleep(interval)
