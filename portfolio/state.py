"""The portfolio aggregate: cash and holdings of one user, folded from portfolio and trading events."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from cqrs_core.commands import Aggregate
from cqrs_core.events import Event
from trading.events import BUY, TradeExecuted

from .events import FundsDeposited, FundsWithdrawn, PortfolioImpacted, PortfolioOpened, RiskLimitsSet

ZERO = Decimal(0)


def portfolio_stream(user_id: int) -> str:
    """The stream of a user's portfolio: the consistency boundary of their cash and holdings."""
    return f"portfolio-{user_id}"


@dataclass(frozen=True)
class Holding:
    """One asset held: quantity, average cost (USD) and the P&L realised by selling it."""

    quantity: Decimal = ZERO
    average_cost: Decimal = ZERO
    realised_pnl: Decimal = ZERO


@dataclass(frozen=True)
class Portfolio:
    """A user's portfolio; ``max_position_usd`` None means the configured default applies."""

    user_id: int
    cash: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    max_position_usd: Decimal | None = None
    holdings: dict[str, Holding] = field(default_factory=dict)
    client_trade_ids: frozenset[str] = frozenset()

    def holding(self, asset: str) -> Holding:
        return self.holdings.get(asset, Holding())


def evolve(state: Portfolio | None, event: Event) -> Portfolio | None:
    """Apply one event; events before ``PortfolioOpened`` cannot exist, so they are ignored."""
    match event:
        case PortfolioOpened():
            return Portfolio(user_id=event.user_id)
        case FundsDeposited() if state is not None:
            return replace(state, cash=state.cash + event.amount)
        case FundsWithdrawn() if state is not None:
            return replace(state, cash=state.cash - event.amount)
        case RiskLimitsSet() if state is not None:
            return replace(state, max_position_usd=event.max_position_usd)
        case TradeExecuted() if state is not None:
            return _trade(state, event)
        case PortfolioImpacted():
            return state
    return state


def _trade(state: Portfolio, event: TradeExecuted) -> Portfolio:
    held = state.holding(event.asset)
    if event.side == BUY:
        cash = state.cash - event.notional - event.fee
        quantity = held.quantity + event.amount
    else:
        cash = state.cash + event.notional - event.fee
        quantity = held.quantity - event.amount
    holding = Holding(quantity=quantity, average_cost=event.average_cost,
                      realised_pnl=held.realised_pnl + event.realised_pnl)
    ids = state.client_trade_ids | {event.client_trade_id} if event.client_trade_id else state.client_trade_ids
    return replace(state, cash=cash, realised_pnl=state.realised_pnl + event.realised_pnl,
                   fees_paid=state.fees_paid + event.fee, holdings={**state.holdings, event.asset: holding},
                   client_trade_ids=ids)


PORTFOLIO = Aggregate("portfolio.portfolio", evolve=evolve, state_type=Portfolio)
