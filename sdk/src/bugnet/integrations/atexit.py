"""At exit: deliver what is queued within ``shutdown_timeout``; spool whatever is left."""

from __future__ import annotations

import atexit

from bugnet import _api
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration


class AtexitIntegration(Integration):
    identifier = "atexit"

    @classmethod
    def setup_once(cls) -> None:
        atexit.unregister(_at_exit)  # once per process, even when tests reset the integrations
        atexit.register(_at_exit)


def _at_exit() -> None:
    with capture_internal_exceptions():
        client = _api.get_client()
        if cls_active(client):
            client.close()


def cls_active(client: object) -> bool:
    return AtexitIntegration.identifier in getattr(client, "integrations", {})
