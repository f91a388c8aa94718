"""Top coins from hourly buckets: orderings, filters, windows, and equality with a scan of raw candles."""
from __future__ import annotations

import datetime as dt
import decimal
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqrs_core.events import RecordedEvent
from market.analytics import WINDOWS
from market.events import CandleData, CandlesRecorded
from market.models import Candle, PairHourBucket
from market.pairs import get_pair
from market.projections import project_candles
from market.queries import GetTopCoins, get_top_coins
from tests.conftest import context

from .conftest import T0, candle, flat

H = dt.timedelta(hours=1)


def _ask(**kwargs) -> dict:  # type: ignore[no-untyped-def,type-arg]
    from cqrs_core.queries import QueryContext

    return get_top_coins(GetTopCoins(**kwargs), QueryContext(actor=context().actor, now=T0))


def _project(pair: str, candles: list[CandleData], position: int = 1, timeframe: str = "1h") -> None:
    event = CandlesRecorded(pair=pair, timeframe=timeframe, candles=tuple(candles))
    recorded = RecordedEvent(position=position, stream_id=f"market-{pair}", stream_version=position,
                             event_type=event.event_type, schema_version=1, data=event.to_data(),
                             metadata=None, recorded_at=T0)  # type: ignore[arg-type]
    project_candles(event, recorded)


def _series(pair: str, prices: list[str], volume: str = "1") -> None:
    _project(pair, [flat(T0 + i * H, p, volume) for i, p in enumerate(prices)])


@pytest.fixture
def market(db) -> None:  # type: ignore[no-untyped-def]
    """BTC: +10% on high volume; ETH: -20%; SOL: +50%, a wide range; USDT: flat, huge volume."""
    _project("BTC/USD", [candle(T0, "100", "101", "99", "100", "1000"), candle(T0 + H, "100", "111", "99", "110", "1000")])
    _project("ETH/USD", [candle(T0, "50", "51", "49", "50", "100"), candle(T0 + H, "50", "50", "39", "40", "100")])
    _project("SOL/USD", [candle(T0, "10", "16", "8", "10", "10"), candle(T0 + H, "10", "16", "9", "15", "10")])
    _project("USDT/USD", [flat(T0, "1", "9000000"), flat(T0 + H, "1", "9000000")])


def _pairs(answer: dict) -> list[str]:  # type: ignore[type-arg]
    return [row["pair"] for row in answer["results"]]


def test_by_volume_ranks_by_usd_volume_and_leaves_out_stablecoins(market: None) -> None:
    answer = _ask(sort="volume")
    assert _pairs(answer) == ["BTC/USD", "ETH/USD", "SOL/USD"]
    assert answer["as_of"] == T0 + H and answer["window_start"] == T0 + H - 23 * H
    btc = answer["results"][0]
    assert btc["quote_volume"] == Decimal("210000") and btc["volume"] == Decimal("2000")
    assert btc["price_change_pct"] == Decimal("10.0000") and btc["last_price"] == Decimal("110")
    assert _pairs(_ask(sort="volume", include_stablecoins=True))[0] == "USDT/USD"


def test_by_price_change_and_by_volatility_in_both_orders(market: None) -> None:
    assert _pairs(_ask(sort="price_change")) == ["SOL/USD", "BTC/USD", "ETH/USD"]
    assert _pairs(_ask(sort="price_change", descending=False)) == ["ETH/USD", "BTC/USD", "SOL/USD"]
    assert _pairs(_ask(sort="volatility")) == ["SOL/USD", "ETH/USD", "BTC/USD"]
    usdt = _ask(sort="volatility", include_stablecoins=True)["results"][-1]
    assert usdt["pair"] == "USDT/USD" and usdt["volatility_pct"] == 0


def test_min_volume_limit_and_window(market: None) -> None:
    assert _pairs(_ask(min_volume=Decimal("9000"))) == ["BTC/USD", "ETH/USD"]
    assert _pairs(_ask(limit=1)) == ["BTC/USD"]
    one_hour = _ask(window="1h", sort="price_change")
    assert {r["pair"]: r["price_change_pct"] for r in one_hour["results"]} == {
        "SOL/USD": Decimal("50.0000"), "BTC/USD": Decimal("10.0000"), "ETH/USD": Decimal("-20.0000")}
    assert all(r["hours"] == 1 for r in one_hour["results"])


