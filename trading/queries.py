"""Trading queries: one trade and the filtered, paginated list; owners see theirs, staff all."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from cqrs_core.queries import Query, QueryContext, query_handler
from portfolio.errors import PortfolioNotFound
from portfolio.queries import may_read

from .errors import TradeNotFound
from .models import Trade

TRADES = "trading.trades"
FIELDS = ("trade_id", "user_id", "client_trade_id", "pair", "side", "amount", "price", "notional", "fee",
          "realised_pnl", "executed_at", "position", "strategy_id")


@dataclass(frozen=True, kw_only=True)
class ListTrades(Query, name="trading.ListTrades"):
    """``user_id`` None lists everyone's trades (staff only)."""

    user_id: int | None
    pair: str | None = None
    side: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, kw_only=True)
class GetTrade(Query, name="trading.GetTrade"):
    trade_id: UUID


@query_handler(ListTrades, projections=[TRADES])
def list_trades(query: ListTrades, ctx: QueryContext) -> dict[str, Any]:
    """Newest first; ``since`` inclusive, ``until`` exclusive; another user's list is 404 unless staff."""
    if not may_read(ctx.actor, query.user_id):
        raise PortfolioNotFound(user_id=query.user_id)
    rows = Trade.objects.all()
    if query.user_id is not None:
        rows = rows.filter(user_id=query.user_id)
    if query.pair is not None:
        rows = rows.filter(pair=query.pair)
    if query.side is not None:
        rows = rows.filter(side=query.side)
    if query.since is not None:
        rows = rows.filter(executed_at__gte=query.since)
    if query.until is not None:
        rows = rows.filter(executed_at__lt=query.until)
    return page_of(rows, FIELDS, limit=query.limit, offset=query.offset)


def page_of(rows: QuerySet[Any], fields: tuple[str, ...], *, limit: int, offset: int) -> dict[str, Any]:
    """One page of ``rows`` as plain dicts, with the total count: the shape of every trading list."""
    page = list(rows.values(*fields)[offset:offset + limit])
    return {"count": rows.count(), "limit": limit, "offset": offset, "results": page}


@query_handler(GetTrade, projections=[TRADES])
def get_trade(query: GetTrade, ctx: QueryContext) -> dict[str, Any]:
    """One trade; someone else's is not found (staff see all)."""
    row = Trade.objects.filter(pk=query.trade_id).values(*FIELDS).first()
    if row is None or not may_read(ctx.actor, row["user_id"]):
        raise TradeNotFound(trade_id=str(query.trade_id))
    return row
