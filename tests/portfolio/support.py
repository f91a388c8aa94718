"""Shared helpers of the portfolio and trading tests: a fixed market, rules, factories and a decide()."""
from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import factory

from cqrs_core.commands import MONEY_CONTEXT, Actor, CommandContext, Decision
from cqrs_core.events import Event
from portfolio.commands import DepositFunds
from portfolio.events import FundsDeposited, PortfolioOpened
from portfolio.market import MarketSnapshot
from portfolio.rules import Rules
from portfolio.state import PORTFOLIO, Portfolio
from tests.conftest import context
from trading.commands import ExecuteTrade

USER = Actor(user_id=1)
PRICES = {"BTC/USD": Decimal("50000"), "ETH/USD": Decimal("2500"), "SOL/USD": Decimal("100")}
MARKET = MarketSnapshot(frozenset({*PRICES, "DOGE/USD", "ETH/BTC"}), dict(PRICES))
RULES = Rules()


class ExecuteTradeFactory(factory.Factory):
    class Meta:
        model = ExecuteTrade

    user_id = 1
    trade_id = factory.LazyFunction(uuid.uuid4)
    pair = "BTC/USD"
    side = "buy"
    amount = Decimal("0.1")
    price = Decimal("50000")
    client_trade_id = None


class DepositFundsFactory(factory.Factory):
    class Meta:
        model = DepositFunds

    user_id = 1
    amount = Decimal("10000")


def funded(cash: str = "10000", user_id: int = 1) -> list[Event]:
    """Events of a portfolio opened and funded with ``cash``."""
    return [PortfolioOpened(user_id=user_id), FundsDeposited(user_id=user_id, amount=Decimal(cash))]


def trade_context(*, market: MarketSnapshot = MARKET, rules: Rules = RULES, actor: Actor = USER) -> CommandContext:
    return context(actor=actor, lookups={"market": market, "rules": rules})


def decide(handler: Callable[..., Any], given: Iterable[Event], cmd: Any,
           ctx: CommandContext | None = None) -> list[Event]:
    """Given events, when a command, then the events the handler decides (run as the bus runs it)."""
    with decimal.localcontext(MONEY_CONTEXT):
        state = PORTFOLIO.fold(list(given))
        decision = handler(state, cmd, ctx or trade_context())
    return list(decision.events) if isinstance(decision, Decision) else list(decision)


def fold(events: Iterable[Event]) -> Portfolio | None:
    return PORTFOLIO.fold(list(events))
