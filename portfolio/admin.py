"""Portfolios and positions in the admin: read-only, linked to their stream; risk limits set through the bus."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from cqrs_core.admin import OperatorCommandForm, OperatorCommandsAdmin, ReadModelAdmin
from cqrs_core.commands import Command

from .commands import SetRiskLimits
from .models import Portfolio, Position, Rebalance, RebalanceTimelineEntry
from .state import portfolio_stream


class SetRiskLimitsForm(OperatorCommandForm):
    title = "Set risk limits"

    max_position_usd = forms.DecimalField(max_digits=38, decimal_places=18, label="Maximum position (USD)",
                                          help_text="The largest position this user may hold, in USD.")

    @classmethod
    def initial_for(cls, obj: Portfolio) -> dict[str, Any]:
        return {"max_position_usd": obj.max_position_usd}

    def command(self) -> Command:
        return SetRiskLimits(user_id=self.obj.user_id, max_position_usd=self.cleaned_data["max_position_usd"])


class PositionInline(admin.TabularInline):
    model = Position
    fields = readonly_fields = ("asset", "quantity", "average_cost", "realised_pnl")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def users_named(term: str) -> list[int]:
    """Ids of the users whose username is ``term`` (the read models hold ids, not names)."""
    return list(get_user_model().objects.filter(username__iexact=term.strip()).values_list("pk", flat=True)[:10])


@admin.register(Portfolio)
class PortfolioAdmin(OperatorCommandsAdmin, ReadModelAdmin):
    list_display = ("user_id", "username", "cash", "realised_pnl", "fees_paid", "max_position_usd", "version",
                    "history", "source_event", "command_links")
    search_fields = ("=user_id",)
    search_help_text = "A user id or username."
    inlines = (PositionInline,)
    operator_commands = {"risk-limits": SetRiskLimitsForm}

    def stream_of(self, obj: Portfolio) -> str:
        return portfolio_stream(obj.user_id)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Portfolio]:
        names = get_user_model().objects.filter(pk=OuterRef("user_id")).values("username")[:1]
        return super().get_queryset(request).annotate(username=Subquery(names))

    @admin.display(description="user")
    def username(self, obj: Portfolio) -> str:
        return getattr(obj, "username", None) or "-"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Portfolio],
                           search_term: str) -> tuple[QuerySet[Portfolio], bool]:
        if search_term and not search_term.strip().isdigit():
            return queryset.filter(user_id__in=users_named(search_term)), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(Position)
class PositionAdmin(ReadModelAdmin):
    list_display = ("portfolio", "asset", "quantity", "average_cost", "realised_pnl", "history")
    list_select_related = ("portfolio",)
    search_fields = ("=portfolio__user_id",)
    search_help_text = "A user id."

    def stream_of(self, obj: Position) -> str:
        return portfolio_stream(obj.portfolio_id)

    def stream_data_of(self, obj: Position) -> dict[str, str]:
        return {"asset": obj.asset}


class RebalanceTimelineInline(admin.TabularInline):
    model = RebalanceTimelineEntry
    fields = readonly_fields = ("position", "at", "kind", "step", "pair", "side", "amount", "price", "fee", "detail")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Rebalance)
class RebalanceAdmin(ReadModelAdmin):
    list_display = ("planned_at", "user_id", "status", "trade_count", "total_value", "estimated_cost", "reason",
                    "history", "source_event")
    search_fields = ("=rebalance_id", "=user_id", "=saga_id")
    search_help_text = "A rebalance, user or saga id."
    ordering = ("-position",)
    inlines = (RebalanceTimelineInline,)

    def stream_of(self, obj: Rebalance) -> str:
        return portfolio_stream(obj.user_id)

    def stream_data_of(self, obj: Rebalance) -> dict[str, str]:
        return {"rebalance_id": str(obj.rebalance_id)}
