"""Performance over HTTP: the hand-computed example end to end, caching by scope, include=, owners only."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from rest_framework.test import APIClient

from cqrs_core.bus import command_bus
from cqrs_core.queries import query_bus
from market.commands import RecordCandles
from market.events import CandleData
from tests.api.support import assert_problem, written

pytestmark = pytest.mark.django_db(transaction=True)

PERFORMANCE, PORTFOLIO = "/api/portfolio/performance/", "/api/portfolio/"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def record_hourly(pair: str, closes: Iterable[tuple[dt.datetime, str]]) -> None:
    """Hourly candles that open and close at one price each."""
    candles = tuple(CandleData(open_time=t, open=Decimal(c), high=Decimal(c), low=Decimal(c), close=Decimal(c),
                               volume=Decimal(1)) for t, c in closes)
    command_bus.dispatch(RecordCandles(pair=pair, timeframe="1h", candles=candles))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[dt.datetime], None]:
    """Sets the time both buses see (events' ``recorded_at`` and the queries' ``now``)."""
    now = [T0]
    monkeypatch.setattr(command_bus, "clock", lambda: now[0])
    monkeypatch.setattr(query_bus, "clock", lambda: now[0])
    return lambda moment: now.__setitem__(0, moment)


def post(api: APIClient, path: str, body: dict[str, str]) -> int:
    response = api.post(path, body, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["position"])


def get_data(api: APIClient, path: str, **params: Any) -> dict[str, Any]:
    response = api.get(path, params)
    assert response.status_code == 200, response.content
    assert response.json()["stale"] is False
    return response.json()["data"]


def run_example(api: APIClient, clock: Callable[[dt.datetime], None]) -> int:
    """Deposit 10000, buy 0.1 BTC at 50000 (fee 5), BTC moves, withdraw 1000; returns the last position."""
    record_hourly("BTC/USD", [(at(0), "50000"), (at(1), "55000"), (at(2), "44000"), (at(3), "48400")])
    clock(at(0))
    post(api, "/api/portfolio/deposits/", {"amount": "10000"})
    clock(at(0.5))
    post(api, "/api/trading/trades/", {"pair": "BTC/USD", "side": "buy", "amount": "0.1", "price": "50000"})
    clock(at(2.5))
    position = post(api, "/api/portfolio/withdrawals/", {"amount": "1000"})
    clock(at(4))
    return position


def test_performance_of_the_hand_computed_example_from_the_event_store(api: APIClient, clock: Any) -> None:
    position = run_example(api, clock)
    data = get_data(api, PERFORMANCE, min_position=position)
    assert data["time_weighted_return_pct"] == "-1.1259"  # see test_performance_analytics
    assert Decimal(data["value"]) == Decimal("8835") and Decimal(data["net_flows"]) == Decimal("9000")
    assert data["returns_pct"] == {"1d": None, "7d": None, "30d": None}  # four hours of history
    assert data["since"] == "2026-01-01T00:00:00+00:00" and data["as_of"] == "2026-01-01T04:00:00+00:00"
    assert data["max_drawdown"]["percent"] == "-10.4812"  # 10495 at 02:00 down to 9395 before the withdrawal
    assert data["max_drawdown"]["peak_at"] == "2026-01-01T02:00:00+00:00"
    assert data["max_drawdown"]["trough_at"] == "2026-01-01T02:30:00+00:00"
    assert Decimal(data["max_drawdown"]["value"]) == Decimal("-1100")
    assert data["volatility"]["basis"] == "hourly" and data["volatility"]["observations"] == 4


def test_windows_fill_in_once_the_history_is_long_enough(api: APIClient, clock: Any) -> None:
    record_hourly("BTC/USD", [(at(h), "50000" if h < 30 else "51000") for h in range(48)])
    clock(at(0))
    post(api, "/api/portfolio/deposits/", {"amount": "10000"})
    post(api, "/api/trading/trades/", {"pair": "BTC/USD", "side": "buy", "amount": "0.1", "price": "50000"})
    clock(at(40))
    returns = get_data(api, PERFORMANCE)["returns_pct"]
    # 1d: from 16:00 on day one (9995 after the fee) to 9995 + 0.1 x 1000.
    assert returns == {"1d": str(((Decimal("10095") / Decimal("9995") - 1) * 100).quantize(Decimal("1e-4"))),
                       "7d": None, "30d": None}


def test_the_owners_command_invalidates_the_cached_performance(api: APIClient, clock: Any) -> None:
    position = run_example(api, clock)
    first = get_data(api, PERFORMANCE, min_position=position)
    assert get_data(api, PERFORMANCE) == first  # cached
    again = post(api, "/api/portfolio/deposits/", {"amount": "500"})
    after = get_data(api, PERFORMANCE, min_position=again)
    assert Decimal(after["net_flows"]) == Decimal("9500") and after["time_weighted_return_pct"] == "-1.1259"


def test_portfolio_includes_metrics_and_history_only_when_asked(api: APIClient, clock: Any) -> None:
    position = run_example(api, clock)
    plain = get_data(api, PORTFOLIO, min_position=position)
    assert "metrics" not in plain and "history" not in plain
    both = get_data(api, PORTFOLIO, include="history,metrics")
    assert {k: v for k, v in both.items() if k not in ("metrics", "history")} == plain
    performance = get_data(api, PERFORMANCE)
    assert both["metrics"] == {k: v for k, v in performance.items() if k not in ("user_id", "position")}
    assert [p["at"][11:16] for p in both["history"]] == ["00:00", "01:00", "02:00", "03:00", "04:00"]
    assert both["history"][-1]["time_weighted_return_pct"] == "-1.1259"
    assert "history" not in get_data(api, PORTFOLIO, include="metrics")


@pytest.mark.parametrize("include", ["bogus", "metrics,secrets"])
def test_unknown_includes_are_400(api: APIClient, include: str) -> None:
    body = assert_problem(api.get(PORTFOLIO, {"include": include}), 400, "validation_failed")
    assert "include" in body["errors"]


def test_history_is_bounded_by_the_setting(api: APIClient, clock: Any, settings: Any) -> None:
    settings.PORTFOLIO_HISTORY_MAX_POINTS = 3
    run_example(api, clock)
    assert [p["at"][11:16] for p in get_data(api, PORTFOLIO, include="history")["history"]] == [
        "01:00", "03:00", "04:00"]  # evenly spaced, the latest kept


def test_another_users_performance_is_404_and_staff_read_it(api: APIClient, bob_api: APIClient,
                                                             staff_api: APIClient, alice: AbstractUser) -> None:
    post(api, "/api/portfolio/deposits/", {"amount": "10"})
    before = written()
    assert_problem(bob_api.get(PERFORMANCE, {"user_id": alice.pk}), 404, "portfolio_not_found")
    assert_problem(bob_api.get(PORTFOLIO, {"user_id": alice.pk, "include": "metrics"}), 404, "portfolio_not_found")
    assert_problem(staff_api.get(PERFORMANCE, {"user_id": 987654}), 404, "portfolio_not_found")
    assert written() == before
    assert Decimal(get_data(staff_api, PERFORMANCE, user_id=alice.pk)["value"]) == Decimal(10)


def test_an_unused_portfolio_has_empty_performance(api: APIClient) -> None:
    data = get_data(api, PERFORMANCE)
    assert data["value"] == "0" and data["since"] is None and data["max_drawdown"] is None
    assert data["returns_pct"] == {"1d": None, "7d": None, "30d": None}
