"""Modules: the installed packages and their versions, attached to every event.

Listed once, on the transport's thread, so the app never pays for scanning ``site-packages``."""

from __future__ import annotations

from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from bugnet.types import Event

_cache: Optional[dict[str, str]] = None


def installed_packages() -> dict[str, str]:
    global _cache
    if _cache is None:
        from importlib import metadata

        found: dict[str, str] = {}
        for dist in metadata.distributions():
            name = dist.metadata["Name"] if dist.metadata else None
            if name:
                found[str(name).lower()] = str(dist.version)
        _cache = dict(sorted(found.items()))
    return dict(_cache)


class ModulesIntegration(Integration):
    identifier = "modules"

    def setup(self, client: Any) -> None:
        client.finalizers.append(_add_modules)


def _add_modules(event: Event) -> None:
    event.setdefault("modules", installed_packages())
