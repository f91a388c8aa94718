"""Projection ``portfolio.portfolios``: cash, limits and positions per user, from the portfolio stream."""
from __future__ import annotations

from decimal import Decimal

from cqrs_core.events import Event, RecordedEvent
from cqrs_core.projections import projection
from cqrs_core.queries import invalidate
from trading.events import BUY, TradeExecuted
from yield_farming.events import YieldPositionClosed, YieldPositionOpened

from .events import FundsDeposited, FundsReserved, FundsWithdrawn, PortfolioOpened, ReservationReleased, RiskLimitsSet
from .models import Portfolio, Position


def portfolio_scope(user_id: int) -> str:
    """The cache scope of everything read from one user's portfolio rows."""
    return f"portfolio:{user_id}"


@projection("portfolio.portfolios", events=[PortfolioOpened, FundsDeposited, FundsWithdrawn, RiskLimitsSet,
                                            TradeExecuted, FundsReserved, ReservationReleased, YieldPositionOpened,
                                            YieldPositionClosed], read_models=[Portfolio, Position])
def project_portfolios(event: Event, recorded: RecordedEvent) -> None:
    match event:
        case PortfolioOpened():
            row = Portfolio(user_id=event.user_id)
        case FundsDeposited():
            row = Portfolio.objects.get(pk=event.user_id)
            row.cash += event.amount
        case FundsWithdrawn():
            row = Portfolio.objects.get(pk=event.user_id)
            row.cash -= event.amount
        case RiskLimitsSet():
            row = Portfolio.objects.get(pk=event.user_id)
            row.max_position_usd = event.max_position_usd
        case TradeExecuted():
            row = Portfolio.objects.get(pk=event.user_id)
            _apply_trade(row, event)
        case FundsReserved() | ReservationReleased() | YieldPositionOpened() | YieldPositionClosed():
            row = Portfolio.objects.get(pk=event.user_id)
            _apply_yield(row, event)
        case _:
            return
    row.version, row.position = recorded.stream_version, recorded.position
    row.save()
    invalidate(portfolio_scope(event.user_id))


def _apply_trade(row: Portfolio, event: TradeExecuted) -> None:
    """Cash, fees and the position, with the average cost and realised P&L the event fixed."""
    sign = 1 if event.side == BUY else -1
    row.cash += -sign * event.notional - event.fee
    row.fees_paid += event.fee
    row.realised_pnl += event.realised_pnl
    position, _ = Position.objects.get_or_create(
        portfolio=row, asset=event.asset,
        defaults={"quantity": Decimal(0), "average_cost": Decimal(0)},
    )
    position.quantity += sign * event.amount
    position.average_cost = event.average_cost
    position.realised_pnl += event.realised_pnl
    position.save()


def _apply_yield(row: Portfolio, event: Event) -> None:
    """Cash moving to ``reserved``, from there to ``yield_principal`` or back, as the aggregate does."""
    match event:
        case FundsReserved():
            row.cash -= event.amount
            row.reserved += event.amount
        case ReservationReleased():
            row.reserved -= event.amount
            row.cash += event.amount
        case YieldPositionOpened():
            row.reserved -= event.principal
            row.yield_principal += event.principal
        case YieldPositionClosed():
            row.yield_principal -= event.principal
            row.cash += event.principal
