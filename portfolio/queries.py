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
from .performance import extras_of, performance_of
from .projections import portfolio_scope
from .rules import current_rules

PERCENT_PLACES = Decimal("1e-4")
MONEY_PLACES = Decimal("1e-18")


@dataclass(frozen=True, kw_only=True)
class GetPortfolio(Query, name="portfolio.GetPortfolio"):
    """``include``: any of ``metrics`` (the performance figures) and ``history`` (value points), sorted."""

    user_id: int
    include: tuple[str, ...] = ()


def may_read(actor: Actor, user_id: int | None) -> bool:
    """Owners read their own rows; staff and the system read anyone's."""
    return actor.is_system or actor.is_staff or (user_id is not None and actor.user_id == user_id)


@query_handler(GetPortfolio, projections=["portfolio.portfolios"],
               cache=CachePolicy(ttl=300, stale_while_revalidate=60),
               scope=lambda q, actor: portfolio_scope(q.user_id))
def get_portfolio(query: GetPortfolio, ctx: QueryContext) -> dict[str, Any]:
    """Cash, reserved cash, yield principal, positions at latest prices, total value (all of them) and allocation."""
    row = readable_portfolio(query.user_id, ctx.actor)
    positions = list(Position.objects.filter(portfolio_id=row.user_id)) if row.position else []
    data = valued(row, positions, market.snapshot())
    return {**data, **extras_of(row.user_id, ctx.now, query.include)} if query.include else data


def readable_portfolio(user_id: int, actor: Actor) -> Portfolio:
    """The user's portfolio row if ``actor`` may read it (an owner's unopened one is empty); else 404."""
    if not may_read(actor, user_id):
        raise PortfolioNotFound(user_id=user_id)
    row = Portfolio.objects.filter(pk=user_id).first()
    if row is None and actor.user_id != user_id:
        raise PortfolioNotFound(user_id=user_id)
    return row or Portfolio(user_id=user_id)


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


# --- performance and the optimised portfolio -----------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class GetPortfolioPerformance(Query, name="portfolio.GetPortfolioPerformance"):
    user_id: int


@query_handler(GetPortfolioPerformance, projections=["portfolio.portfolios"], cache=CachePolicy(ttl=60),
               scope=lambda q, actor: portfolio_scope(q.user_id))
def get_portfolio_performance(query: GetPortfolioPerformance, ctx: QueryContext) -> dict[str, Any]:
    """Time-weighted returns (1d/7d/30d), volatility and maximum drawdown (see ``portfolio.analytics``).

    Cached in the portfolio's scope, so the owner's next event invalidates it; the short TTL
    bounds how long new market closes go unseen.
    """
    row = readable_portfolio(query.user_id, ctx.actor)
    return {"user_id": row.user_id, **performance_of(row.user_id, ctx.now), "position": row.position}


@dataclass(frozen=True, kw_only=True)
class GetOptimizedPortfolio(Query, name="portfolio.GetOptimizedPortfolio"):
    user_id: int


@query_handler(GetOptimizedPortfolio, projections=["portfolio.portfolios"])
def get_optimized_portfolio(query: GetOptimizedPortfolio, ctx: QueryContext) -> dict[str, Any]:
    """A fresh optimisation (``status: ready``), or ``status: computing`` once one is under way.

    Not cached by the bus: the ``portfolio_optimized`` row is the cache (see ``portfolio.optimized``).
    """
    from .optimized import optimized_or_started

    row = readable_portfolio(query.user_id, ctx.actor)
    return optimized_or_started(row, ctx.now)
