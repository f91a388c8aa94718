"""The simulated feed: deterministic, well-formed, and roughly the random walk it claims to be."""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

from market.commands import check_candle
from market.pairs import PAIRS, get_pair
from market.simulation import simulate

from .conftest import T0

BTC, USDT = get_pair("BTC/USD"), get_pair("USDT/USD")


def test_the_same_seed_gives_the_same_candles() -> None:
    assert BTC is not None
    assert simulate(BTC, seed=1, start=T0, count=50) == simulate(BTC, seed=1, start=T0, count=50)
    assert simulate(BTC, seed=1, start=T0, count=50) != simulate(BTC, seed=2, start=T0, count=50)


def test_a_run_split_in_two_gives_the_same_candles_as_one_run() -> None:
    assert BTC is not None
    whole = simulate(BTC, seed=3, start=T0, count=40, timeframe="1m")
    first = simulate(BTC, seed=3, start=T0, count=15, timeframe="1m")
    rest = simulate(BTC, seed=3, start=T0 + dt.timedelta(minutes=15), count=25, timeframe="1m",
                    previous_close=first[-1].close)
    assert first + rest == whole


def test_every_candle_is_consistent_decimal_and_continues_the_previous_close() -> None:
    for pair in PAIRS:
        candles = simulate(pair, seed=5, start=T0, count=48)
        for before, after in zip(candles, candles[1:]):
            assert after.open == before.close
            assert after.open_time - before.open_time == dt.timedelta(hours=1)
        for c in candles:
            check_candle(c, "1h")
            assert all(isinstance(v, Decimal) for v in (c.open, c.high, c.low, c.close, c.volume))
            assert -c.close.as_tuple().exponent <= pair.price_places  # type: ignore[operator]


def test_log_returns_have_about_the_configured_volatility_and_no_drift() -> None:
    assert BTC is not None
    closes = [float(c.close) for c in simulate(BTC, seed=11, start=T0, count=2000)]
    returns = [math.log(b / a) for a, b in zip(closes, closes[1:])]
    mean = sum(returns) / len(returns)
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    assert abs(sd - float(BTC.sigma)) < 0.15 * float(BTC.sigma)
    assert abs(mean) < 4 * float(BTC.sigma) / math.sqrt(len(returns))


def test_stablecoins_stay_near_one() -> None:
    assert USDT is not None
    candles = simulate(USDT, seed=9, start=T0, count=500)
    assert all(Decimal("0.99") < c.low <= c.high < Decimal("1.01") for c in candles)


def test_the_shipped_csv_is_what_the_generator_writes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import call_command

    from market.ingest import SAMPLE_CSV

    out = tmp_path / "sample.csv"
    call_command("generate_market_csv", str(out), stdout=open(tmp_path / "log", "w"))
    assert out.read_bytes() == SAMPLE_CSV.read_bytes()
    assert SAMPLE_CSV.stat().st_size < 400_000
