"""Commands of the market context: recording candles, batch by batch, on a stream per pair.

The handler only ever appends forward in time: a candle that opens before the end of the last
recorded one is skipped as already recorded. Loading the same CSV twice therefore records
nothing the second time, and candles of one pair never overlap, whatever their timeframes.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cqrs_core.commands import Command, CommandContext, Decision, handles

from .errors import BatchTooLarge, InvalidCandle, UnknownPair, UnsupportedTimeframe
from .events import CandleData, CandlesRecorded
from .pairs import get_pair
from .state import PAIR_FEED, PairFeed
from .timeframes import TIMEFRAMES, is_aligned, timeframe_delta

MAX_BATCH = 1000
#: Read-model columns are numeric(32, 12): at most 20 integer and 12 fractional digits.
MAX_PLACES, MAX_INTEGER_DIGITS = 12, 20


@dataclass(frozen=True, kw_only=True)
class RecordCandles(Command):
    pair: str
    timeframe: str
    candles: tuple[CandleData, ...]


def market_stream(pair: str) -> str:
    return f"market-{pair}"


@handles(RecordCandles, stream=lambda c: market_stream(c.pair), aggregate=PAIR_FEED)
def record_candles(feed: PairFeed | None, cmd: RecordCandles, ctx: CommandContext) -> Decision:
    """Record the candles that extend the pair's series; earlier or overlapping ones are skipped."""
    pair = get_pair(cmd.pair)
    if pair is None or pair.symbol != cmd.pair:
        raise UnknownPair(pair=cmd.pair)
    if cmd.timeframe not in TIMEFRAMES:
        raise UnsupportedTimeframe(timeframe=cmd.timeframe, supported=sorted(TIMEFRAMES))
    if len(cmd.candles) > MAX_BATCH:
        raise BatchTooLarge(size=len(cmd.candles), max=MAX_BATCH)
    for candle in cmd.candles:
        check_candle(candle, cmd.timeframe)
    fresh = _extending(feed, cmd)
    events = [CandlesRecorded(pair=cmd.pair, timeframe=cmd.timeframe, candles=fresh)] if fresh else []
    return Decision(events, {"recorded": len(fresh), "skipped": len(cmd.candles) - len(fresh)})


def _extending(feed: PairFeed | None, cmd: RecordCandles) -> tuple[CandleData, ...]:
    """The candles in time order that start at or after the end of the previous one."""
    step = timeframe_delta(cmd.timeframe)
    until = feed.covered_until if feed else None
    fresh = []
    for candle in sorted(cmd.candles, key=lambda c: c.open_time):
        if until is None or candle.open_time >= until:
            fresh.append(candle)
            until = candle.open_time + step
    return tuple(fresh)


def check_candle(candle: CandleData, timeframe: str) -> None:
    """Raise ``InvalidCandle`` unless the candle is aligned, consistent and fits the columns."""
    when = candle.open_time.isoformat()
    if not is_aligned(candle.open_time, timeframe):
        raise InvalidCandle(f"candle at {when} does not open on a {timeframe} boundary (UTC)", open_time=when)
    values = (candle.open, candle.high, candle.low, candle.close, candle.volume)
    if not all(isinstance(v, Decimal) and v.is_finite() and _fits(v) for v in values):
        raise InvalidCandle(f"candle at {when} has a value beyond {MAX_PLACES} places or "
                            f"{MAX_INTEGER_DIGITS} integer digits", open_time=when)
    if not (0 < candle.low <= min(candle.open, candle.close) and max(candle.open, candle.close) <= candle.high):
        raise InvalidCandle(f"candle at {when} breaks 0 < low <= open, close <= high", open_time=when)
    if candle.volume < 0:
        raise InvalidCandle(f"candle at {when} has a negative volume", open_time=when)


def _fits(value: Decimal) -> bool:
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return -exponent <= MAX_PLACES and len(digits) + exponent <= MAX_INTEGER_DIGITS
