"""Trades, strategies and their signals in the admin: read-only, each linked to the events that made it."""
from __future__ import annotations

from django.contrib import admin

from cqrs_core.admin import ReadModelAdmin
from cqrs_core.admin.base import choices_filter
from market.queries import known_pairs
from portfolio.state import portfolio_stream

from .models import Strategy, StrategySignal, Trade
from .strategies import strategy_stream


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


@admin.register(Strategy)
class StrategyAdmin(ReadModelAdmin):
    list_display = ("name", "owner_id", "risk_profile", "status", "signals_accepted", "signals_rejected",
                    "updated_at", "version", "history", "source_event")
    search_fields = ("=strategy_id", "=owner_id")
    search_help_text = "A strategy id or owner (user) id."
    ordering = ("-position",)

    def stream_of(self, obj: Strategy) -> str:
        return strategy_stream(obj.strategy_id)


@admin.register(StrategySignal)
class StrategySignalAdmin(ReadModelAdmin):
    list_display = ("decided_at", "strategy_id", "user_id", "pair", "side", "amount", "price", "outcome", "reason",
                    "source_event", "history")
    search_fields = ("=signal_id", "=strategy_id", "=user_id", "=trade_id")
    search_help_text = "A signal, strategy, user or trade id."
    ordering = ("-position",)

    def stream_of(self, obj: StrategySignal) -> str:
        return portfolio_stream(obj.user_id)  # signals are decided on the owner's portfolio stream
