"""Helpers of the strategy tests: factories of strategy commands and events, contexts and decide()."""
from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import factory

from cqrs_core.commands import MONEY_CONTEXT, Actor, CommandContext, Decision
from cqrs_core.events import Event
from portfolio.state import PORTFOLIO
from tests.conftest import FIXED_NOW, context
from tests.portfolio.support import MARKET, RULES, USER
from trading.events import StrategyArchived, StrategyCreated, StrategyRules
from trading.strategies import STRATEGY, Strategy, risk_profiles
from trading.strategy_commands import CreateStrategy, ExecuteStrategySignal, execute_strategy_signal

STRATEGY_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
RULES_BTC_ETH = StrategyRules(allowed_pairs=("BTC/USD", "ETH/USD"), max_notional_usd=Decimal("5000"))


class CreateStrategyFactory(factory.Factory):
    class Meta:
        model = CreateStrategy

    strategy_id = STRATEGY_ID
    owner_id = 1
    name = "BTC/ETH momentum"
    rules = RULES_BTC_ETH
    risk_profile = "moderate"


class StrategyCreatedFactory(factory.Factory):
    class Meta:
        model = StrategyCreated

    strategy_id = STRATEGY_ID
    owner_id = 1
    name = "BTC/ETH momentum"
    rules = RULES_BTC_ETH
    risk_profile = "moderate"
    created_at = FIXED_NOW


class SignalFactory(factory.Factory):
    class Meta:
        model = ExecuteStrategySignal

    user_id = 1
    strategy_id = STRATEGY_ID
    signal_id = factory.LazyFunction(uuid.uuid4)
    trade_id = factory.LazyFunction(uuid.uuid4)
    pair = "BTC/USD"
    side = "buy"
    amount = Decimal("0.02")  # 1,000 USD at the fixed market's 50,000
    price = Decimal("50000")
    confidence = None
    client_trade_id = None


def strategy(*events: Event) -> Strategy | None:
    return STRATEGY.fold(list(events))


def archived(created: StrategyCreated | None = None) -> list[Event]:
    created = created or StrategyCreatedFactory()
    return [created, StrategyArchived(strategy_id=created.strategy_id, owner_id=created.owner_id,
                                      archived_at=FIXED_NOW)]


def definition_context(actor: Actor = USER) -> CommandContext:
    return context(actor=actor, lookups={"market": MARKET, "rules": RULES})


def signal_context(strategy_events: Iterable[Event] = (), *, actor: Actor = USER, **lookups: Any) -> CommandContext:
    """A signal's context: the fixed market and rules, the default profiles and the strategy folded from events."""
    base = {"market": MARKET, "rules": RULES, "profiles": risk_profiles(),
            "strategy": STRATEGY.fold(list(strategy_events) or [StrategyCreatedFactory()])}
    return context(actor=actor, lookups={**base, **lookups})


def decide_on(aggregate_fold: Callable[[list[Event]], Any], handler: Callable[..., Any], given: Iterable[Event],
              cmd: Any, ctx: CommandContext) -> Decision:
    """Given events of the handler's stream, when a command, then its decision (run as the bus runs it)."""
    with decimal.localcontext(MONEY_CONTEXT):
        decision = handler(aggregate_fold(list(given)), cmd, ctx)
    return decision if isinstance(decision, Decision) else Decision(list(decision))


def decide_strategy(handler: Callable[..., Any], given: Iterable[Event], cmd: Any,
                    ctx: CommandContext | None = None) -> Decision:
    return decide_on(STRATEGY.fold, handler, given, cmd, ctx or definition_context())


def decide_signal(given: Iterable[Event], cmd: ExecuteStrategySignal, ctx: CommandContext | None = None) -> Decision:
    return decide_on(PORTFOLIO.fold, execute_strategy_signal, given, cmd, ctx or signal_context())
