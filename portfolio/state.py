"""The portfolio aggregate: cash and holdings of one user, folded from portfolio and trading events."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from cqrs_core.commands import Aggregate
from cqrs_core.events import Event
from trading.events import BUY, TradeExecuted

from yield_farming.events import YieldPositionClosed, YieldPositionOpened

from .events import (
    FundsDeposited, FundsReserved, FundsWithdrawn, PortfolioImpacted, PortfolioOpened, ReservationReleased,
    RiskLimitsSet,
)

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
class YieldHolding:
    """Principal placed in one protocol by one strategy (accrual is computed by queries, not here)."""

    strategy_id: str
    protocol: str
    principal: Decimal


@dataclass(frozen=True)
class Portfolio:
    """A user's portfolio; ``max_position_usd`` None means the configured default applies.

    Cash is split three ways: ``cash`` (spendable), ``reserved`` (set aside per reservation id in
    ``reservations``) and ``yield_principal`` (the sum of ``yield_positions``); only deposits,
    withdrawals and trades change their sum.
    """

    user_id: int
    cash: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    max_position_usd: Decimal | None = None
    holdings: dict[str, Holding] = field(default_factory=dict)
    client_trade_ids: frozenset[str] = frozenset()
    reserved: Decimal = ZERO
    reservations: dict[str, Decimal] = field(default_factory=dict)
    reservation_ids: frozenset[str] = frozenset()
    yield_principal: Decimal = ZERO
    yield_positions: dict[str, YieldHolding] = field(default_factory=dict)

    def reservation(self, reservation_id: object) -> Decimal:
        """What is left of a reservation (zero once consumed or released, or if it never existed)."""
        return self.reservations.get(str(reservation_id), ZERO)

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
        case FundsReserved() | ReservationReleased() | YieldPositionOpened() | YieldPositionClosed() if state is not None:
            return _yield(state, event)
    return state


def _yield(state: Portfolio, event: Event) -> Portfolio:
    """Reservations and yield positions: money moves between cash, reserved and principal only."""
    match event:
        case FundsReserved():
            key = str(event.reservation_id)
            return replace(state, cash=state.cash - event.amount, reserved=state.reserved + event.amount,
                           reservations={**state.reservations, key: event.amount},
                           reservation_ids=state.reservation_ids | {key})
        case ReservationReleased():
            return replace(state, cash=state.cash + event.amount, reserved=state.reserved - event.amount,
                           reservations=_less(state.reservations, str(event.reservation_id), event.amount))
        case YieldPositionOpened():
            holding = YieldHolding(str(event.strategy_id), event.protocol, event.principal)
            return replace(state, reserved=state.reserved - event.principal,
                           reservations=_less(state.reservations, str(event.strategy_id), event.principal),
                           yield_principal=state.yield_principal + event.principal,
                           yield_positions={**state.yield_positions, str(event.position_id): holding})
        case YieldPositionClosed():
            positions = {k: v for k, v in state.yield_positions.items() if k != str(event.position_id)}
            return replace(state, cash=state.cash + event.principal,
                           yield_principal=state.yield_principal - event.principal, yield_positions=positions)
    return state


def _less(reservations: dict[str, Decimal], key: str, amount: Decimal) -> dict[str, Decimal]:
    """The reservations with ``amount`` taken from ``key``; an emptied reservation is dropped."""
    left = reservations.get(key, ZERO) - amount
    rest = {k: v for k, v in reservations.items() if k != key}
    return {**rest, key: left} if left else rest


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


# Version 2: reservations and yield positions joined the state (older snapshots are refolded).
PORTFOLIO = Aggregate("portfolio.portfolio", evolve=evolve, state_type=Portfolio, snapshot_version=2)
