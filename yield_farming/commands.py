"""Yield farming commands and their pure handlers.

Catalogue commands decide on ``yield_farming-catalogue``. Strategy and position commands decide
on the user's ``portfolio-<user_id>`` with the portfolio aggregate: the amount is reserved in the
same transaction that checks the cash, so a trade or withdrawal can never spend it too.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from cqrs_core.commands import Command, CommandContext, Decision, handles
from cqrs_core.errors import ValidationFailed
from cqrs_core.events import Event
from portfolio.commands import operators_only, owner_only
from portfolio.events import FundsReserved, ReservationReleased
from portfolio.state import PORTFOLIO, Portfolio, portfolio_stream

from .catalogue import current_catalogue
from .errors import (
    AmountTooLow, InsufficientFunds, ProtocolNotFound, ReservationNotFound, StrategyAlreadyRequested, UnknownProtocol,
)
from .events import YieldPositionClosed, YieldPositionOpened, YieldStrategyExecutionRequested
from .rules import TOLERANCES, YieldRules, current_rules
from .state import Catalogue

ANY = "any"
RESERVATION_PURPOSE = "yield_strategy"


@dataclass(frozen=True, kw_only=True)
class ExecuteYieldStrategy(Command, name="yield_farming.ExecuteYieldStrategy"):
    user_id: int
    strategy_id: UUID
    protocols: tuple[str, ...]
    amount: Decimal
    risk_tolerance: str


@dataclass(frozen=True, kw_only=True)
class Allocation:
    protocol: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class OpenYieldPositions(Command, name="yield_farming.OpenYieldPositions"):
    user_id: int
    strategy_id: UUID
    allocations: tuple[Allocation, ...]


@dataclass(frozen=True, kw_only=True)
class ReleaseReservation(Command, name="yield_farming.ReleaseReservation"):
    user_id: int
    reservation_id: UUID
    reason: str


@dataclass(frozen=True, kw_only=True)
class CloseYieldPositions(Command, name="yield_farming.CloseYieldPositions"):
    user_id: int
    strategy_id: UUID
    reason: str


def position_id_for(strategy_id: UUID, protocol: str) -> UUID:
    """A strategy holds at most one position per protocol: its id follows from both."""
    return uuid.uuid5(strategy_id, protocol)


def _stream(cmd: Any) -> str:
    return portfolio_stream(cmd.user_id)


_CATALOGUE_AND_RULES = {"catalogue": lambda c: current_catalogue(), "rules": lambda c: current_rules()}


@handles(ExecuteYieldStrategy, stream=_stream, aggregate=PORTFOLIO, authorize=owner_only, lookups=_CATALOGUE_AND_RULES)
def execute_yield_strategy(portfolio: Portfolio | None, cmd: ExecuteYieldStrategy, ctx: CommandContext) -> Decision:
    """Reserve the amount and request the strategy; refusals in order: tolerance, amount, protocols, id, cash."""
    rules: YieldRules = ctx.lookups["rules"]
    if cmd.risk_tolerance not in TOLERANCES:
        raise ValidationFailed(f"risk_tolerance must be one of {', '.join(TOLERANCES)}",
                               risk_tolerance=cmd.risk_tolerance)
    if cmd.amount < rules.min_strategy_usd:
        raise AmountTooLow(amount=str(cmd.amount), minimum=str(rules.min_strategy_usd))
    check_targets(cmd.protocols, ctx.lookups["catalogue"])
    state = portfolio or Portfolio(user_id=cmd.user_id)
    if str(cmd.strategy_id) in state.reservation_ids:
        raise StrategyAlreadyRequested(strategy_id=str(cmd.strategy_id))
    if cmd.amount > state.cash:
        raise InsufficientFunds(cash=str(state.cash), amount=str(cmd.amount))
    events: list[Event] = [
        FundsReserved(user_id=cmd.user_id, reservation_id=cmd.strategy_id, amount=cmd.amount,
                      purpose=RESERVATION_PURPOSE),
        YieldStrategyExecutionRequested(strategy_id=cmd.strategy_id, user_id=cmd.user_id, protocols=cmd.protocols,
                                        amount=cmd.amount, risk_tolerance=cmd.risk_tolerance, requested_at=ctx.now),
    ]
    return Decision(events, {"strategy_id": cmd.strategy_id, "status": "requested", "reserved": cmd.amount,
                             "cash": state.cash - cmd.amount})


def check_targets(protocols: tuple[str, ...], catalogue: Catalogue) -> None:
    """``("any",)`` or slugs that are all listed; anything else is ``unknown_protocol``."""
    if protocols == (ANY,):
        return
    unknown = sorted({slug for slug in protocols if catalogue.get(slug) is None})
    if unknown or not protocols:
        raise UnknownProtocol(unknown=unknown)


@handles(OpenYieldPositions, stream=_stream, aggregate=PORTFOLIO, authorize=operators_only,
         lookups={"catalogue": lambda c: current_catalogue()})
def open_yield_positions(portfolio: Portfolio | None, cmd: OpenYieldPositions, ctx: CommandContext) -> Decision:
    """Turn reserved cash into positions at each protocol's APY now; the rest of the reservation is released."""
    catalogue: Catalogue = ctx.lookups["catalogue"]
    left = portfolio.reservation(cmd.strategy_id) if portfolio is not None else Decimal(0)
    total = sum((a.amount for a in cmd.allocations), Decimal(0))
    if left <= 0 or total > left:
        raise ReservationNotFound(strategy_id=str(cmd.strategy_id), reserved=str(left), allocated=str(total))
    events: list[Event] = []
    for allocation in cmd.allocations:
        info = catalogue.get(allocation.protocol)
        if info is None:
            raise ProtocolNotFound(slug=allocation.protocol)
        if allocation.amount <= 0:
            raise ValidationFailed("allocations must be positive", protocol=allocation.protocol)
        events.append(YieldPositionOpened(
            user_id=cmd.user_id, position_id=position_id_for(cmd.strategy_id, info.slug), strategy_id=cmd.strategy_id,
            protocol=info.slug, principal=allocation.amount, apy=info.apy, opened_at=ctx.now))
    if left > total:
        events.append(ReservationReleased(user_id=cmd.user_id, reservation_id=cmd.strategy_id, amount=left - total,
                                          reason="unallocated"))
    return Decision(events, {"opened": len(cmd.allocations), "allocated": total, "released": left - total})


