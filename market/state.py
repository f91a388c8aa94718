"""State of a ``market-<pair>`` stream: how far its candles reach, so a batch only appends."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from cqrs_core.commands import Aggregate
from cqrs_core.events import Event

from .events import CandlesRecorded
from .timeframes import timeframe_delta


@dataclass(frozen=True)
class PairFeed:
    """The end of the last recorded candle (the next one may open there) and its close."""

    pair: str
    covered_until: dt.datetime
    last_close: Decimal
    candles: int


def evolve(state: PairFeed | None, event: Event) -> PairFeed | None:
    match event:
        case CandlesRecorded(candles=candles) if candles:
            last = candles[-1]
            return PairFeed(pair=event.pair, covered_until=last.open_time + timeframe_delta(event.timeframe),
                            last_close=last.close, candles=(state.candles if state else 0) + len(candles))
    return state


PAIR_FEED = Aggregate("market.pair_feed", evolve=evolve, state_type=PairFeed)
