"""A seeded, deterministic simulated feed: geometric Brownian motion with volume, in Decimal.

Each candle draws from its own generator, seeded by (seed, pair, timeframe, open time), and
starts at the previous close: the same seed and history give the same candles however the run
is split into ticks. Normal draws use the Irwin-Hall sum of twelve uniforms, exact in Decimal,
so no platform's libm can change a digit. Stablecoins revert to 1 with tiny noise instead.
"""
from __future__ import annotations

import datetime as dt
import decimal
import random
from collections.abc import Iterator
from decimal import Decimal

from .events import CandleData
from .pairs import Pair
from .timeframes import TIMEFRAMES, timeframe_delta

VOLUME_PLACES = Decimal("0.0001")
_CTX = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)
_TWO_32 = Decimal(2**32)


def normal(rng: random.Random) -> Decimal:
    """An approximately standard normal draw (Irwin-Hall, n=12), exact in Decimal."""
    return sum((Decimal(rng.getrandbits(32)) / _TWO_32 for _ in range(12)), Decimal(0)) - 6


def simulate(pair: Pair, *, seed: int, start: dt.datetime, count: int, timeframe: str = "1h",
             previous_close: Decimal | None = None) -> list[CandleData]:
    """``count`` consecutive candles from ``start``; the first opens at ``previous_close`` (or the start price)."""
    start_price = pair.start_price.quantize(Decimal(1).scaleb(-pair.price_places))
    return list(_candles(pair, seed, start, count, timeframe, previous_close or start_price))


def _candles(pair: Pair, seed: int, start: dt.datetime, count: int, timeframe: str,
             price: Decimal) -> Iterator[CandleData]:
    step = timeframe_delta(timeframe)
    hours = Decimal(TIMEFRAMES[timeframe]) / 3600
    for i in range(count):
        open_time = start + i * step
        rng = random.Random(f"{seed}:{pair.symbol}:{timeframe}:{int(open_time.timestamp())}")
        candle = _candle(pair, rng, open_time, price, hours)
        price = candle.close
        yield candle


def _candle(pair: Pair, rng: random.Random, open_time: dt.datetime, open_: Decimal, hours: Decimal) -> CandleData:
    tick = Decimal(1).scaleb(-pair.price_places)
    with decimal.localcontext(_CTX):
        sigma = pair.sigma * hours.sqrt()
        if pair.is_stablecoin:
            raw_close = open_ + (1 - open_) / 2 + sigma * normal(rng)
        else:
            raw_close = open_ * (sigma * normal(rng) - sigma * sigma / 2).exp()
        close = max(tick, raw_close.quantize(tick))
        high = (max(open_, close) * (1 + sigma * abs(normal(rng)) / 2)).quantize(tick, decimal.ROUND_CEILING)
        low = (min(open_, close) * (1 - sigma * abs(normal(rng)) / 2)).quantize(tick, decimal.ROUND_FLOOR)
        volume = pair.hourly_quote_volume * hours / close * (normal(rng) * Decimal("0.35")).exp()
    return CandleData(open_time=open_time, open=open_, high=high, low=max(tick, low), close=close,
                      volume=volume.quantize(VOLUME_PLACES))
