"""Why an ingest request is refused: an HTTP status and a reason the SDK's author can act on."""

from __future__ import annotations


class IngestError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