@handles(ReleaseReservation, stream=_stream, aggregate=PORTFOLIO, authorize=operators_only)
def release_reservation(portfolio: Portfolio | None, cmd: ReleaseReservation, ctx: CommandContext) -> Decision:
    """Give what is left of a reservation back to cash; nothing left records nothing (safe to repeat)."""
    left = portfolio.reservation(cmd.reservation_id) if portfolio is not None else Decimal(0)
    if left <= 0:
        return Decision([], {"released": Decimal(0)})
    return Decision([ReservationReleased(user_id=cmd.user_id, reservation_id=cmd.reservation_id, amount=left,
                                         reason=cmd.reason)], {"released": left})


@handles(CloseYieldPositions, stream=_stream, aggregate=PORTFOLIO, authorize=operators_only)
def close_yield_positions(portfolio: Portfolio | None, cmd: CloseYieldPositions, ctx: CommandContext) -> Decision:
    """Close the strategy's open positions, principal back to cash; none open records nothing."""
    held = portfolio.yield_positions if portfolio is not None else {}
    events: list[Event] = [
        YieldPositionClosed(user_id=cmd.user_id, position_id=UUID(position_id), strategy_id=cmd.strategy_id,
                            protocol=h.protocol, principal=h.principal, reason=cmd.reason, closed_at=ctx.now)
        for position_id, h in sorted(held.items()) if h.strategy_id == str(cmd.strategy_id)
    ]
    return Decision(events, {"closed": len(events)})
