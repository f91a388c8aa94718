"""The event store and the command log: read-only, no COUNT(*) over millions of rows, indexed filters.

Every filter of the event list is a seek on an index: stream (``(stream_id, stream_version)``),
context and event type (``(event_type, position)``, their choices from the registered event
classes rather than a ``SELECT DISTINCT`` over the table), and date (``recorded_at``).
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from ..commands import _BY_NAME
from ..events import _EVENT_TYPES
from ..models import CommandRecord, StoredEvent
from .base import CappedCountPaginator, IndexedFiltersAdmin, ReadOnlyAdmin, choices_filter, pretty
from .streams import stream_link


def registered_types() -> list[str]:
    return sorted(_EVENT_TYPES)


class StreamFilter(admin.SimpleListFilter):
    """One stream, given in the URL (``?stream=portfolio-7``; the stream links set it)."""

    title, parameter_name = "stream", "stream"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[StoredEvent]) -> QuerySet[StoredEvent]:
        return queryset.filter(stream_id=self.value()) if self.value() else queryset


class ContextFilter(admin.SimpleListFilter):
    """The bounded context: the part of the stored event type before the dot."""

    title, parameter_name = "context", "context"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(c, c) for c in sorted({t.split(".", 1)[0] for t in registered_types()})]

    def queryset(self, request: HttpRequest, queryset: QuerySet[StoredEvent]) -> QuerySet[StoredEvent]:
        if not self.value():
            return queryset
        return queryset.filter(event_type__in=[t for t in registered_types() if t.split(".", 1)[0] == self.value()])


class EventTypeFilter(admin.SimpleListFilter):
    title, parameter_name = "event type", "event_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        context = request.GET.get(ContextFilter.parameter_name)
        return [(t, t) for t in registered_types() if not context or t.startswith(f"{context}.")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[StoredEvent]) -> QuerySet[StoredEvent]:
        return queryset.filter(event_type=self.value()) if self.value() else queryset


@admin.register(StoredEvent)
class StoredEventAdmin(IndexedFiltersAdmin, ReadOnlyAdmin):
    list_display = ("position", "stream", "stream_version", "event_type", "recorded_at", "actor_id")
    list_filter = (StreamFilter, ContextFilter, EventTypeFilter, ("recorded_at", admin.DateFieldListFilter))
    search_fields = ("=stream_id", "=command_id", "=correlation_id", "=event_id")
    readonly_fields = ("position", "stream_history", "stream_version", "event_type", "schema_version", "data_pretty",
                       "event_id", "command", "correlation", "causation_id", "actor_id", "metadata_pretty",
                       "recorded_at")
    exclude = ("data", "metadata", "stream_id", "command_id", "correlation_id")
    ordering = ("-position",)
    paginator = CappedCountPaginator
    show_full_result_count = False  # with the capped paginator: no COUNT(*) over millions of rows
    list_per_page = 50

    @admin.display(description="stream", ordering="stream_id")
    def stream(self, obj: StoredEvent) -> str:
        return stream_link(obj.stream_id, obj.stream_id, at=obj.stream_version)

    @admin.display(description="stream")
    def stream_history(self, obj: StoredEvent) -> str:
        return format_html("{} · {}", obj.stream_id,
                           stream_link(obj.stream_id, "the stream's full history", at=obj.stream_version))

    @admin.display(description="command id")
    def command(self, obj: StoredEvent) -> str:
        return self._search_link(obj.command_id, "events of this command")

    @admin.display(description="correlation id")
    def correlation(self, obj: StoredEvent) -> str:
        return self._search_link(obj.correlation_id, "events of this correlation")

    def _search_link(self, value: Any, text: str) -> str:
        if value is None:
            return "-"
        url = reverse("admin:cqrs_core_storedevent_changelist") + "?" + urlencode({"q": str(value)})
        return format_html('{} · <a href="{}">{}</a>', value, url, text)

    @admin.display(description="data")
    def data_pretty(self, obj: StoredEvent) -> str:
        return pretty(obj.data)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: StoredEvent) -> str:
        return pretty(obj.metadata)


def registered_commands() -> list[str]:
    return sorted(_BY_NAME)


@admin.register(CommandRecord)
class CommandRecordAdmin(ReadOnlyAdmin):
    list_display = ("command_id", "command_type", "stream_id", "actor_id", "recorded_at")
    search_fields = ("=command_id", "=stream_id")
    # Choices from the registered commands, not SELECT DISTINCT over the log (command_type has no index yet).
    list_filter = (choices_filter("command_type", "command type", registered_commands),)
    ordering = ("-recorded_at",)
    paginator = CappedCountPaginator
    show_full_result_count = False
