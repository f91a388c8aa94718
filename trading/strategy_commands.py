"""Strategy commands: create, update and archive a strategy; execute one of its trade signals.

Definitions are decided on ``strategy-<id>``. A signal is decided on the owner's ``portfolio-<user_id>``
(the consistency boundary of cash and holdings), with the strategy folded as a read-only lookup:
it either places the trade (``TradeExecuted`` with ``strategy_id``, then ``TradeSignalAccepted``) or
records why not (``TradeSignalRejected``). Errors that store nothing: another user's or a missing
strategy (404; staff 403), an archived strategy (409 ``strategy_archived``: the strategy is gone,
there is no signal to judge), non-positive amounts (400), a reused ``client_trade_id`` (409, the
client's own de-duplication) and a market without a price (503, retryable).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from cqrs_core.commands import Actor, Command, CommandContext, Decision, handles
from cqrs_core.errors import DomainError
from cqrs_core.events import Event
from cqrs_core.store import read_stream
from portfolio import market
from portfolio.commands import owner_only, require_positive
from portfolio.errors import InsufficientFunds
from portfolio.rules import Rules, current_rules
from portfolio.state import PORTFOLIO, Portfolio, portfolio_stream

from .commands import ExecuteTrade, decide_trade, money, portfolio_value
from .errors import (
    AmountTooSmall, DuplicateClientTradeId, InsufficientPosition, NotStrategyOwner, PositionLimitExceeded,
    PriceOutOfRange, SignalRuleBroken, StrategyAlreadyExists, StrategyIsArchived, StrategyNotFound, UnknownPair,
)
from .events import StrategyArchived, StrategyCreated, StrategyRules, StrategyUpdated, TradeSignalAccepted, \
    TradeSignalRejected
from .strategies import STRATEGY, RiskLimits, Strategy, check_signal, risk_profiles, strategy_stream, \
    validate_definition

#: Refusals of the trade itself that a signal records as its rejection (the others stay errors).
REJECTED_TRADES: tuple[type[DomainError], ...] = (
    SignalRuleBroken, AmountTooSmall, UnknownPair, PriceOutOfRange, PositionLimitExceeded, InsufficientFunds,
    InsufficientPosition,
)

#: The trade figures of a rejected signal's result: the same keys as an accepted one's, with no trade.
NO_TRADE: dict[str, Any] = {"trade_id": None, "notional": None, "fee": None, "realised_pnl": None,
                            "portfolio_impacted": False}


@dataclass(frozen=True, kw_only=True)
class CreateStrategy(Command, name="trading.CreateStrategy"):
    strategy_id: UUID
    owner_id: int
    name: str
    rules: StrategyRules
    risk_profile: str


@dataclass(frozen=True, kw_only=True)
class UpdateStrategy(Command, name="trading.UpdateStrategy"):
    """Fields left None keep their value."""

    strategy_id: UUID
    name: str | None = None
    rules: StrategyRules | None = None
    risk_profile: str | None = None


@dataclass(frozen=True, kw_only=True)
class ArchiveStrategy(Command, name="trading.ArchiveStrategy"):
    strategy_id: UUID


@dataclass(frozen=True, kw_only=True)
class ExecuteStrategySignal(Command, name="trading.ExecuteStrategySignal"):
    user_id: int
    strategy_id: UUID
    signal_id: UUID
    trade_id: UUID
    pair: str
    side: str
    amount: Decimal
    price: Decimal
    confidence: Decimal | None = None
    client_trade_id: str | None = None


def _definition_lookups() -> dict[str, Any]:
    return {"market": lambda c: market.snapshot(), "rules": lambda c: current_rules()}


def _stream(cmd: CreateStrategy | UpdateStrategy | ArchiveStrategy) -> str:
    return strategy_stream(cmd.strategy_id)


def creator_only(cmd: CreateStrategy, actor: Actor) -> None:
    """A user creates strategies for themselves (the system for anyone)."""
    if not actor.is_system and actor.user_id != cmd.owner_id:
        raise StrategyNotFound(strategy_id=str(cmd.strategy_id))


def owned(strategy: Strategy | None, strategy_id: UUID, actor: Actor, *, user_id: int | None = None) -> Strategy:
    """The strategy if ``user_id`` (default: the actor; the system acts for anyone) owns it and it is active.

    Missing or another's: 404, so ids of others' strategies reveal nothing; staff, who may read it, get 403.
    """
    owner = user_id if user_id is not None else (None if actor.is_system else actor.user_id)
    if strategy is None or (owner is not None and strategy.owner_id != owner):
        if strategy is not None and actor.is_staff:
            raise NotStrategyOwner(strategy_id=str(strategy_id))
        raise StrategyNotFound(strategy_id=str(strategy_id))
    if strategy.archived:
        raise StrategyIsArchived(strategy_id=str(strategy_id))
    return strategy


def strategy_owner_only(cmd: UpdateStrategy | ArchiveStrategy, actor: Actor) -> None:
    """Refuse a non-owner before anything else, ``If-Match`` included: a 412 would tell them the strategy exists."""
    owned(STRATEGY.fold(read_stream(strategy_stream(cmd.strategy_id))), cmd.strategy_id, actor)


def _validate(name: str, rules: StrategyRules, risk_profile: str, ctx: CommandContext) -> None:
    trading_rules: Rules = ctx.lookups["rules"]
    validate_definition(name, rules, risk_profile, known_pairs=ctx.lookups["market"].pairs,
                        min_trade_usd=trading_rules.min_trade_usd)


@handles(CreateStrategy, stream=_stream, aggregate=STRATEGY, authorize=creator_only, lookups=_definition_lookups())
def create_strategy(strategy: Strategy | None, cmd: CreateStrategy, ctx: CommandContext) -> Decision:
    """Create a strategy with validated rules; an existing id is a conflict."""
    if strategy is not None:
        raise StrategyAlreadyExists(strategy_id=str(cmd.strategy_id))
    _validate(cmd.name, cmd.rules, cmd.risk_profile, ctx)
    return Decision([StrategyCreated(strategy_id=cmd.strategy_id, owner_id=cmd.owner_id, name=cmd.name,
                                     rules=cmd.rules, risk_profile=cmd.risk_profile, created_at=ctx.now)],
                    {"strategy_id": cmd.strategy_id, "status": "active"})


@handles(UpdateStrategy, stream=_stream, aggregate=STRATEGY, authorize=strategy_owner_only,
         lookups=_definition_lookups())
def update_strategy(strategy: Strategy | None, cmd: UpdateStrategy, ctx: CommandContext) -> Decision:
    """Change name, rules or risk profile of your active strategy; the event carries all three as they end up."""
    current = owned(strategy, cmd.strategy_id, ctx.actor)
    name = current.name if cmd.name is None else cmd.name
    rules = current.rules if cmd.rules is None else cmd.rules
    profile = current.risk_profile if cmd.risk_profile is None else cmd.risk_profile
    _validate(name, rules, profile, ctx)
    return Decision([StrategyUpdated(strategy_id=cmd.strategy_id, owner_id=current.owner_id, name=name, rules=rules,
                                     risk_profile=profile, updated_at=ctx.now)],
                    {"strategy_id": cmd.strategy_id, "status": "active"})


@handles(ArchiveStrategy, stream=_stream, aggregate=STRATEGY, authorize=strategy_owner_only)
def archive_strategy(strategy: Strategy | None, cmd: ArchiveStrategy, ctx: CommandContext) -> Decision:
    """Archive your strategy: no more updates or signals; archiving twice is ``strategy_archived``."""
    current = owned(strategy, cmd.strategy_id, ctx.actor)
    return Decision([StrategyArchived(strategy_id=cmd.strategy_id, owner_id=current.owner_id, archived_at=ctx.now)],
                    {"strategy_id": cmd.strategy_id, "status": "archived"})


def _fold_strategy(cmd: ExecuteStrategySignal) -> Strategy | None:
    """The strategy as its stream stands now: read-only, outside the portfolio's lock."""
    return STRATEGY.fold(read_stream(strategy_stream(cmd.strategy_id)))


