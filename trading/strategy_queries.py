"""Strategy queries: the list, one strategy with its trades, signals and P&L, and its signals; owners or staff."""
from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import Count

from cqrs_core.commands import MONEY_CONTEXT
from cqrs_core.queries import Query, QueryContext, query_handler
from portfolio import market
from portfolio.errors import PortfolioNotFound
from portfolio.queries import may_read

from .commands import money
from .errors import StrategyNotFound
from .models import Strategy, StrategyPosition, StrategySignal, Trade
from .queries import FIELDS as TRADE_FIELDS, TRADES, page_of

STRATEGIES = "trading.strategies"
STRATEGY_FIELDS = ("strategy_id", "owner_id", "name", "rules", "risk_profile", "status", "signals_accepted",
                   "signals_rejected", "created_at", "updated_at", "archived_at", "version", "position")
SIGNAL_FIELDS = ("signal_id", "strategy_id", "outcome", "reason", "detail", "context", "trade_id", "pair", "side",
                 "amount", "price", "confidence", "client_trade_id", "decided_at", "position")
#: How many of its latest trades and signals a strategy's detail shows (the lists page through all).
DETAIL_TRADES, DETAIL_SIGNALS = 50, 10


@dataclass(frozen=True, kw_only=True)
class ListStrategies(Query, name="trading.ListStrategies"):
    """``user_id`` None lists everyone's strategies (staff only)."""

    user_id: int | None
    status: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, kw_only=True)
class GetStrategy(Query, name="trading.GetStrategy"):
    strategy_id: UUID


@dataclass(frozen=True, kw_only=True)
class ListStrategySignals(Query, name="trading.ListStrategySignals"):
    strategy_id: UUID
    outcome: str | None = None
    limit: int = 50
    offset: int = 0


@query_handler(ListStrategies, projections=[STRATEGIES])
def list_strategies(query: ListStrategies, ctx: QueryContext) -> dict[str, Any]:
    """Newest first; another user's list is 404 unless staff."""
    if not may_read(ctx.actor, query.user_id):
        raise PortfolioNotFound(user_id=query.user_id)
    rows = Strategy.objects.all()
    if query.user_id is not None:
        rows = rows.filter(owner_id=query.user_id)
    if query.status is not None:
        rows = rows.filter(status=query.status)
    return page_of(rows, STRATEGY_FIELDS, limit=query.limit, offset=query.offset)


def _readable(strategy_id: UUID, ctx: QueryContext) -> dict[str, Any]:
    row = Strategy.objects.filter(pk=strategy_id).values(*STRATEGY_FIELDS).first()
    if row is None or not may_read(ctx.actor, row["owner_id"]):
        raise StrategyNotFound(strategy_id=str(strategy_id))
    return row


@query_handler(GetStrategy, projections=[STRATEGIES, TRADES])
def get_strategy(query: GetStrategy, ctx: QueryContext) -> dict[str, Any]:
    """The strategy, its latest trades, a summary of its signals and its P&L at latest prices."""
    row = _readable(query.strategy_id, ctx)
    trades = Trade.objects.filter(strategy_id=query.strategy_id)
    signals = StrategySignal.objects.filter(strategy_id=query.strategy_id)
    reasons = signals.filter(outcome=StrategySignal.Outcome.REJECTED).order_by().values_list("reason").annotate(
        n=Count("pk"))
    return {
        **row,
        "pnl": strategy_pnl(list(StrategyPosition.objects.filter(strategy_id=query.strategy_id)), market.snapshot()),
        "signals": {"accepted": row["signals_accepted"], "rejected": row["signals_rejected"],
                    "rejected_by_reason": dict(sorted(reasons)),
                    "latest": list(signals.values(*SIGNAL_FIELDS)[:DETAIL_SIGNALS])},
        "trades": {"count": trades.count(), "latest": list(trades.values(*TRADE_FIELDS)[:DETAIL_TRADES])},
    }


def strategy_pnl(books: list[StrategyPosition], snap: market.MarketSnapshot) -> dict[str, Any]:
    """Realised, unrealised (at ``snap``, average cost where it has no price), fees and net, per asset and in all."""
    with decimal.localcontext(MONEY_CONTEXT):
        assets = [_asset_pnl(book, snap.price_of(book.asset)) for book in books]
        realised = sum((a["realised_pnl"] for a in assets), Decimal(0))
        unrealised = sum((a["unrealised_pnl"] for a in assets), Decimal(0))
        fees = sum((a["fees"] for a in assets), Decimal(0))
        return {"realised_pnl": realised, "unrealised_pnl": unrealised, "fees": fees,
                "net_pnl": realised + unrealised - fees, "assets": assets}


def _asset_pnl(book: StrategyPosition, price: Decimal | None) -> dict[str, Any]:
    mark = price if price is not None else book.average_cost
    value = money(book.quantity * mark)
    return {
        "asset": book.asset, "pair": market.pair_of(book.asset), "quantity": book.quantity,
        "average_cost": book.average_cost, "market_price": price, "market_value": value,
        "unrealised_pnl": money(value - book.quantity * book.average_cost), "realised_pnl": book.realised_pnl,
        "fees": book.fees, "bought": book.bought, "sold": book.sold, "unmatched_sold": book.unmatched_sold,
    }


@query_handler(ListStrategySignals, projections=[STRATEGIES])
def list_strategy_signals(query: ListStrategySignals, ctx: QueryContext) -> dict[str, Any]:
    """A strategy's signals, newest first, optionally only one outcome."""
    _readable(query.strategy_id, ctx)
    rows = StrategySignal.objects.filter(strategy_id=query.strategy_id)
    if query.outcome is not None:
        rows = rows.filter(outcome=query.outcome)
    return page_of(rows, SIGNAL_FIELDS, limit=query.limit, offset=query.offset)
