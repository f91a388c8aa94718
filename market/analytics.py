"""Pure market statistics over hourly buckets: volume, price change and volatility of a window.

Volatility is Parkinson's high-low estimator over the window's hours, as a percentage per hour:
``sqrt(sum(ln(high/low)^2) / (4 n ln 2)) * 100``. Unlike the deviation of returns it is defined
for a single hour and needs nothing from outside the window.
https://doi.org/10.1086/296071
"""
from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from .timeframes import HOUR

WINDOWS: dict[str, int] = {"1h": 1, "24h": 24, "7d": 168}
SORTS = ("volume", "price_change", "volatility")
PERCENT_PLACES = Decimal("0.0001")
_STATS = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)
_FOUR_LN2 = 4 * _STATS.ln(Decimal(2))


@dataclass(frozen=True)
class Hour:
    """One pair's aggregate for one hour: a bucket, or the same computed from raw candles."""

    hour: dt.datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal


@dataclass(frozen=True)
class CoinStats:
    """A pair over a window; ``volume`` in the base currency, ``quote_volume`` in USD."""

    pair: str
    base: str
    is_stablecoin: bool
    last_price: Decimal
    open_price: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal
    price_change_pct: Decimal
    volatility_pct: Decimal
    hours: int


def window_start(as_of_hour: dt.datetime, window: str) -> dt.datetime:
    """The first hour of a window whose last hour is ``as_of_hour``."""
    return as_of_hour - (WINDOWS[window] - 1) * HOUR


def summarise(pair: str, base: str, is_stablecoin: bool, hours: Sequence[Hour]) -> CoinStats:
    """Statistics of one pair over the hours of a window (at least one, any order)."""
    ordered = sorted(hours, key=lambda h: h.hour)
    first, last = ordered[0], ordered[-1]
    with decimal.localcontext(_STATS):
        change = (last.close - first.open) / first.open * 100
        spread = sum((_STATS.ln(h.high / h.low) ** 2 for h in ordered), Decimal(0))
        volatility = (spread / (_FOUR_LN2 * len(ordered))).sqrt() * 100
        return CoinStats(
            pair=pair, base=base, is_stablecoin=is_stablecoin, last_price=last.close, open_price=first.open,
            high=max(h.high for h in ordered), low=min(h.low for h in ordered),
            volume=sum((h.volume for h in ordered), Decimal(0)),
            quote_volume=sum((h.quote_volume for h in ordered), Decimal(0)),
            price_change_pct=change.quantize(PERCENT_PLACES), volatility_pct=volatility.quantize(PERCENT_PLACES),
            hours=len(ordered),
        )


def rank(stats: Iterable[CoinStats], *, sort: str, descending: bool = True, min_volume: Decimal = Decimal(0),
         limit: int = 20) -> list[CoinStats]:
    """Filter by quote volume and order by ``sort``; ties by symbol, so the order is total."""
    key = {"volume": lambda s: s.quote_volume, "price_change": lambda s: s.price_change_pct,
           "volatility": lambda s: s.volatility_pct}[sort]
    kept = sorted((s for s in stats if s.quote_volume >= min_volume), key=lambda s: s.pair)
    return sorted(kept, key=key, reverse=descending)[:limit]
