"""Portfolio queries: the portfolio with values at latest market prices, owners and staff only."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cqrs_core.commands import Actor
from cqrs_core.queries import CachePolicy, Query, QueryContext, query_handler

from . import market
from .errors import PortfolioNotFound
from .models import Portfolio, Position
from .projections import portfolio_scope
from .rules import current_rules

PERCENT_PLACES = Decimal("1e-4")
MONEY_PLACES = Decimal("1e-18")


@dataclass(frozen=True, kw_only=True)
class GetPortfolio(Query, name="portfolio.GetPortfolio"):
    user_id: int


def may_read(actor: Actor, user_id: int | None) -> bool:
    """Owners read their own rows; staff and the system read anyone's."""
    return actor.is_system or actor.is_staff or (user_id is not None and actor.user_id == user_id)


@query_handler(GetPortfolio, projections=["portfolio.portfolios"],
               cache=CachePolicy(ttl=300, stale_while_revalidate=60),
               scope=lambda q, actor: portfolio_scope(q.user_id))
def get_portfolio(query: GetPortfolio, ctx: QueryContext) -> dict[str, Any]:
    """Cash, reserved cash, yield principal, positions at latest prices, total value (all of them) and allocation."""
    if not may_read(ctx.actor, query.user_id):
        raise PortfolioNotFound(user_id=query.user_id)
    row = Portfolio.objects.filter(pk=query.user_id).first()
    if row is None and ctx.actor.user_id != query.user_id:
        raise PortfolioNotFound(user_id=query.user_id)
    row = row or Portfolio(user_id=query.user_id)
    positions = list(Position.objects.filter(portfolio_id=row.user_id)) if row.position else []
    return valued(row, positions, market.snapshot())


def valued(row: Portfolio, positions: list[Position], snap: market.MarketSnapshot) -> dict[str, Any]:
    """The portfolio as plain data, holdings valued at ``snap`` (average cost where it has no price)."""
    lines = [_line(p, snap.price_of(p.asset)) for p in positions if p.quantity or p.realised_pnl]
    total = row.cash + row.reserved + row.yield_principal + sum((line["market_value"] for line in lines), Decimal(0))
    allocation = {"USD": _percent(row.cash, total)}
    allocation.update({line["asset"]: _percent(line["market_value"], total) for line in lines if line["quantity"]})
    allocation.update({key: _percent(value, total) for key, value in
                       (("USD_RESERVED", row.reserved), ("YIELD", row.yield_principal)) if value})
    limit = row.max_position_usd if row.max_position_usd is not None else current_rules().default_max_position_usd
    return {
        "user_id": row.user_id, "cash": row.cash, "reserved": row.reserved, "yield_principal": row.yield_principal,
        "positions": lines, "total_value": total,
        "realised_pnl": row.realised_pnl, "unrealised_pnl": sum((line["unrealised_pnl"] for line in lines), Decimal(0)),
        "fees_paid": row.fees_paid, "max_position_usd": limit, "allocation": allocation,
        "version": row.version, "position": row.position,
    }


def _line(position: Position, price: Decimal | None) -> dict[str, Any]:
    mark = price if price is not None else position.average_cost
    value = (position.quantity * mark).quantize(MONEY_PLACES)
    return {
        "asset": position.asset, "pair": market.pair_of(position.asset), "quantity": position.quantity,
        "average_cost": position.average_cost, "market_price": price, "market_value": value,
        "unrealised_pnl": (value - position.quantity * position.average_cost).quantize(MONEY_PLACES),
        "realised_pnl": position.realised_pnl,
    }


def _percent(part: Decimal, total: Decimal) -> Decimal:
    return (part * 100 / total).quantize(PERCENT_PLACES) if total else Decimal(0)
