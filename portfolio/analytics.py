"""Portfolio performance, pure: value history, time-weighted returns, volatility and drawdown.

Inputs are the portfolio's own moves (from the events of ``portfolio-<user_id>``) and the
market's hourly closes; nothing here reads the database. The definitions callers see:

* **Value at an instant t**: cash plus every holding marked at the close of its pair's latest
  hourly bucket that opened before t (at a bucket's end that is its exact close; inside the hour
  in progress, the latest recorded close, i.e. the live price). An asset with no close before t
  is marked at its last trade price.
* **Points**: hourly instants anchored on ``as_of`` (``as_of``, ``as_of - 1h``, ...) back to the
  first cash flow, plus one point at every event's instant, so flows never fall inside a step.
* **Time-weighted return**: deposits and withdrawals (flows) happen at an instant; the step from
  point a to point b returns ``(V_b - F_b) / V_a - 1`` where ``F_b`` is the net flow at b. Steps
  from a zero value return nothing (there was nothing to earn on). Trades and fees are not flows:
  buying at a price above the mark or paying a fee is a loss. The index chains the steps.
* **Window returns** (1d, 7d, 30d): the index's growth from ``as_of - window`` to ``as_of``;
  ``None`` when the first flow is later than ``as_of - window`` (history shorter than the window).
* **Volatility**: sample standard deviation of the hourly returns (between hourly points) of the
  last 30 days, annualised by ``sqrt(8760)`` (crypto trades every hour of the year); ``None``
  with fewer than two hourly returns.
* **Maximum drawdown**: the deepest fall of the index from a running peak, over the whole
  history analysed; ``value`` is the market loss between peak and trough in USD, flows excluded
  (``V_trough - V_peak - net flows in between``); with the peak, trough and recovery instants.
"""
from __future__ import annotations

import bisect
import datetime as dt
import decimal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cqrs_core.events import RecordedEvent
from trading.events import BUY, TradeExecuted

from .events import FundsDeposited, FundsWithdrawn

HOUR = dt.timedelta(hours=1)
HOURS_PER_YEAR = 8760
WINDOWS: dict[str, dt.timedelta] = {"1d": dt.timedelta(days=1), "7d": dt.timedelta(days=7),
                                    "30d": dt.timedelta(days=30)}
VOLATILITY_WINDOW = dt.timedelta(days=30)
PERCENT_PLACES = Decimal("1e-4")
MONEY_PLACES = Decimal("1e-18")
ZERO = Decimal(0)
#: Quantities have 18 places and prices 12: products need more digits than the default 28.
_EXACT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)

#: Hourly closes per asset, ``(hour the bucket opened, close)``, oldest first.
PriceHistory = Mapping[str, Sequence[tuple[dt.datetime, Decimal]]]


@dataclass(frozen=True)
class Move:
    """One change to the portfolio at an instant; ``flow`` is the external part (deposit +, withdrawal -)."""

    at: dt.datetime
    cash: Decimal
    flow: Decimal = ZERO
    asset: str | None = None
    quantity: Decimal = ZERO
    price: Decimal | None = None


@dataclass(frozen=True)
class Point:
    """The portfolio at an instant: value, the flow at that instant and the time-weighted index."""

    at: dt.datetime
    value: Decimal
    flow: Decimal
    net_flows: Decimal
    index: Decimal
    hourly: bool


def moves_from(events: Iterable[RecordedEvent]) -> list[Move]:
    """The cash flows and trades of a portfolio stream, in stream order (other events move nothing)."""
    moves = []
    for recorded in events:
        event = recorded.event
        match event:
            case FundsDeposited():
                moves.append(Move(recorded.recorded_at, event.amount, event.amount))
            case FundsWithdrawn():
                moves.append(Move(recorded.recorded_at, -event.amount, -event.amount))
            case TradeExecuted():
                sign = 1 if event.side == BUY else -1
                moves.append(Move(recorded.recorded_at, -sign * event.notional - event.fee, asset=event.asset,
                                  quantity=sign * event.amount, price=event.price))
    return moves


@dataclass
class _Holdings:
    """The running state of a walk through the moves."""

    cash: Decimal = ZERO
    net_flows: Decimal = ZERO
    quantities: dict[str, Decimal] = field(default_factory=dict)
    trade_prices: dict[str, Decimal] = field(default_factory=dict)

    def apply(self, move: Move) -> None:
        self.cash += move.cash
        self.net_flows += move.flow
        if move.asset is not None:
            self.quantities[move.asset] = self.quantities.get(move.asset, ZERO) + move.quantity
            if move.price is not None:
                self.trade_prices[move.asset] = move.price

    def value(self, prices: PriceHistory, at: dt.datetime) -> Decimal:
        total = self.cash
        for asset, quantity in self.quantities.items():
            if quantity:
                mark = price_at(prices.get(asset, ()), at)
                total += quantity * (mark if mark is not None else self.trade_prices.get(asset, ZERO))
        return total


