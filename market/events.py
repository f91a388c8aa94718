"""Events of the market context."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from cqrs_core.events import Event


@dataclass(frozen=True, kw_only=True)
class CandleData:
    """One closed OHLCV candle; ``volume`` is in the base currency (ccxt's layout)."""

    open_time: dt.datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, kw_only=True)
class CandlesRecorded(Event, name="market.CandlesRecorded"):
    """A batch of consecutive, non-overlapping candles of one pair, oldest first."""

    pair: str
    timeframe: str
    candles: tuple[CandleData, ...]
