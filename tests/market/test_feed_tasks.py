"""The demo loader, the beat tick and the simulate command; top coins never scans raw candles."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cqrs_core.queries import query_bus
from market import demo
from market.ingest import SAMPLE_CSV, load_csv
from market.models import Candle
from market.queries import GetTopCoins
from market.tasks import tick_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_loader_loads_the_sample_once() -> None:
    out = io.StringIO()
    demo.load(out)
    demo.load(out)
    assert "3360 candles recorded, 0 already there (20 pairs)" in out.getvalue()
    assert "0 candles recorded, 3360 already there" in out.getvalue()
    assert Candle.objects.count() == 3360


def test_the_beat_tick_appends_closed_minutes_only_when_the_feed_is_on(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MARKET_SIMULATED_FEED = False
    assert tick_task() == 0
    settings.MARKET_SIMULATED_FEED, settings.MARKET_TICK_MAX_CANDLES = True, 3
    assert tick_task() == 60
    assert not Candle.objects.filter(open_time__gt=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).exists()


def test_simulate_market_appends_n_minutes_to_every_pair() -> None:
    out = io.StringIO()
    call_command("simulate_market", "--minutes", "5", stdout=out)
    assert "100 candles recorded" in out.getvalue() and "BTC/USD: +5" in out.getvalue()
    assert Candle.objects.filter(timeframe="1m").count() == 100


def test_top_coins_reads_buckets_not_candles() -> None:
    load_csv(SAMPLE_CSV)
    with CaptureQueriesContext(connection) as queries:
        answer = query_bus.ask(GetTopCoins(window="7d"))
    assert len(answer.data["results"]) == 17
    assert not [q["sql"] for q in queries.captured_queries if "market_candle" in q["sql"]]
