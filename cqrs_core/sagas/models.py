"""Persistent state of sagas: one row per instance, locked by whoever moves it on."""
from __future__ import annotations

from django.db import models


class SagaInstance(models.Model):
    """Where one saga stands: status, step, results, attempts, errors and who is driving it.

    ``version`` is the version of the saga's stream ``saga-<id>``; state and events move in the
    same transaction. ``lease_owner``/``lease_expires_at`` say which driver is running the
    current step; an expired lease is a driver that died, and the sweep reclaims it.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPENSATING = "compensating"
        COMPLETED = "completed"
        COMPENSATED = "compensated"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True)
    saga_type = models.CharField(max_length=200, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    current_step = models.IntegerField(default=0)
    data = models.JSONField(default=dict)
    results = models.JSONField(default=dict, blank=True)
    attempts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    compensated = models.JSONField(default=list, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    version = models.BigIntegerField(default=0)
    correlation_id = models.UUIDField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "cqrs_core"
        db_table = "cqrs_saga"
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "updated_at"], name="cqrs_saga_status")]

    def __str__(self) -> str:
        return f"{self.saga_type} {self.id} ({self.status})"

    @property
    def stream_id(self) -> str:
        return f"saga-{self.id}"