def price_at(closes: Sequence[tuple[dt.datetime, Decimal]], at: dt.datetime) -> Decimal | None:
    """The close of the latest bucket that opened before ``at``; None when there is none."""
    i = bisect.bisect_left(closes, at, key=lambda c: c[0])
    return closes[i - 1][1] if i else None


def value_history(moves: Sequence[Move], prices: PriceHistory, as_of: dt.datetime,
                  *, since: dt.datetime | None = None) -> list[Point]:
    """Points from the first flow (or ``since``, if later) to ``as_of``: hourly ones and one per move."""
    moves = [m for m in moves if m.at <= as_of]
    if not moves:
        return []
    start = max(moves[0].at, since) if since is not None else moves[0].at
    hours = int((as_of - start) / HOUR)
    instants = {as_of - k * HOUR: True for k in range(hours + 1)}
    for move in moves:
        if move.at >= start:
            instants.setdefault(move.at, False)
    points: list[Point] = []
    held, i = _Holdings(), 0
    with decimal.localcontext(_EXACT):
        for at in sorted(instants):
            flow = ZERO
            while i < len(moves) and moves[i].at <= at:
                held.apply(moves[i])
                if points:  # every move at or after the start is a point: this one happened at ``at``
                    flow += moves[i].flow
                i += 1
            value = held.value(prices, at)
            index = _next_index(points[-1], value, flow) if points else Decimal(1)
            points.append(Point(at, value, flow, held.net_flows, index, instants[at]))
    return points


def _next_index(previous: Point, value: Decimal, flow: Decimal) -> Decimal:
    if not previous.value:
        return previous.index
    return previous.index * (value - flow) / previous.value


def window_return(points: Sequence[Point], as_of: dt.datetime, window: dt.timedelta) -> Decimal | None:
    """Time-weighted return over the window ending at ``as_of``, in percent; None if history is shorter."""
    start = as_of - window
    if not points or points[0].at > start:
        return None
    i = bisect.bisect_right(points, start, key=lambda p: p.at)
    with decimal.localcontext(_EXACT):
        return _percent(points[-1].index / points[i - 1].index - 1)


def annualised_volatility(points: Sequence[Point], as_of: dt.datetime) -> tuple[Decimal | None, int]:
    """Annualised volatility of the last 30 days' hourly returns, in percent, and how many returns it used."""
    hourly = [p for p in points if p.hourly and p.at >= as_of - VOLATILITY_WINDOW]
    with decimal.localcontext(_EXACT):
        returns = [b.index / a.index - 1 for a, b in zip(hourly, hourly[1:])]
        if len(returns) < 2:
            return None, len(returns)
        mean = sum(returns, ZERO) / len(returns)
        variance = sum(((r - mean) ** 2 for r in returns), ZERO) / (len(returns) - 1)
        return _percent(variance.sqrt() * Decimal(HOURS_PER_YEAR).sqrt()), len(returns)


def max_drawdown(points: Sequence[Point]) -> dict[str, Any] | None:
    """The deepest fall of the index from a running peak: percent (negative), USD lost, and when."""
    if not points:
        return None
    peak, worst = points[0], (ZERO, points[0], points[0])
    with decimal.localcontext(_EXACT):
        for point in points:
            if point.index > peak.index:
                peak = point
            depth = point.index / peak.index - 1
            if depth < worst[0]:
                worst = (depth, peak, point)
        depth, top, bottom = worst
        recovered = next((p.at for p in points if p.at > bottom.at and p.index >= top.index), None) if depth else None
        loss = bottom.value - top.value - (bottom.net_flows - top.net_flows)
        return {"percent": _percent(depth), "value": loss.quantize(MONEY_PLACES) if depth else ZERO,
                "peak_at": top.at if depth else None, "trough_at": bottom.at if depth else None,
                "recovered_at": recovered}


def performance(points: Sequence[Point], as_of: dt.datetime) -> dict[str, Any]:
    """Returns over the windows, volatility and maximum drawdown of a value history, as plain data."""
    volatility, observations = annualised_volatility(points, as_of)
    last = points[-1] if points else None
    return {
        "as_of": as_of, "since": points[0].at if points else None,
        "value": last.value.quantize(MONEY_PLACES) if last else ZERO,
        "net_flows": last.net_flows if last else ZERO,
        "time_weighted_return_pct": _percent(last.index - 1) if last else None,
        "returns_pct": {name: window_return(points, as_of, span) for name, span in WINDOWS.items()},
        "volatility": {"annualised_pct": volatility, "basis": "hourly", "observations": observations},
        "max_drawdown": max_drawdown(points),
    }


def history(points: Sequence[Point], limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` hourly points, evenly spaced, the latest always included."""
    hourly = [p for p in points if p.hourly]
    if len(hourly) > limit > 0:
        step = len(hourly) / limit
        hourly = [hourly[len(hourly) - 1 - int(k * step)] for k in range(limit)][::-1]
    return [{"at": p.at, "value": p.value.quantize(MONEY_PLACES), "net_flows": p.net_flows,
             "time_weighted_return_pct": _percent(p.index - 1)} for p in hourly]


def _percent(share: Decimal) -> Decimal:
    return (share * 100).quantize(PERCENT_PLACES)
