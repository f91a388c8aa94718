"""Operator records of the core: refused commands per minute and reconciliation runs.

Kept out of ``cqrs_core.models`` (the store's own module); imported by ``CqrsCoreConfig.ready``
so the models register under the ``cqrs_core`` app.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

logger = logging.getLogger("ledgerline.ops")

#: Outcomes of ``command_bus.observers`` that are not failures (counted from ``CommandRecord``).
SUCCESS_OUTCOMES = frozenset({"ok", "replayed"})


class CommandFailureMinute(models.Model):
    """How many commands of one type failed with one code in one minute: bounded, one row per key."""

    minute = models.DateTimeField()
    command_type = models.CharField(max_length=200)
    code = models.CharField(max_length=100)
    count = models.PositiveIntegerField(default=0)
    total_ms = models.FloatField(default=0.0)  # timing, not money

    class Meta:
        app_label = "cqrs_core"
        db_table = "cqrs_command_failure_minute"
        ordering = ["-minute"]
        constraints = [models.UniqueConstraint(fields=["minute", "command_type", "code"],
                                               name="cqrs_command_failure_minute_uniq")]
        indexes = [models.Index(fields=["minute"], name="cqrs_command_failure_at")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.command_type} {self.code} x{self.count}"


def record_command_outcome(command_type: str, outcome: str, elapsed_ms: float) -> None:
    """Command-bus observer: count a refusal or an error in its minute; successes are not written.

    Never raises: a failure to count must not turn into a failed command (the bus calls
    observers after the command's own transaction is settled).
    """
    if outcome in SUCCESS_OUTCOMES:
        return
    minute = timezone.now().replace(second=0, microsecond=0)
    try:
        _bump(minute, command_type, outcome[:100], elapsed_ms)
    except Exception:  # counting is best effort; the log line of the bus is the record
        logger.warning("could not count command outcome %s %s", command_type, outcome, exc_info=True)


def _bump(minute: dt.datetime, command_type: str, code: str, elapsed_ms: float) -> None:
    key = {"minute": minute, "command_type": command_type, "code": code}
    with transaction.atomic():
        if CommandFailureMinute.objects.filter(**key).update(count=F("count") + 1,
                                                             total_ms=F("total_ms") + elapsed_ms):
            return
        try:
            with transaction.atomic():
                CommandFailureMinute.objects.create(**key, count=1, total_ms=elapsed_ms)
        except IntegrityError:  # another process created the minute's row first
            CommandFailureMinute.objects.filter(**key).update(count=F("count") + 1, total_ms=F("total_ms") + elapsed_ms)


class ReconciliationRun(models.Model):
    """One run of one reconciliation check: its verdict, what it found and whether it repaired."""

    check_name = models.CharField(max_length=200)
    ok = models.BooleanField()
    details = models.JSONField(default=dict, blank=True)
    repaired = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        app_label = "cqrs_core"
        db_table = "cqrs_reconciliation_run"
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["check_name", "started_at"], name="cqrs_reconciliation_check"),
                   models.Index(fields=["ok", "started_at"], name="cqrs_reconciliation_ok")]

    def __str__(self) -> str:
        return f"{self.check_name} {'ok' if self.ok else 'FAILED'} at {self.started_at:%Y-%m-%d %H:%M:%S}"


def prune(*, keep_days: int = 14) -> int:
    """Delete failure counts and passing runs older than ``keep_days``; failed runs are kept."""
    cutoff = timezone.now() - dt.timedelta(days=keep_days)
    removed, _ = CommandFailureMinute.objects.filter(minute__lt=cutoff).delete()
    runs, _ = ReconciliationRun.objects.filter(ok=True, started_at__lt=cutoff).delete()
    return removed + runs
