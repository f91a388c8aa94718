"""A process keeps its latest prices: it asks the cache whether they moved at most once per recheck window."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import market.queries
from market.ingest import simulate_minutes
from market.models import Candle
from market.pairs import get_pair
from market.projections import PRICES_SCOPE
from market.queries import latest_prices

pytestmark = pytest.mark.django_db(transaction=True)
BTC = get_pair("BTC/USD")
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)


@pytest.fixture
def version_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scope-version read of ``latest_prices``, counted."""
    reads: list[str] = []
    real = market.queries.scope_version

    def counted(scope: str) -> str | None:
        reads.append(scope)
        return real(scope)

    monkeypatch.setattr(market.queries, "scope_version", counted)
    return reads


def _another_process_moves_btc(close: str) -> None:
    """A candle written elsewhere: the rows and the scope's version move, this process's kept answer does not."""
    from cqrs_core.queries import _bump

    last = Candle.objects.filter(pair="BTC/USD").order_by("-open_time").first()
    Candle.objects.filter(pk=last.pk).update(close=Decimal(close))
    _bump(PRICES_SCOPE)


def test_within_the_window_the_kept_prices_are_served_without_asking(settings, version_reads: list[str]) -> None:
    settings.MARKET_PRICES_RECHECK_SECONDS = 60
    simulate_minutes(3, seed=1, now=NOW, pairs=[BTC])
    first = latest_prices()

    assert [latest_prices() for _ in range(3)] == [first] * 3
    assert version_reads == [PRICES_SCOPE]


def test_a_change_elsewhere_shows_once_the_window_is_over(settings, version_reads: list[str]) -> None:
    settings.MARKET_PRICES_RECHECK_SECONDS = 60
    simulate_minutes(3, seed=1, now=NOW, pairs=[BTC])
    before = latest_prices()["BTC/USD"]
    _another_process_moves_btc("12345.6")

    assert latest_prices()["BTC/USD"] == before  # kept: within the window nobody asked
    settings.MARKET_PRICES_RECHECK_SECONDS = 0
    assert latest_prices()["BTC/USD"] == Decimal("12345.6")


def test_candles_projected_in_this_process_show_at_once(settings) -> None:
    """The projection drops its own process's kept prices when it commits new candles (eager mode here)."""
    settings.MARKET_PRICES_RECHECK_SECONDS = 60
    simulate_minutes(3, seed=1, now=NOW, pairs=[BTC])
    latest_prices()
    simulate_minutes(2, seed=2, now=NOW, pairs=[BTC])

    newest = Candle.objects.filter(pair="BTC/USD").order_by("-open_time").values_list("close", flat=True).first()
    assert latest_prices()["BTC/USD"] == newest
