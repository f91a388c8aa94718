"""Events of the trading context: what happened to a user's trades, with its numbers fixed."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
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
