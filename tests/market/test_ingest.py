"""Loading the CSV and the simulated feed through the bus into candles and buckets; replay equals live."""
from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cqrs_core.models import StoredEvent
from cqrs_core.projections import rebuild
from market.events import CandlesRecorded
from market.ingest import SAMPLE_CSV, load_csv, simulate_minutes, tick
from market.models import Candle, PairHourBucket
from market.pairs import get_pair, known_pairs
from market.projections import CANDLES
from market.queries import latest_price, latest_prices

from .conftest import T0

pytestmark = pytest.mark.django_db(transaction=True)
BTC = get_pair("BTC/USD")


def _rows() -> tuple[Counter, Counter]:
    candles = Counter(Candle.objects.values_list("pair", "timeframe", "open_time", "open", "high", "low", "close",
                                                 "volume", "position"))
    buckets = Counter(PairHourBucket.objects.values_list(
        "pair", "hour", "open", "high", "low", "close", "volume", "quote_volume", "candles", "first_open_time",
        "last_open_time"))
    return candles, buckets


def test_loading_the_sample_csv_twice_records_its_rows_once() -> None:
    out = io.StringIO()
    call_command("load_market_csv", str(SAMPLE_CSV), stdout=out)
    assert "3360 candles recorded, 0 already there" in out.getvalue()
    assert "BTC/USD: +168 recorded" in out.getvalue()
    rows = _rows()
    report = load_csv(SAMPLE_CSV)
    assert (report.recorded, report.skipped) == (0, 3360)
    assert _rows() == rows
    assert Candle.objects.count() == 3360 and PairHourBucket.objects.count() == 3360
    assert StoredEvent.objects.filter(event_type=CandlesRecorded.event_type).count() == 20


def test_a_pair_filter_loads_only_that_pair_and_latest_price_reads_its_last_close() -> None:
    load_csv(SAMPLE_CSV, pair="btc-usd")
    assert set(Candle.objects.values_list("pair", flat=True)) == {"BTC/USD"}
    last_line = [line for line in SAMPLE_CSV.read_text().splitlines() if line.endswith(",BTC/USD")][-1]
    assert latest_price("BTC/USD") == Decimal(last_line.split(",")[4])
    assert latest_price("ETH/USD") is None and latest_price("NOPE/USD") is None
    assert "BTC/USD" in known_pairs() and "USDT/USD" in known_pairs() and len(known_pairs()) == 20


def test_latest_prices_answers_every_pair_in_one_query_as_latest_price_does(django_assert_num_queries) -> None:
    load_csv(SAMPLE_CSV)
    with django_assert_num_queries(1):
        prices = latest_prices()
    assert set(prices) == set(known_pairs())
    assert prices == {pair: latest_price(pair) for pair in known_pairs()}


def test_a_csv_without_a_pair_column_needs_the_pair(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "raw.csv"
    path.write_text("1767225600000,10,11,9,10.5,3\n1767229200000,10.5,12,10,11,4\n")
    with pytest.raises(CommandError, match="no pair column"):
        call_command("load_market_csv", str(path), stdout=io.StringIO())
    with pytest.raises(CommandError, match="unknown pair"):
        call_command("load_market_csv", str(path), "--pair", "NOPE/USD", stdout=io.StringIO())
    call_command("load_market_csv", str(path), "--pair", "SOL/USD", stdout=io.StringIO())
    assert list(Candle.objects.values_list("pair", "close")) == [("SOL/USD", Decimal("10.5")), ("SOL/USD", 11)]


def test_the_simulated_feed_appends_after_the_csv_and_a_tick_catches_up_to_now() -> None:
    load_csv(SAMPLE_CSV, pair="BTC/USD")
    end = Candle.objects.order_by("-open_time").first()
    assert end is not None
    report = simulate_minutes(90, seed=7, now=T0, pairs=[BTC])
    assert report.recorded == 90
    first = Candle.objects.filter(timeframe="1m").order_by("open_time").first()
    assert first is not None and first.open_time == end.open_time + dt.timedelta(hours=1) and first.open == end.close
    # 90 minutes from midnight: the 01:00 bucket holds 30 one-minute candles
    bucket = PairHourBucket.objects.get(pair="BTC/USD", hour=T0 + dt.timedelta(hours=1))
    assert bucket.candles == 30
    assert tick(T0 + dt.timedelta(minutes=95, seconds=30), seed=7, pairs=[BTC]).recorded == 5
    assert tick(T0 + dt.timedelta(minutes=95, seconds=50), seed=7, pairs=[BTC]).recorded == 0


def test_a_tick_after_a_long_outage_appends_at_most_max_candles() -> None:
    assert tick(T0, seed=7, max_candles=10, pairs=[BTC]).recorded == 10
    assert tick(T0 + dt.timedelta(days=1), seed=7, max_candles=10, pairs=[BTC]).recorded == 10
    assert Candle.objects.count() == 20


def test_rebuilding_the_projection_gives_the_rows_live_processing_gave() -> None:
    load_csv(SAMPLE_CSV, pair="ETH/USD", batch_size=50)
    simulate_minutes(130, seed=7, now=T0, pairs=[get_pair("ETH/USD"), get_pair("DAI/USD")])  # type: ignore[list-item]
    live = _rows()
    report = rebuild(CANDLES, batch_size=3)
    assert report.status == "running" and report.applied == StoredEvent.objects.filter(
        event_type=CandlesRecorded.event_type).count()
    assert _rows() == live
