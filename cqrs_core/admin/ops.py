"""Reconciliation runs and refused-command counts: read-only records for the operator."""
from __future__ import annotations

from django.contrib import admin

from ..ops_models import CommandFailureMinute, ReconciliationRun
from .base import ReadOnlyAdmin, pretty


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("check_name", "ok", "repaired", "started_at", "finished_at")
    list_filter = ("ok", "repaired", "check_name")
    readonly_fields = ("check_name", "ok", "repaired", "details_pre", "started_at", "finished_at")
    exclude = ("details",)
    date_hierarchy = "started_at"

    @admin.display(description="details")
    def details_pre(self, obj: ReconciliationRun) -> str:
        return pretty(obj.details)


@admin.register(CommandFailureMinute)
class CommandFailureMinuteAdmin(ReadOnlyAdmin):
    list_display = ("minute", "command_type", "code", "count", "total_ms")
    list_filter = ("code", "command_type")
    date_hierarchy = "minute"
