"""The optimised portfolio as an asynchronous query: serve a fresh result, or start one computation.

* **Fresh** means at most ``PORTFOLIO_OPTIMIZATION_MAX_AGE_SECONDS`` old *and* computed at a
  portfolio position at or past the read model's (no trade or cash move since).
* **Otherwise** the first caller claims the computation with one conditional ``UPDATE`` of the
  user's ``OptimizedPortfolio`` row (the row lock in PostgreSQL, the write lock in SQLite make
  exactly one of concurrent callers win) and queues ``portfolio.optimize`` after commit; every
  caller gets ``status: computing`` with an estimated completion time (the mean duration of the
  last runs). A claim older than ``PORTFOLIO_OPTIMIZATION_TIMEOUT_SECONDS`` is presumed lost.
* **Where the result lives**: a table, not the cache. It must outlive cache evictions and
  restarts (a recomputation costs seconds of a worker), the claim needs an atomic conditional
  write that both databases give, and the durations behind the estimate are rows to average.
* **Eager Celery** (embedded mode) runs the task inside the first call; the answer is then the
  result itself (``ready``, 200): the status always says what is true when the answer is made.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import market, optimization
from .errors import OptimizationFailed
from .models import OptimizedPortfolio, Portfolio, Position
from .queries import valued

logger = logging.getLogger("ledgerline.portfolio")
Status = OptimizedPortfolio.Status
#: Estimated duration before any run has been timed, and how many recent runs the estimate averages.
DEFAULT_DURATION_MS, RECENT_RUNS = 2000, 20


@dataclass(frozen=True, kw_only=True)
class OptimizerSettings:
    max_age: dt.timedelta
    timeout: dt.timedelta
    universe: tuple[str, ...]
    cap: float
    lookback: dt.timedelta
    min_hours: int
    shrinkage: float
    risk_free: float


def optimizer_settings() -> OptimizerSettings:
    """The ``PORTFOLIO_OPTIMIZATION_*`` settings as configured now."""
    return OptimizerSettings(
        max_age=dt.timedelta(seconds=settings.PORTFOLIO_OPTIMIZATION_MAX_AGE_SECONDS),
        timeout=dt.timedelta(seconds=settings.PORTFOLIO_OPTIMIZATION_TIMEOUT_SECONDS),
        universe=tuple(settings.PORTFOLIO_OPTIMIZATION_UNIVERSE),
        cap=float(settings.PORTFOLIO_OPTIMIZATION_MAX_WEIGHT),
        lookback=dt.timedelta(hours=settings.PORTFOLIO_OPTIMIZATION_LOOKBACK_HOURS),
        min_hours=settings.PORTFOLIO_OPTIMIZATION_MIN_HOURS,
        shrinkage=float(settings.PORTFOLIO_OPTIMIZATION_SHRINKAGE),
        risk_free=float(settings.PORTFOLIO_RISK_FREE_RATE),
    )


def is_fresh(row: OptimizedPortfolio, position: int, now: dt.datetime, max_age: dt.timedelta) -> bool:
    return (row.result is not None and row.computed_at is not None and row.based_on_position is not None
            and now - row.computed_at <= max_age and row.based_on_position >= position)


def optimized_or_started(portfolio: Portfolio, now: dt.datetime) -> dict[str, Any]:
    """The fresh result of ``portfolio``'s owner, or the state of the computation this call started or found."""
    rules = optimizer_settings()
    row, _ = OptimizedPortfolio.objects.get_or_create(user_id=portfolio.user_id)
    if not is_fresh(row, portfolio.position, now, rules.max_age):
        start(portfolio.user_id, portfolio.position, now, rules.timeout)
        row.refresh_from_db()  # an eager task has already run; a worker's has not
    if is_fresh(row, portfolio.position, now, rules.max_age):
        return ready_answer(row, rules.max_age)
    if row.status == Status.FAILED:
        raise OptimizationFailed(user_id=row.user_id, reason=row.error)
    return computing_answer(row, portfolio, now)


def start(user_id: int, position: int, now: dt.datetime, timeout: dt.timedelta) -> bool:
    """Claim the user's computation unless one for this position is under way; queue it on commit."""
    from .tasks import optimize_portfolio

    running = Q(status=Status.COMPUTING, requested_at__gt=now - timeout, requested_position__gte=position)
    claim = uuid4()
    claimed = (OptimizedPortfolio.objects.filter(pk=user_id).exclude(running)
               .update(status=Status.COMPUTING, claim=claim, requested_at=now, requested_position=position))
    if claimed:
        transaction.on_commit(lambda: optimize_portfolio.delay(user_id, str(claim)))
    return bool(claimed)


def ready_answer(row: OptimizedPortfolio, max_age: dt.timedelta) -> dict[str, Any]:
    assert row.computed_at is not None
    return {"status": Status.READY.value, "user_id": row.user_id, "computed_at": row.computed_at,
            "fresh_until": row.computed_at + max_age, "based_on_position": row.based_on_position,
            "duration_ms": row.duration_ms, **(row.result or {})}