@handles(ExecuteStrategySignal, stream=lambda c: portfolio_stream(c.user_id), aggregate=PORTFOLIO,
         authorize=owner_only, lookups={**_definition_lookups(), "strategy": _fold_strategy,
                                        "profiles": lambda c: risk_profiles()})
def execute_strategy_signal(portfolio: Portfolio | None, cmd: ExecuteStrategySignal, ctx: CommandContext) -> Decision:
    """Place the signal's trade if it passes the strategy's rules and the trade's own checks, else record why not."""
    strategy = owned(ctx.lookups["strategy"], cmd.strategy_id, ctx.actor, user_id=cmd.user_id)
    require_positive(amount=cmd.amount, price=cmd.price)
    state = portfolio or Portfolio(user_id=cmd.user_id)
    if cmd.client_trade_id is not None and cmd.client_trade_id in state.client_trade_ids:
        raise DuplicateClientTradeId(client_trade_id=cmd.client_trade_id)
    limits: RiskLimits = ctx.lookups["profiles"][strategy.risk_profile]
    trade = ExecuteTrade(user_id=cmd.user_id, trade_id=cmd.trade_id, pair=cmd.pair, side=cmd.side, amount=cmd.amount,
                         price=cmd.price, client_trade_id=cmd.client_trade_id)
    try:
        check_signal(strategy, limits, pair=cmd.pair, side=cmd.side, notional=money(cmd.amount * cmd.price),
                     portfolio_value=money(portfolio_value(state, ctx.lookups["market"])), confidence=cmd.confidence)
        decision = decide_trade(portfolio, trade, ctx, strategy_id=cmd.strategy_id)
    except REJECTED_TRADES as refusal:
        return _rejected(cmd, refusal, ctx)
    accepted = TradeSignalAccepted(**_signal_fields(cmd, ctx), trade_id=cmd.trade_id)
    return Decision([*decision.events, accepted],
                    {**_outcome(cmd, "accepted"), **decision.result, "reason": None, "detail": None, "context": {}})


def _signal_fields(cmd: ExecuteStrategySignal, ctx: CommandContext) -> dict[str, Any]:
    return {"signal_id": cmd.signal_id, "strategy_id": cmd.strategy_id, "user_id": cmd.user_id, "pair": cmd.pair,
            "side": cmd.side, "amount": cmd.amount, "price": cmd.price, "confidence": cmd.confidence,
            "client_trade_id": cmd.client_trade_id, "decided_at": ctx.now}


def _outcome(cmd: ExecuteStrategySignal, outcome: str) -> dict[str, Any]:
    return {"signal_id": cmd.signal_id, "strategy_id": cmd.strategy_id, "outcome": outcome}


def _rejected(cmd: ExecuteStrategySignal, refusal: DomainError, ctx: CommandContext) -> Decision:
    event: Event = TradeSignalRejected(**_signal_fields(cmd, ctx), reason=refusal.code, detail=refusal.detail,
                                       context=dict(refusal.context))
    return Decision([event], {**_outcome(cmd, "rejected"), **NO_TRADE, "reason": refusal.code,
                              "detail": refusal.detail, "context": dict(refusal.context)})
