"""Events of the trading context: what happened to a user's trades, with its numbers fixed."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from cqrs_core.events import Event

BUY, SELL = "buy", "sell"


@dataclass(frozen=True, kw_only=True)
class TradeExecuted(Event, name="trading.TradeExecuted"):
    """A trade filled on ``portfolio-<user_id>``; money figures are final, never recomputed downstream.

    ``notional``, ``fee`` and ``realised_pnl`` (sells, average cost method) are quantised to 18
    places by the handler; ``average_cost`` is the position's average cost after the trade.
    """

    trade_id: UUID
    user_id: int
    client_trade_id: str | None
    pair: str
    asset: str
    side: str
    amount: Decimal
    price: Decimal
    notional: Decimal
    fee: Decimal
    realised_pnl: Decimal
    average_cost: Decimal
    market_price: Decimal
    executed_at: dt.datetime
    #: The strategy whose signal placed the trade; None for trades placed directly (and events stored before it).
    strategy_id: UUID | None = None


@dataclass(frozen=True, kw_only=True)
class StrategyRules:
    """What a strategy may trade: pairs, sides and per-trade caps (None: only the risk profile's cap).

    ``max_notional_usd`` caps one trade's notional in USD; ``max_portfolio_share`` caps it as a
    share (0 < share <= 1) of the portfolio's value before the trade, at latest market prices.
    """

    allowed_pairs: tuple[str, ...]
    allowed_sides: tuple[str, ...] = (BUY, SELL)
    max_notional_usd: Decimal | None = None
    max_portfolio_share: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class StrategyCreated(Event, name="trading.StrategyCreated"):
    """A user created a trading strategy on ``strategy-<strategy_id>``."""

    strategy_id: UUID
    owner_id: int
    name: str
    rules: StrategyRules
    risk_profile: str
    created_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class StrategyUpdated(Event, name="trading.StrategyUpdated"):
    """The strategy's name, rules and risk profile as they are after the update (all three, changed or not)."""

    strategy_id: UUID
    owner_id: int
    name: str
    rules: StrategyRules
    risk_profile: str
    updated_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class StrategyArchived(Event, name="trading.StrategyArchived"):
    """The strategy takes no more updates or signals; its events and trades stay."""

    strategy_id: UUID
    owner_id: int
    archived_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class TradeSignal(Event):
    """What every signal event carries: the signal as it was sent and when it was decided (no stored name)."""

    signal_id: UUID
    strategy_id: UUID
    user_id: int
    pair: str
    side: str
    amount: Decimal
    price: Decimal
    confidence: Decimal | None
    client_trade_id: str | None
    decided_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class TradeSignalAccepted(TradeSignal, name="trading.TradeSignalAccepted"):
    """A strategy's signal passed its rules and placed trade ``trade_id`` (recorded after its ``TradeExecuted``)."""

    trade_id: UUID


@dataclass(frozen=True, kw_only=True)
class TradeSignalRejected(TradeSignal, name="trading.TradeSignalRejected"):
    """A strategy's signal placed no trade: ``reason`` is a stable code, ``detail`` says why in words and
    ``context`` holds the figures behind it (money as strings), as the refusal's error would have.
    """

    reason: str
    detail: str
    context: dict[str, Any]
