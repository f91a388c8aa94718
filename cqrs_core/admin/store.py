"""The event store and the command log: read-only, no COUNT(*) over millions of rows."""
from __future__ import annotations

from django.contrib import admin

from ..models import CommandRecord, StoredEvent
from .base import ReadOnlyAdmin, pretty


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
        return pretty(obj.data)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: StoredEvent) -> str:
        return pretty(obj.metadata)


@admin.register(CommandRecord)
class CommandRecordAdmin(ReadOnlyAdmin):
    list_display = ("command_id", "command_type", "stream_id", "actor_id", "recorded_at")
    search_fields = ("=command_id", "=stream_id")
    list_filter = ("command_type",)
    show_full_result_count = False
