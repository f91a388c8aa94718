"""Storage of the CQRS core: the event store, snapshots and the command log."""
from __future__ import annotations

from typing import Any, NoReturn

from django.db import models

from .errors import AppendOnlyViolation


class AppendOnlyQuerySet(models.QuerySet["StoredEvent"]):
    """Refuses bulk update and delete: stored events are facts."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyViolation("stored events cannot be updated")

    def delete(self) -> NoReturn:
        raise AppendOnlyViolation("stored events cannot be deleted")

    def _raw_delete(self, using: Any) -> NoReturn:
        raise AppendOnlyViolation("stored events cannot be deleted")

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("update_conflicts"):
            raise AppendOnlyViolation("stored events cannot be upserted")
        return super().bulk_create(objs, *args, **kwargs)


class StoredEvent(models.Model):
    """One event in the append-only store.

    ``position`` is the global order; ``(stream_id, stream_version)`` is unique and is the
    arbiter of optimistic concurrency. On PostgreSQL a trigger also refuses UPDATE, DELETE and
    TRUNCATE (migration 0002).
    """

    position = models.BigAutoField(primary_key=True)
    stream_id = models.CharField(max_length=200)
    stream_version = models.BigIntegerField()
    event_type = models.CharField(max_length=200)
    schema_version = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField()
    event_id = models.UUIDField(unique=True)
    command_id = models.UUIDField(null=True, blank=True)
    correlation_id = models.UUIDField(null=True, blank=True)
    causation_id = models.UUIDField(null=True, blank=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    recorded_at = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        db_table = "cqrs_event"
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["stream_id", "stream_version"], name="cqrs_event_stream_version_uniq"),
        ]
        indexes = [
            models.Index(fields=["event_type", "position"], name="cqrs_event_type_pos"),
            models.Index(fields=["command_id"], name="cqrs_event_command"),
            models.Index(fields=["correlation_id"], name="cqrs_event_correlation"),
            models.Index(fields=["recorded_at"], name="cqrs_event_recorded_at"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.stream_id}@{self.stream_version} {self.event_type}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyViolation("stored events cannot be updated")
        # A new instance with an existing position would otherwise UPDATE that row; insert or fail.
        super().save(*args, **{**kwargs, "force_insert": True})

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyViolation("stored events cannot be deleted")


class Snapshot(models.Model):
    """The folded state of a stream at a version, so loading a long stream reads only its tail."""

    stream_id = models.CharField(max_length=200, primary_key=True)
    stream_version = models.BigIntegerField()
    state_type = models.CharField(max_length=200)
    schema_version = models.PositiveSmallIntegerField()
    state = models.JSONField()
    taken_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "cqrs_snapshot"

    def __str__(self) -> str:
        return f"{self.stream_id}@{self.stream_version}"


class CommandRecord(models.Model):
    """The first successful outcome of a command id: replayed to duplicates, never re-executed."""

    command_id = models.UUIDField(primary_key=True)
    command_type = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    actor_id = models.BigIntegerField(null=True, blank=True)
    stream_id = models.CharField(max_length=200)
    result = models.JSONField(default=dict)
    recorded_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "cqrs_command"

    def __str__(self) -> str:
        return f"{self.command_type} {self.command_id}"


class ProjectionState(models.Model):
    """A projection's checkpoint and health: one row per projection, locked by its runner.

    ``position`` and the read-model rows move in the same transaction. ``gap_upto`` and
    ``gap_horizon`` are the gap-free reader's memory of a hole (see ``cqrs_core.store``).
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        PAUSED = "paused"
        REBUILDING = "rebuilding"
        FAILED = "failed"

    name = models.CharField(max_length=200, primary_key=True)
    position = models.BigIntegerField(default=0)
    gap_upto = models.BigIntegerField(null=True, blank=True)
    gap_horizon = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    last_error = models.TextField(blank=True, default="")
    generation = models.PositiveIntegerField(default=1)
    events_applied = models.BigIntegerField(default=0)
    last_applied_at = models.DateTimeField(null=True, blank=True)
    rebuild_target = models.BigIntegerField(null=True, blank=True)
    rebuild_started_at = models.DateTimeField(null=True, blank=True)
    rebuild_heartbeat_at = models.DateTimeField(null=True, blank=True)
    rebuild_cancel_requested = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "cqrs_projection"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.position} ({self.status})"


class DeadLetter(models.Model):
    """An event a projection could not apply after its retries, with the error and what was done."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RESOLVED = "resolved"
        SKIPPED = "skipped"

    projection = models.CharField(max_length=200)
    position = models.BigIntegerField()
    stream_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=200)
    error = models.TextField()
    traceback = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "cqrs_dead_letter"
        ordering = ["projection", "position"]
        constraints = [models.UniqueConstraint(fields=["projection", "position"], name="cqrs_dead_letter_uniq")]
        indexes = [models.Index(fields=["status", "projection"], name="cqrs_dead_letter_status")]

    def __str__(self) -> str:
        return f"{self.projection} #{self.position} ({self.status})"