def test_an_empty_market_has_no_top_coins(db) -> None:  # type: ignore[no-untyped-def]
    assert _ask()["results"] == [] and _ask()["as_of"] is None


# --- buckets against raw candles -----------------------------------------------------------------
PAIRS = ["BTC/USD", "ETH/USD", "USDC/USD"]
_price = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)


@st.composite
def candles(draw: st.DrawFn) -> CandleData:
    minute = draw(st.integers(min_value=0, max_value=9 * 24 * 60 - 1))
    a, b, c, d = sorted(draw(st.lists(_price, min_size=4, max_size=4)))
    open_, close = draw(st.permutations([b, c]))
    return CandleData(open_time=T0 + dt.timedelta(minutes=minute), open=open_, high=d, low=a, close=close,
                      volume=draw(st.decimals(min_value=0, max_value=Decimal("1e9"), places=8)))


def _brute_force(window: str, sort: str, limit: int, min_volume: Decimal, stable: bool) -> list[tuple]:  # type: ignore[type-arg]
    """Top coins straight from raw candle rows, with no bucket in sight."""
    rows = list(Candle.objects.values_list("pair", "open_time", "open", "high", "low", "close", "volume"))
    as_of = max(r[1] for r in rows).replace(minute=0)
    start = as_of - (WINDOWS[window] - 1) * H
    per_pair: dict[str, list] = defaultdict(list)  # type: ignore[type-arg]
    for row in rows:
        if start <= row[1].replace(minute=0) and (stable or not get_pair(row[0]).is_stablecoin):  # type: ignore[union-attr]
            per_pair[row[0]].append(row)
    ctx = decimal.Context(prec=40)
    results = []
    for pair, items in sorted(per_pair.items()):
        items.sort(key=lambda r: r[1])
        hourly: dict = defaultdict(list)  # type: ignore[type-arg]
        for r in items:
            hourly[r[1].replace(minute=0)].append(r)
        with decimal.localcontext(ctx):
            quote = sum((r[6] * r[5] for r in items), Decimal(0))
            change = ((items[-1][5] - items[0][2]) / items[0][2] * 100).quantize(Decimal("0.0001"))
            terms = [ctx.ln(max(r[3] for r in h) / min(r[4] for r in h)) ** 2 for h in hourly.values()]
            vol = ((sum(terms, Decimal(0)) / (4 * ctx.ln(Decimal(2)) * len(terms))).sqrt() * 100).quantize(
                Decimal("0.0001"))
        if quote >= min_volume:
            results.append((pair, quote, change, vol))
    key = {"volume": 1, "price_change": 2, "volatility": 3}[sort]
    return sorted(results, key=lambda r: r[key], reverse=True)[:limit]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), window=st.sampled_from(list(WINDOWS)),
       sort=st.sampled_from(["volume", "price_change", "volatility"]), limit=st.integers(1, 3),
       stable=st.booleans())
@pytest.mark.django_db
def test_bucket_based_top_coins_equal_a_scan_of_raw_candles(data, window, sort, limit, stable) -> None:  # type: ignore[no-untyped-def]
    Candle.objects.all().delete()
    PairHourBucket.objects.all().delete()
    for position, pair in enumerate(PAIRS, start=1):
        drawn = data.draw(st.lists(candles(), min_size=1, max_size=25, unique_by=lambda c: c.open_time))
        # batches in any order: a bucket must not depend on the order its candles arrive in
        for i, start in enumerate(range(0, len(drawn), 7)):
            _project(pair, drawn[start:start + 7], position * 100 + i, timeframe="1m")
    min_volume = data.draw(st.sampled_from([Decimal(0), Decimal("1e6")]))
    answer = _ask(window=window, sort=sort, limit=limit, min_volume=min_volume, include_stablecoins=stable)
    got = [(r["pair"], r["quote_volume"], r["price_change_pct"], r["volatility_pct"]) for r in answer["results"]]
    expected = [(p, q.quantize(Decimal("0.00000001")), c, v)
                for p, q, c, v in _brute_force(window, sort, limit, min_volume, stable)]
    assert got == expected
