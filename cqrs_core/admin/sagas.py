"""Saga instances: their state, timeline and errors; retry a failed compensation, compensate a stuck saga."""
from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from ..sagas import engine as saga_engine
from ..sagas.models import SagaInstance
from ..store import read_stream
from .base import StaffActionsAdmin, pretty


@admin.register(SagaInstance)
class SagaInstanceAdmin(StaffActionsAdmin):
    list_display = ("id", "saga_type", "status", "current_step", "reason", "started_at", "updated_at", "ended_at")
    list_filter = ("status", "saga_type")
    search_fields = ("=id", "=correlation_id", "reason")
    readonly_fields = ("id", "saga_type", "status", "current_step", "reason", "timeline", "data_pre", "results_pre",
                       "attempts_pre", "errors_pre", "compensated", "lease_owner", "lease_expires_at",
                       "deadline_at", "next_attempt_at", "correlation_id", "started_at", "updated_at", "ended_at")
    exclude = ("data", "results", "attempts", "errors", "version")
    actions = ("retry_sagas", "compensate_sagas")

    @admin.display(description="timeline")
    def timeline(self, obj: SagaInstance) -> str:
        """The saga's stream, one line per event: when, what, and its fields."""
        lines = [f"{r.recorded_at:%Y-%m-%d %H:%M:%S}  {r.event_type}  "
                 + json.dumps({k: v for k, v in r.data.items() if k != "saga_id"}, sort_keys=True)
                 for r in read_stream(obj.stream_id)]
        return format_html("<pre style='margin:0'>{}</pre>", "\n".join(lines))

    @admin.display(description="data")
    def data_pre(self, obj: SagaInstance) -> str:
        return pretty(obj.data)

    @admin.display(description="results")
    def results_pre(self, obj: SagaInstance) -> str:
        return pretty(obj.results)

    @admin.display(description="attempts")
    def attempts_pre(self, obj: SagaInstance) -> str:
        return pretty(obj.attempts)

    @admin.display(description="errors")
    def errors_pre(self, obj: SagaInstance) -> str:
        return pretty([{k: v for k, v in e.items() if k != "traceback"} for e in obj.errors])

    @admin.action(description="Retry the compensation of the selected failed sagas")
    def retry_sagas(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> None:
        self._each(request, queryset, saga_engine.retry_saga, "retried")

    @admin.action(description="Compensate the selected stuck sagas")
    def compensate_sagas(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> None:
        self._each(request, queryset, saga_engine.compensate_saga, "sent to compensation")

    def _each(self, request: HttpRequest, queryset: QuerySet[SagaInstance], action: Any, done: str) -> None:
        ok = 0
        for saga in queryset:
            try:
                action(saga.pk, by=request.user.get_username())
                ok += 1
            except saga_engine.SagaNotInState as exc:
                self.message_user(request, exc.detail, level=messages.WARNING)
        self.message_user(request, f"{ok} saga(s) {done}.")
