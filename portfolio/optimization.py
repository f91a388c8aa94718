"""Portfolio optimisation, pure: mean-variance estimates from hourly closes, minimum variance and maximum Sharpe.

* **Estimates**: simple returns between consecutive hours that every modelled asset has a close
  for; mean and covariance annualised by 8760 hours. The covariance is shrunk towards its
  diagonal, ``(1 - s) S + s diag(S)``, which keeps it well conditioned on short histories.
* **Proposals**: long-only, each asset at most ``cap``, fully invested in the risky assets when
  the caps allow it (``n * cap >= 1``); otherwise the remainder is cash. Cash is the risk-free
  asset: it earns ``risk_free`` with no variance. Minimum variance minimises ``w' S w``; maximum
  Sharpe maximises ``(w' mu + cash rf - rf) / sqrt(w' S w)``. Both are solved by SciPy's SLSQP
  from equal weights (https://docs.scipy.org/doc/scipy/reference/optimize.minimize-slsqp.html).

Floats are fine here: weights and statistics are estimates, not money. They become Decimal
strings at the API boundary (:func:`percent_weights`).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from scipy.optimize import minimize

HOURS_PER_YEAR = 8760
PERCENT_PLACES = Decimal("1e-4")
CASH = "USD"


@dataclass(frozen=True)
class Estimates:
    """Annualised expected returns and (shrunk) covariance of ``assets``, from ``observations`` returns."""

    assets: tuple[str, ...]
    mean: np.ndarray
    cov: np.ndarray
    observations: int


@dataclass(frozen=True)
class Allocation:
    """Weights (shares of the whole portfolio, cash included) and their annualised statistics."""

    weights: dict[str, float]
    expected_return: float
    volatility: float
    sharpe: float | None


def estimate(closes: Mapping[str, Sequence[tuple[dt.datetime, Decimal]]], *, shrinkage: float,
             min_observations: int) -> Estimates | None:
    """Estimates over the assets whose hours overlap for at least ``min_observations`` returns.

    Assets with the shortest histories are dropped first until the common hours suffice; None
    when no asset has enough.
    """
    series = {asset: dict(rows) for asset, rows in closes.items() if len(rows) > min_observations}
    while series:
        hours = sorted(set.intersection(*(set(s) for s in series.values())))
        if len(hours) > min_observations:
            break
        del series[min(series, key=lambda a: (len(series[a]), a))]
    if not series:
        return None
    assets = tuple(sorted(series))
    prices = np.array([[float(series[a][h]) for a in assets] for h in hours])
    returns = prices[1:] / prices[:-1] - 1
    sample = np.atleast_2d(np.cov(returns, rowvar=False))
    shrunk = (1 - shrinkage) * sample + shrinkage * np.diag(np.diag(sample))
    return Estimates(assets, returns.mean(axis=0) * HOURS_PER_YEAR, shrunk * HOURS_PER_YEAR, len(returns))


def statistics(weights: np.ndarray, est: Estimates, *, risk_free: float) -> tuple[float, float, float | None]:
    """Expected return, volatility and Sharpe ratio of risky ``weights``, the rest held as cash."""
    cash = 1 - float(weights.sum())
    expected = float(weights @ est.mean) + cash * risk_free
    volatility = float(np.sqrt(max(weights @ est.cov @ weights, 0.0)))
    sharpe = (expected - risk_free) / volatility if volatility > 1e-12 else None
    return expected, volatility, sharpe


def invested_share(n: int, cap: float) -> float:
    """How much of the portfolio the caps let the risky assets hold."""
    return min(1.0, n * cap)


def min_variance(est: Estimates, *, cap: float) -> np.ndarray:
    """Long-only, capped weights of least variance."""
    return _solve(est, cap, lambda w: float(w @ est.cov @ w))


def max_sharpe(est: Estimates, *, cap: float, risk_free: float) -> np.ndarray:
    """Long-only, capped weights of the highest Sharpe ratio (cash as the risk-free asset)."""
    excess = est.mean - risk_free

    def negative_sharpe(w: np.ndarray) -> float:
        return -float(w @ excess) / float(np.sqrt(max(w @ est.cov @ w, 1e-18)))

    return _solve(est, cap, negative_sharpe)


def _solve(est: Estimates, cap: float, objective: object) -> np.ndarray:
    n = len(est.assets)
    total = invested_share(n, cap)
    start = np.full(n, total / n)
    solution = minimize(objective, start, method="SLSQP", bounds=[(0.0, cap)] * n,
                        constraints=[{"type": "eq", "fun": lambda w: float(w.sum()) - total}],
                        options={"ftol": 1e-12, "maxiter": 500})
    weights = np.clip(solution.x if solution.success else start, 0.0, cap)
    return weights * (total / weights.sum()) if weights.sum() > 0 else start


def allocation(weights: np.ndarray, est: Estimates, *, risk_free: float) -> Allocation:
    """Risky ``weights`` with cash taking the rest, and their statistics."""
    expected, volatility, sharpe = statistics(weights, est, risk_free=risk_free)
    shares = {asset: float(w) for asset, w in zip(est.assets, weights, strict=True)}
    shares[CASH] = max(0.0, 1 - float(weights.sum()))
    return Allocation(shares, expected, volatility, sharpe)


def percent_weights(weights: Mapping[str, float]) -> dict[str, Decimal]:
    """Weights as percentages to 4 places summing to exactly 100 (largest remainders get the rounding)."""
    unit = PERCENT_PLACES
    scaled = {k: Decimal(repr(max(float(v), 0.0))) * 100 / unit for k, v in weights.items()}
    total = sum(scaled.values(), Decimal(0))
    if not total:
        return {k: Decimal(0).quantize(unit) for k in weights}
    scaled = {k: v * (100 / unit) / total for k, v in scaled.items()}
    floors = {k: int(v) for k, v in scaled.items()}
    short = int(100 / unit) - sum(floors.values())
    for k in sorted(scaled, key=lambda k: (floors[k] - scaled[k], k))[:short]:
        floors[k] += 1
    return {k: (Decimal(v) * unit).quantize(unit) for k, v in floors.items()}
