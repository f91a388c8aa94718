"""``RecordCandles``: given recorded candles, when a batch arrives, then only its new candles are recorded."""
from __future__ import annotations

import datetime as dt

import pytest

from market.commands import RecordCandles, record_candles
from market.errors import BatchTooLarge, InvalidCandle, UnknownPair, UnsupportedTimeframe
from market.events import CandlesRecorded
from market.state import PAIR_FEED
from tests.conftest import context

from .conftest import T0, candle, flat

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


def _record(*candles, pair: str = "BTC/USD", timeframe: str = "1h") -> RecordCandles:  # type: ignore[no-untyped-def]
    return RecordCandles(pair=pair, timeframe=timeframe, candles=tuple(candles))


def test_a_first_batch_is_recorded_in_time_order() -> None:
    decision = record_candles(None, _record(flat(T0 + H, "2"), flat(T0, "1")), context())
    assert decision.events == [CandlesRecorded(pair="BTC/USD", timeframe="1h",
                                               candles=(flat(T0, "1"), flat(T0 + H, "2")))]
    assert decision.result == {"recorded": 2, "skipped": 0}


def test_candles_already_covered_are_skipped_and_the_same_batch_twice_records_nothing() -> None:
    first = record_candles(None, _record(flat(T0, "1"), flat(T0 + H, "2")), context())
    feed = PAIR_FEED.fold(first.events)
    again = record_candles(feed, _record(flat(T0, "1"), flat(T0 + H, "2"), flat(T0 + 2 * H, "3")), context())
    assert again.result == {"recorded": 1, "skipped": 2}
    assert [c.open_time for c in again.events[0].candles] == [T0 + 2 * H]
    assert record_candles(PAIR_FEED.fold([*first.events, *again.events]),
                          _record(flat(T0 + 2 * H, "3")), context()).events == []


def test_minute_candles_inside_a_recorded_hour_are_skipped_so_timeframes_never_overlap() -> None:
    feed = PAIR_FEED.fold(record_candles(None, _record(flat(T0, "1")), context()).events)
    decision = record_candles(feed, _record(flat(T0 + 59 * M, "1"), flat(T0 + H, "1"), timeframe="1m"), context())
    assert decision.result == {"recorded": 1, "skipped": 1}


@pytest.mark.parametrize("bad", [
    candle(T0, "10", "9", "8", "9", "1"),          # open above high
    candle(T0, "10", "11", "10.5", "10.6", "1"),   # low above open
    candle(T0, "0", "1", "0", "1", "1"),           # zero low
    candle(T0, "1", "1", "1", "1", "-1"),          # negative volume
    candle(T0 + M, "1", "1", "1", "1", "1"),       # not on an hour
    candle(T0, "1.0000000000001", "2", "1", "1", "1"),  # 13 decimal places
])
def test_an_inconsistent_candle_refuses_the_whole_batch(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidCandle):
        record_candles(None, _record(flat(T0 + H, "1"), bad), context())


def test_unknown_pairs_timeframes_and_oversized_batches_are_refused() -> None:
    with pytest.raises(UnknownPair):
        record_candles(None, _record(flat(T0, "1"), pair="FOO/USD"), context())
    with pytest.raises(UnknownPair):  # the stream name is the canonical symbol, never an alias
        record_candles(None, _record(flat(T0, "1"), pair="btc-usd"), context())
    with pytest.raises(UnsupportedTimeframe):
        record_candles(None, _record(flat(T0, "1"), timeframe="4h"), context())
    with pytest.raises(BatchTooLarge):
        record_candles(None, _record(*[flat(T0 + i * M, "1") for i in range(1001)], timeframe="1m"), context())
