"""The durable queue between ingest and digest."""

from __future__ import annotations

from django.db import models

from bugnet_server.projects.models import Project


class QueuedEvent(models.Model):
    """An event as received, committed before the SDK gets its 200, waiting to be digested.

    ``payload`` is the event JSON, compressed. A worker claims rows by setting ``claimed_until``
    (a lease): a worker that dies leaves rows that another claims once the lease runs out.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=32)
    received_at = models.FloatField()
    sent_at = models.CharField(max_length=64, blank=True, default="")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    payload = models.BinaryField()
    claimed_until = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "event_id"], name="queued_once"),
        ]
        indexes = [models.Index(fields=["claimed_until", "id"], name="queue_claim")]