def computing_answer(row: OptimizedPortfolio, portfolio: Portfolio, now: dt.datetime) -> dict[str, Any]:
    expected = estimated_duration_ms()
    requested = row.requested_at or now
    return {"status": Status.COMPUTING.value, "user_id": row.user_id, "requested_at": requested,
            "estimated_duration_ms": expected,
            "estimated_completion_at": max(now, requested + dt.timedelta(milliseconds=expected)),
            "previous_computed_at": row.computed_at, "portfolio": current_portfolio(portfolio)}


def estimated_duration_ms() -> int:
    """The mean duration of the last runs (any user's); a default before the first."""
    recent = list(OptimizedPortfolio.objects.filter(duration_ms__isnull=False).order_by("-computed_at")
                  .values_list("duration_ms", flat=True)[:RECENT_RUNS])
    return round(sum(recent) / len(recent)) if recent else DEFAULT_DURATION_MS


def current_portfolio(portfolio: Portfolio) -> dict[str, Any]:
    positions = list(Position.objects.filter(portfolio_id=portfolio.user_id)) if portfolio.position else []
    return valued(portfolio, positions, market.snapshot())


# --- the computation (runs on a worker) ----------------------------------------------------------
def compute_and_store(user_id: int, claim: UUID) -> None:
    """Optimise the user's portfolio as the read model has it now and store the result.

    The result is stored whatever happened since the claim (it is true of the position it
    names); the status turns ``ready`` only if no newer claim replaced this one.
    """
    started, now = time.monotonic(), timezone.now()
    portfolio = Portfolio.objects.filter(pk=user_id).first() or Portfolio(user_id=user_id)
    try:
        result = optimise(current_portfolio(portfolio), now, optimizer_settings())
    except Exception as exc:  # recorded on the row: the caller is told, and the next call claims again
        logger.exception("optimisation of portfolio %s failed", user_id)
        OptimizedPortfolio.objects.filter(pk=user_id, claim=claim).update(status=Status.FAILED, error=str(exc)[:500])
        return
    duration = round((time.monotonic() - started) * 1000)
    stored = dict(result=result, computed_at=now, based_on_position=portfolio.position, duration_ms=duration,
                  error="")
    with transaction.atomic():
        if not OptimizedPortfolio.objects.filter(pk=user_id, claim=claim).update(status=Status.READY, **stored):
            OptimizedPortfolio.objects.filter(pk=user_id).update(**stored)


def optimise(current: dict[str, Any], now: dt.datetime, rules: OptimizerSettings) -> dict[str, Any]:
    """Today's allocation and the proposals, as JSON-ready data (Decimal strings).

    Held assets without enough price history are listed under ``unmodelled``; today's expected
    return and volatility count their share as cash (their risk cannot be estimated).
    """
    from market.queries import hourly_closes

    held = [line["asset"] for line in current["positions"] if line["quantity"] > 0]
    assets = sorted({*held, *rules.universe})
    closes = hourly_closes([market.pair_of(a) for a in assets], since=now - rules.lookback, until=now)
    est = optimization.estimate({a: closes[market.pair_of(a)] for a in assets if market.pair_of(a) in closes},
                                shrinkage=rules.shrinkage, min_observations=rules.min_hours)
    body: dict[str, Any] = {
        "assets": list(est.assets) if est else [], "unmodelled": sorted(set(held) - set(est.assets if est else ())),
        "observations": est.observations if est else 0, "max_weight": str(rules.cap),
        "risk_free_rate_pct": _pct(rules.risk_free),
    }
    if est is None:
        return {**body, "current": None, "proposals": {}, "reason": "not_enough_price_history"}
    weights = np.array([_share(current, a) for a in est.assets])
    proposals = {"min_variance": optimization.min_variance(est, cap=rules.cap),
                 "max_sharpe": optimization.max_sharpe(est, cap=rules.cap, risk_free=rules.risk_free)}
    return {**body, "current": _rendered(optimization.allocation(weights, est, risk_free=rules.risk_free),
                                         current, est),
            "proposals": {name: _rendered(optimization.allocation(w, est, risk_free=rules.risk_free), None, est)
                          for name, w in proposals.items()}}


def _share(current: dict[str, Any], asset: str) -> float:
    total = current["total_value"]
    line = next((p for p in current["positions"] if p["asset"] == asset), None)
    return float(line["market_value"] / total) if line and total else 0.0


def _rendered(alloc: optimization.Allocation, current: dict[str, Any] | None,
              est: optimization.Estimates) -> dict[str, Any]:
    """An allocation as percent strings; today's keeps its real weights (unmodelled assets included)."""
    if current is not None:
        weights = {k: str(v) for k, v in current["allocation"].items()}
    else:
        weights = {k: str(v) for k, v in optimization.percent_weights(alloc.weights).items()}
    return {"weights_pct": weights, "expected_return_pct": _pct(alloc.expected_return),
            "volatility_pct": _pct(alloc.volatility),
            "sharpe_ratio": None if alloc.sharpe is None else _places(alloc.sharpe)}


def _pct(share: float) -> str:
    return _places(share * 100)


def _places(number: float) -> str:
    """A float estimate as a Decimal string to 4 places (exactly what the float says, then rounded)."""
    return str(Decimal(repr(float(number))).quantize(optimization.PERCENT_PLACES))
