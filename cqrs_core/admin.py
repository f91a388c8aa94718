"""Operator admin of the core: the event store read-only, projections and dead letters with actions."""
from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from . import projections as proj
from .models import CommandRecord, DeadLetter, ProjectionState, StoredEvent


def _pretty(value: Any) -> str:
    return format_html("<pre style='margin:0'>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete, for anyone: history is not edited from a browser."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(StoredEvent)
class StoredEventAdmin(ReadOnlyAdmin):
    list_display = ("position", "stream_id", "stream_version", "event_type", "recorded_at", "actor_id")
    list_filter = ("event_type",)
    search_fields = ("=stream_id", "=command_id", "=correlation_id", "=event_id")
    readonly_fields = ("position", "stream_id", "stream_version", "event_type", "schema_version", "data_pretty",
                       "event_id", "command_id", "correlation_id", "causation_id", "actor_id", "metadata_pretty",
                       "recorded_at")
    exclude = ("data", "metadata")
    show_full_result_count = False  # no COUNT(*) over millions of rows on every page
    list_per_page = 50

    @admin.display(description="data")
    def data_pretty(self, obj: StoredEvent) -> str:
        return _pretty(obj.data)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: StoredEvent) -> str:
        return _pretty(obj.metadata)


@admin.register(CommandRecord)
class CommandRecordAdmin(ReadOnlyAdmin):
    list_display = ("command_id", "command_type", "stream_id", "actor_id", "recorded_at")
    search_fields = ("=command_id", "=stream_id")
    list_filter = ("command_type",)
    show_full_result_count = False


@admin.register(ProjectionState)
class ProjectionStateAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "position", "events_applied", "last_applied_at", "last_error")
    actions = ("pause_projections", "resume_projections", "rebuild_projections")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Actions need a change permission we deny for the form; staff with view rights may act.
        return {name: self.get_action(name) for name in self.actions} if request.user.is_staff else {}

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProjectionState]:
        proj.ensure_states()
        return super().get_queryset(request)

    @admin.action(description="Pause the selected projections")
    def pause_projections(self, request: HttpRequest, queryset: QuerySet[ProjectionState]) -> None:
        for state in queryset:
            proj.pause(state.name)
        self.message_user(request, f"Paused {queryset.count()} projection(s).")

    @admin.action(description="Resume the selected projections")
    def resume_projections(self, request: HttpRequest, queryset: QuerySet[ProjectionState]) -> None:
        for state in queryset:
            proj.resume(state.name)
        self.message_user(request, f"Resumed {queryset.count()} projection(s).")

    @admin.action(description="Rebuild the selected projections from position 0")
    def rebuild_projections(self, request: HttpRequest, queryset: QuerySet[ProjectionState]) -> None:
        for state in queryset:
            try:
                report = proj.rebuild(state.name)
            except proj.RebuildAlreadyRunning as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, f"Rebuilt {state.name}: {report.events} events in {report.seconds:.1f}s.")


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("projection", "position", "event_type", "status", "attempts", "error", "resolved_by", "created_at")
    list_filter = ("status", "projection")
    search_fields = ("=stream_id", "error")
    readonly_fields = ("projection", "position", "stream_id", "event_type", "error", "traceback_pre", "attempts",
                       "status", "resolved_by", "resolved_at", "created_at")
    exclude = ("traceback",)
    actions = ("retry_letters", "skip_letters")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {name: self.get_action(name) for name in self.actions} if request.user.is_staff else {}

    @admin.display(description="traceback")
    def traceback_pre(self, obj: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", obj.traceback)

    @admin.action(description="Retry the selected dead letters")
    def retry_letters(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        ok = sum(proj.retry_dead_letter(letter.pk, by=request.user.get_username()) for letter in queryset)
        self.message_user(request, f"{ok} of {queryset.count()} dead letter(s) now apply.")

    @admin.action(description="Skip the selected dead letters")
    def skip_letters(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        for letter in queryset:
            proj.skip_dead_letter(letter.pk, by=request.user.get_username())
        self.message_user(request, f"Skipped {queryset.count()} dead letter(s).")


from .sagas import engine as saga_engine  # noqa: E402  (appended section: the saga admin)
from .sagas.models import SagaInstance  # noqa: E402
from .store import read_stream  # noqa: E402


@admin.register(SagaInstance)
class SagaInstanceAdmin(ReadOnlyAdmin):
    list_display = ("id", "saga_type", "status", "current_step", "reason", "started_at", "updated_at", "ended_at")
    list_filter = ("status", "saga_type")
    search_fields = ("=id", "=correlation_id", "reason")
    readonly_fields = ("id", "saga_type", "status", "current_step", "reason", "timeline", "data_pre", "results_pre",
                       "attempts_pre", "errors_pre", "compensated", "lease_owner", "lease_expires_at",
                       "deadline_at", "next_attempt_at", "correlation_id", "started_at", "updated_at", "ended_at")
    exclude = ("data", "results", "attempts", "errors", "version")
    actions = ("retry_sagas", "compensate_sagas")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {name: self.get_action(name) for name in self.actions} if request.user.is_staff else {}

    @admin.display(description="timeline")
    def timeline(self, obj: SagaInstance) -> str:
        """The saga's stream, one line per event: when, what, and its fields."""
        lines = [f"{r.recorded_at:%Y-%m-%d %H:%M:%S}  {r.event_type}  "
                 + json.dumps({k: v for k, v in r.data.items() if k != "saga_id"}, sort_keys=True)
                 for r in read_stream(obj.stream_id)]
        return format_html("<pre style='margin:0'>{}</pre>", "\n".join(lines))

    @admin.display(description="data")
    def data_pre(self, obj: SagaInstance) -> str:
        return _pretty(obj.data)

    @admin.display(description="results")
    def results_pre(self, obj: SagaInstance) -> str:
        return _pretty(obj.results)

    @admin.display(description="attempts")
    def attempts_pre(self, obj: SagaInstance) -> str:
        return _pretty(obj.attempts)

    @admin.display(description="errors")
    def errors_pre(self, obj: SagaInstance) -> str:
        return _pretty([{k: v for k, v in e.items() if k != "traceback"} for e in obj.errors])

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
