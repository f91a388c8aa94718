"""Executed trades in the admin: read-only, each linked to the ``TradeExecuted`` event that made it."""
from __future__ import annotations

from django.contrib import admin

from cqrs_core.admin import ReadModelAdmin
from cqrs_core.admin.base import choices_filter
from market.queries import known_pairs
from portfolio.state import portfolio_stream

from .models import Trade


@admin.register(Trade)
class TradeAdmin(ReadModelAdmin):
    list_display = ("executed_at", "user_id", "pair", "side", "amount", "price", "notional", "fee", "realised_pnl",
                    "source_event", "history")
    search_fields = ("=trade_id", "=user_id", "=client_trade_id")
    search_help_text = "A trade id, user id or client trade id."
    list_filter = (choices_filter("pair", "pair", known_pairs),)  # index trade_pair_time
    ordering = ("-position",)  # execution order on a unique index (none leads with executed_at)

    def stream_of(self, obj: Trade) -> str:
        return portfolio_stream(obj.user_id)
