"""What every core admin shares: read-only model admins, actions for staff, pretty JSON, read-model admins."""
from __future__ import annotations

import json
from functools import cached_property
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from .streams import event_link, stream_link


def pretty(value: Any) -> str:
    return format_html("<pre style='margin:0'>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


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


class StaffActionsAdmin(ReadOnlyAdmin):
    """Read-only, with this admin's own ``actions`` for staff (they need no change permission)."""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {name: self.get_action(name) for name in self.actions} if request.user.is_staff else {}


# --- big tables: bounded counts, indexed filters ----------------------------------------------
class CappedCountPaginator(Paginator):
    """Counts at most ``cap`` rows (``SELECT COUNT(*) FROM (... LIMIT cap)``), never a whole big table.

    The changelist then offers ``cap / per_page`` pages and says "10000" when there are more;
    filters and searches narrow a big table down to what an operator reads.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.cap].count()


def leads_an_index(model: type[models.Model], name: str) -> bool:
    """True when column ``name`` is the first column of an index of ``model`` (so a filter on it is a seek)."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    if getattr(field, "primary_key", False) or getattr(field, "unique", False) or getattr(field, "db_index", False):
        return True
    leading = [index.fields[0].lstrip("-") for index in model._meta.indexes if index.fields]
    leading += [c.fields[0] for c in model._meta.constraints if getattr(c, "fields", None)]
    leading += [fields[0] for fields in model._meta.unique_together]
    return name in leading or getattr(field, "attname", None) in leading


def choices_filter(field: str, title: str, choices: Callable[[], Iterable[str]]) -> type[admin.SimpleListFilter]:
    """A list filter on ``field`` whose choices come from ``choices()`` (a registry), not ``SELECT DISTINCT``.

    Django's default field filter reads every distinct value from the table on each page; on a
    big table that is a scan of the whole index. Use it with an indexed ``field``.
    """

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = filter_field = field

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(value, value) for value in choices()]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    ChoicesFilter.title = title
    return ChoicesFilter


class IndexedFiltersAdmin(admin.ModelAdmin):
    """Fails ``manage.py check`` (``ledgerline.E001``) when a field ``list_filter`` has no index leading with it.

    Custom ``SimpleListFilter`` classes are not inspected (they must filter on indexed columns themselves),
    except those made by :func:`choices_filter`, whose field is checked too.
    """

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        for item in self.list_filter:
            name = item[0] if isinstance(item, tuple | list) else getattr(item, "filter_field", item)
            if isinstance(name, str) and not leads_an_index(self.model, name):
                errors.append(checks.Error(
                    f"list_filter {name!r} of {type(self).__name__} has no index leading with it",
                    hint=f"Add an index on {self.model._meta.label}.{name} or drop the filter.",
                    obj=type(self), id="ledgerline.E001"))
        return errors


class ReadModelAdmin(IndexedFiltersAdmin, ReadOnlyAdmin):
    """Read-only admin of a projection's read model, with links to the events that produced each row.

    Projections alone write read models, so nobody adds, changes or deletes rows here (403, no
    delete action); the changelist counts at most :class:`CappedCountPaginator` rows, and every
    field ``list_filter`` must lead an index (checked by ``manage.py check``). Two columns come
    for free, usable in ``list_display`` and shown on every row's page:

    * ``history``: the row's stream in the stream history page, from :meth:`stream_of` (and
      :meth:`stream_data_of` to keep only the events whose data match, e.g. one asset);
    * ``source_event``: the stored event at the row's ``position`` field (the last event a
      projection applied, or the one event that made the row), from :meth:`event_position_of`.

    Registering another read model takes a few lines::

        @admin.register(Strategy)
        class StrategyAdmin(ReadModelAdmin):
            list_display = ("strategy_id", "user_id", "status", "history", "source_event")
            search_fields = ("=strategy_id", "=user_id")
            list_filter = ("status",)  # needs an index leading with status

            def stream_of(self, obj: Strategy) -> str:
                return f"strategy-{obj.strategy_id}"

    Operator commands on its rows: mix in :class:`cqrs_core.admin.commands.OperatorCommandsAdmin`.
    """

    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    link_fields = ("history", "source_event")

    def stream_of(self, obj: Any) -> str | None:
        """The stream whose events made this row (None: no history link)."""
        return None

    def stream_data_of(self, obj: Any) -> dict[str, str]:
        """Keep only the stream's events whose data hold these string values (default: all events)."""
        return {}

    def event_position_of(self, obj: Any) -> int | None:
        """The global position of the event behind this row: its ``position`` field when it has one."""
        value = getattr(obj, "position", None)
        return value if isinstance(value, int) else None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*super().get_readonly_fields(request, obj), *self.link_fields)

    @admin.display(description="events")
    def history(self, obj: Any) -> str:
        stream = self.stream_of(obj)
        if not stream:
            return "-"
        data = self.stream_data_of(obj)
        return stream_link(stream, f"{stream} ({', '.join(data.values())})" if data else stream, **data)

    @admin.display(description="event")
    def source_event(self, obj: Any) -> str:
        return event_link(self.event_position_of(obj))
