"""The optimised portfolio as an asynchronous query: 202 computing, one computation, 200 with the result.

Tasks are captured instead of run (``queued``) where the test plays the worker; the eager tests
show the embedded mode, where the first call computes inline and answers 200.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import AbstractUser
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from portfolio import optimized
from portfolio.models import OptimizedPortfolio
from portfolio.tasks import optimize_portfolio
from tests.api.support import assert_problem

from .test_performance_api import post, record_hourly

pytestmark = pytest.mark.django_db(transaction=True)

OPTIMIZED = "/api/portfolio/optimized/"
HOURS = 60
START = {"BTC/USD": 50000, "ETH/USD": 2500, "SOL/USD": 100, "BNB/USD": 580}


@pytest.fixture(autouse=True)
def price_history(settings: Any) -> None:
    """60 hourly closes of the universe's pairs up to the current hour, each its own random walk."""
    settings.PORTFOLIO_OPTIMIZATION_MIN_HOURS = 24
    settings.PORTFOLIO_OPTIMIZATION_UNIVERSE = ["BTC", "ETH", "SOL", "BNB"]
    settings.PORTFOLIO_OPTIMIZATION_MAX_WEIGHT = "0.5"
    last = timezone.now().replace(minute=0, second=0, microsecond=0)
    rng = np.random.default_rng(11)
    for pair, start in START.items():
        walk = start * np.cumprod(1 + rng.normal(0.0005, 0.01, HOURS))
        record_hourly(pair, [(last - dt.timedelta(hours=HOURS - 1 - h), f"{p:.2f}") for h, p in enumerate(walk)])


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The optimisation tasks sent, captured: no worker runs them until the test does."""
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(optimize_portfolio, "delay", lambda *args: sent.append(args))
    return sent


def run_worker(queued: list[tuple[Any, ...]]) -> None:
    """Play the worker: run every captured task, as a worker would, then forget them."""
    for args in queued:
        optimize_portfolio.apply(args=args).get(disable_sync_subtasks=False)  # an eager result: never blocks
    queued.clear()


def invest(api: APIClient) -> int:
    post(api, "/api/portfolio/deposits/", {"amount": "10000"})
    return post(api, "/api/trading/trades/", {"pair": "BTC/USD", "side": "buy", "amount": "0.1", "price": "50000"})


def get(api: APIClient, **params: Any) -> Any:
    response = api.get(OPTIMIZED, params)
    assert response.status_code in (200, 202), response.content
    return response


def assert_proposal(proposal: dict[str, Any], cap: Decimal = Decimal(50)) -> None:
    weights = {k: Decimal(v) for k, v in proposal["weights_pct"].items()}
    assert sum(weights.values()) == Decimal(100)
    assert all(Decimal(0) <= w <= cap for k, w in weights.items() if k != "USD")
    assert Decimal(proposal["volatility_pct"]) >= 0 and Decimal(proposal["expected_return_pct"])


def test_first_call_is_202_computing_then_200_with_the_result(api: APIClient, alice: AbstractUser,
                                                               queued: list[tuple[Any, ...]]) -> None:
    position = invest(api)
    first = get(api, min_position=position)
    assert first.status_code == 202 and first["Location"].endswith(OPTIMIZED) and int(first["Retry-After"]) >= 1
    body = first.json()["data"]
    assert body["status"] == "computing" and body["user_id"] == alice.pk
    # The read model's position: the trade's PortfolioImpacted (the command's last event) changes no row.
    assert body["portfolio"]["cash"] == "4995.000000000000000000" and 0 < body["portfolio"]["position"] <= position
    assert body["estimated_duration_ms"] == optimized.DEFAULT_DURATION_MS  # no run timed yet
    assert dt.datetime.fromisoformat(body["estimated_completion_at"]) >= dt.datetime.fromisoformat(
        body["requested_at"])
    assert len(queued) == 1 and queued[0][0] == alice.pk

    run_worker(queued)
    ready = get(api)
    assert ready.status_code == 200
    result = ready.json()["data"]
    assert result["status"] == "ready" and result["based_on_position"] == body["portfolio"]["position"]
    assert result["assets"] == ["BNB", "BTC", "ETH", "SOL"] and result["observations"] == HOURS - 1
    assert result["current"]["weights_pct"] == body["portfolio"]["allocation"]
    assert set(result["proposals"]) == {"min_variance", "max_sharpe"}
    for proposal in result["proposals"].values():
        assert_proposal(proposal)
    min_variance, current = result["proposals"]["min_variance"], result["current"]
    assert Decimal(min_variance["volatility_pct"]) > 0 and Decimal(current["volatility_pct"]) > 0
    assert isinstance(result["duration_ms"], int) and not queued


def test_concurrent_calls_start_one_computation(api: APIClient, queued: list[tuple[Any, ...]]) -> None:
    invest(api)
    assert [get(api).status_code for _ in range(3)] == [202, 202, 202]
    assert len(queued) == 1


def test_claims_race_and_exactly_one_wins(alice: AbstractUser, queued: list[tuple[Any, ...]]) -> None:
    OptimizedPortfolio.objects.create(user_id=alice.pk)
    now, barrier, wins = timezone.now(), threading.Barrier(4), []

    def claim() -> None:
        try:
            barrier.wait()
            wins.append(optimized.start(alice.pk, 7, now, dt.timedelta(minutes=2)))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True] and len(queued) == 1


def test_a_trade_makes_the_result_stale_and_the_next_call_recomputes(api: APIClient,
                                                                     queued: list[tuple[Any, ...]]) -> None:
    invest(api)
    get(api)
    run_worker(queued)
    before = get(api)
    assert before.status_code == 200
    position = post(api, "/api/trading/trades/", {"pair": "BTC/USD", "side": "sell", "amount": "0.05",
                                                  "price": "50000"})
    stale = get(api, min_position=position)
    assert stale.status_code == 202 and stale.json()["data"]["previous_computed_at"] is not None
    assert len(queued) == 1
    run_worker(queued)
    again = get(api).json()["data"]
    assert again["status"] == "ready" and before.json()["data"]["based_on_position"] < again["based_on_position"]
    assert again["based_on_position"] == api.get("/api/portfolio/").json()["data"]["position"]


def test_a_result_older_than_five_minutes_is_recomputed(api: APIClient, alice: AbstractUser,
                                                        queued: list[tuple[Any, ...]]) -> None:
    invest(api)
    get(api)
    run_worker(queued)
    old = timezone.now() - dt.timedelta(minutes=5, seconds=1)
    OptimizedPortfolio.objects.filter(pk=alice.pk).update(computed_at=old)
    assert get(api).status_code == 202 and len(queued) == 1
    run_worker(queued)
    assert get(api).status_code == 200


def test_a_lost_computation_is_claimed_again_after_the_timeout(api: APIClient, alice: AbstractUser,
                                                               queued: list[tuple[Any, ...]]) -> None:
    invest(api)
    get(api)
    queued.clear()  # the worker died with the message
    assert get(api).status_code == 202 and not queued
    OptimizedPortfolio.objects.filter(pk=alice.pk).update(requested_at=timezone.now() - dt.timedelta(minutes=3))
    assert get(api).status_code == 202 and len(queued) == 1


def test_embedded_mode_computes_inline_and_answers_ready(api: APIClient) -> None:
    position = invest(api)
    response = get(api, min_position=position)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["status"] == "ready"
    assert data["based_on_position"] == api.get("/api/portfolio/").json()["data"]["position"]
    assert_proposal(data["proposals"]["max_sharpe"])
    second = get(api)
    assert second.status_code == 200 and second.json()["data"]["computed_at"] == data["computed_at"]


def test_the_estimate_is_the_mean_of_recent_durations(api: APIClient, bob: AbstractUser,
                                                      queued: list[tuple[Any, ...]]) -> None:
    now = timezone.now()
    for user_id, duration in ((1001, 400), (1002, 600)):
        OptimizedPortfolio.objects.create(user_id=user_id, duration_ms=duration, computed_at=now)
    invest(api)
    body = get(api).json()["data"]
    assert body["estimated_duration_ms"] == 500
    requested = dt.datetime.fromisoformat(body["requested_at"])
    assert dt.datetime.fromisoformat(body["estimated_completion_at"]) == requested + dt.timedelta(milliseconds=500)


def test_a_failed_computation_is_reported_and_the_next_call_retries(api: APIClient,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    invest(api)
    real: Callable[..., Any] = optimized.optimise
    monkeypatch.setattr(optimized, "optimise", lambda *a: 1 / 0)
    assert_problem(api.get(OPTIMIZED), 503, "optimization_failed")
    monkeypatch.setattr(optimized, "optimise", real)
    assert get(api).status_code == 200


def test_without_price_history_the_result_says_so(api: APIClient, settings: Any) -> None:
    settings.PORTFOLIO_OPTIMIZATION_MIN_HOURS = 500
    invest(api)
    data = get(api).json()["data"]
    assert data["status"] == "ready" and data["reason"] == "not_enough_price_history" and data["assets"] == []
    assert data["unmodelled"] == ["BTC"] and data["proposals"] == {}


def test_another_users_optimisation_is_404_and_starts_nothing(api: APIClient, bob_api: APIClient,
                                                              staff_api: APIClient, alice: AbstractUser,
                                                              queued: list[tuple[Any, ...]]) -> None:
    invest(api)
    assert_problem(bob_api.get(OPTIMIZED, {"user_id": alice.pk}), 404, "portfolio_not_found")
    assert_problem(staff_api.get(OPTIMIZED, {"user_id": 987654}), 404, "portfolio_not_found")
    assert_problem(bob_api.get(OPTIMIZED, {"user_id": "x"}), 400, "validation_failed")
    assert not OptimizedPortfolio.objects.exists() and not queued
    assert staff_api.get(OPTIMIZED, {"user_id": alice.pk}).status_code == 202 and len(queued) == 1
