"""The optimiser, pure: estimates from closes, capped long-only weights, minimum variance and maximum Sharpe."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from portfolio.optimization import (
    HOURS_PER_YEAR, Estimates, allocation, estimate, max_sharpe, min_variance, percent_weights, statistics,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
#: Annualised: three assets with known volatilities 20 %, 40 %, 60 % and some correlation.
VOLS = np.array([0.2, 0.4, 0.6])
CORR = np.array([[1.0, 0.3, 0.2], [0.3, 1.0, 0.5], [0.2, 0.5, 1.0]])
KNOWN = Estimates(("A", "B", "C"), np.array([0.05, 0.15, 0.30]), np.outer(VOLS, VOLS) * CORR, 1000)


def closes(seed: int, assets: dict[str, int]) -> dict[str, list[tuple[dt.datetime, Decimal]]]:
    """Random-walk hourly closes, ``assets`` mapping each asset to its number of hours (all ending together)."""
    rng = np.random.default_rng(seed)
    longest = max(assets.values())
    out = {}
    for asset, hours in assets.items():
        prices = 100 * np.cumprod(1 + rng.normal(0.0002, 0.01, hours))
        out[asset] = [(T0 + dt.timedelta(hours=longest - hours + h), Decimal(f"{p:.6f}")) for h, p in enumerate(prices)]
    return out


def feasible(weights: np.ndarray, cap: float, total: float = 1.0) -> None:
    assert weights.sum() == pytest.approx(total, abs=1e-9)
    assert (weights >= -1e-12).all() and (weights <= cap + 1e-9).all()


@pytest.mark.parametrize("cap", [0.4, 0.5, 1.0])
def test_weights_sum_to_one_are_long_only_and_respect_the_cap(cap: float) -> None:
    feasible(min_variance(KNOWN, cap=cap), cap)
    feasible(max_sharpe(KNOWN, cap=cap, risk_free=0.04), cap)


def test_caps_that_cannot_hold_everything_leave_the_rest_in_cash() -> None:
    weights = min_variance(KNOWN, cap=0.25)
    feasible(weights, 0.25, total=0.75)
    assert allocation(weights, KNOWN, risk_free=0.04).weights["USD"] == pytest.approx(0.25)


def test_minimum_variance_beats_or_equals_the_current_allocation_and_any_feasible_one() -> None:
    best = min_variance(KNOWN, cap=0.6)
    variance = best @ KNOWN.cov @ best
    current = np.array([0.3, 0.4, 0.3])
    assert variance <= current @ KNOWN.cov @ current + 1e-12
    rng = np.random.default_rng(1)
    for _ in range(300):
        w = rng.dirichlet(np.ones(3))
        if (w <= 0.6).all():
            assert variance <= w @ KNOWN.cov @ w + 1e-10
    # Uncapped, the two-asset closed form: w_A = (s_B^2 - c) / (s_A^2 + s_B^2 - 2c) on {A, B}.
    pair = Estimates(("A", "B"), KNOWN.mean[:2], KNOWN.cov[:2, :2], 1000)
    s_a, s_b, c = pair.cov[0, 0], pair.cov[1, 1], pair.cov[0, 1]
    assert min_variance(pair, cap=1.0)[0] == pytest.approx((s_b - c) / (s_a + s_b - 2 * c), abs=1e-6)


def test_maximum_sharpe_beats_or_equals_minimum_variance_and_the_current_allocation() -> None:
    sharpe = statistics(max_sharpe(KNOWN, cap=0.6, risk_free=0.04), KNOWN, risk_free=0.04)[2]
    for other in (min_variance(KNOWN, cap=0.6), np.array([0.3, 0.4, 0.3]), np.array([0.6, 0.4, 0.0])):
        assert sharpe >= statistics(other, KNOWN, risk_free=0.04)[2] - 1e-9


def test_statistics_of_a_known_allocation() -> None:
    expected, volatility, sharpe = statistics(np.array([0.5, 0.0, 0.0]), KNOWN, risk_free=0.04)
    assert expected == pytest.approx(0.5 * 0.05 + 0.5 * 0.04)
    assert volatility == pytest.approx(0.1)
    assert sharpe == pytest.approx((expected - 0.04) / 0.1)
    assert statistics(np.zeros(3), KNOWN, risk_free=0.04) == (pytest.approx(0.04), 0.0, None)


def test_estimates_are_annualised_and_shrunk_towards_the_diagonal() -> None:
    data = closes(7, {"BTC": 300, "ETH": 300})
    plain = estimate(data, shrinkage=0.0, min_observations=48)
    shrunk = estimate(data, shrinkage=0.5, min_observations=48)
    assert plain is not None and shrunk is not None
    prices = np.array([[float(p) for _, p in data[a]] for a in ("BTC", "ETH")]).T
    returns = prices[1:] / prices[:-1] - 1
    assert plain.assets == ("BTC", "ETH") and plain.observations == 299
    assert np.allclose(plain.mean, returns.mean(axis=0) * HOURS_PER_YEAR)
    assert np.allclose(plain.cov, np.cov(returns, rowvar=False) * HOURS_PER_YEAR)
    assert np.allclose(np.diag(shrunk.cov), np.diag(plain.cov))
    assert shrunk.cov[0, 1] == pytest.approx(plain.cov[0, 1] / 2)


def test_assets_with_too_short_a_history_are_dropped() -> None:
    est = estimate(closes(3, {"BTC": 200, "ETH": 200, "NEW": 20}), shrinkage=0.1, min_observations=48)
    assert est is not None and est.assets == ("BTC", "ETH") and est.observations == 199
    assert estimate(closes(3, {"NEW": 20}), shrinkage=0.1, min_observations=48) is None


def test_percent_weights_are_exact_decimals_summing_to_one_hundred() -> None:
    weights = percent_weights({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})
    assert sum(weights.values()) == Decimal("100.0000")
    assert sorted(weights.values()) == [Decimal("33.3333"), Decimal("33.3333"), Decimal("33.3334")]
    assert percent_weights({"A": 0.0, "B": 0.0}) == {"A": Decimal("0.0000"), "B": Decimal("0.0000")}
