"""Reconciliation check ``portfolio_events``: cash and positions equal the fold of the portfolio's stream.

For each portfolio (or a random sample of ``PORTFOLIO_RECONCILE_SAMPLE`` of them; 0: all) the
stream ``portfolio-<user_id>`` is folded with :data:`portfolio.state.PORTFOLIO` and compared
with the ``Portfolio`` and ``Position`` rows: cash, realised P&L, fees, the risk limit, and per
asset the quantity, average cost and realised P&L. Portfolios are those with a
``PortfolioOpened`` event (read on the ``(event_type, position)`` index) and those with a row.

Rows may trail their stream for a while, so a stream is skipped when its last event is younger
than the check's window or beyond the ``portfolio.portfolios`` checkpoint, and when the row
moved on while it was being compared (positions are read before their portfolio row, whose
``position`` then says whether a newer event was applied meanwhile). A repair rebuilds
``portfolio.portfolios`` (``repair=True`` in ``PORTFOLIO_RECONCILE_REPAIR``, in
``CQRS_RECONCILE_REPAIR`` or asked for by ``reconcile --repair``).
"""
from __future__ import annotations

import datetime as dt
import random
from typing import Any

from django.conf import settings
from django.utils import timezone

from cqrs_core.models import ProjectionState, StoredEvent
from cqrs_core.reconciliation import MAX_LISTED, Check, Outcome, register_check
from cqrs_core.store import read_stream

from .events import PortfolioOpened
from .models import Portfolio, Position
from .state import PORTFOLIO, Holding, portfolio_stream

CHECK = "portfolio_events"
PROJECTION = "portfolio.portfolios"
SKIPPED = "skipped"
PORTFOLIO_FIELDS = ("cash", "realised_pnl", "fees_paid", "max_position_usd")
POSITION_FIELDS = ("quantity", "average_cost", "realised_pnl")


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def portfolio_user_ids() -> set[int]:
    """Users with a portfolio stream or a portfolio row."""
    opened = StoredEvent.objects.filter(event_type=PortfolioOpened.event_type).values_list("stream_id", flat=True)
    ids = {int(stream.removeprefix("portfolio-")) for stream in opened}
    return ids | set(Portfolio.objects.values_list("user_id", flat=True))


def sample(ids: set[int], size: int) -> list[int]:
    chosen = random.sample(sorted(ids), size) if 0 < size < len(ids) else ids
    return sorted(chosen)


def checkpoint() -> int:
    return ProjectionState.objects.filter(name=PROJECTION).values_list("position", flat=True).first() or 0


def compare(user_id: int, upto: int, cutoff: dt.datetime) -> dict[str, Any] | str | None:
    """The differences of one portfolio (None: equal; ``SKIPPED``: too recent to judge)."""
    events = read_stream(portfolio_stream(user_id))
    if events and (events[-1].position > upto or events[-1].recorded_at > cutoff):
        return SKIPPED
    positions = {p.asset: p for p in Position.objects.filter(portfolio_id=user_id)}
    row = Portfolio.objects.filter(pk=user_id).first()
    if row is not None and events and row.position > events[-1].position:
        return SKIPPED  # an event appended and applied since the stream was read
    expected = PORTFOLIO.fold(events)
    if expected is None or row is None:
        return None if expected is row else {"user_id": user_id, "row": "missing" if row is None else "extra"}
    fields = {name: {"live": getattr(row, name), "events": getattr(expected, name)} for name in PORTFOLIO_FIELDS
              if getattr(row, name) != getattr(expected, name)}
    assets = {asset: diff for asset in sorted(expected.holdings.keys() | positions.keys())
              if (diff := _position_diff(positions.get(asset), expected.holdings.get(asset)))}
    return {"user_id": user_id, "fields": fields, "positions": assets} if fields or assets else None


def _position_diff(row: Position | None, held: Holding | None) -> dict[str, Any]:
    if row is None or held is None:
        return {"row": "missing" if row is None else "extra"}
    return {name: {"live": getattr(row, name), "events": getattr(held, name)} for name in POSITION_FIELDS
            if getattr(row, name) != getattr(held, name)}


@register_check(CHECK, every=float(_setting("PORTFOLIO_RECONCILE_EVERY", 3600.0)),
                window=float(_setting("PORTFOLIO_RECONCILE_WINDOW_SECONDS", 300.0)),
                repair=bool(_setting("PORTFOLIO_RECONCILE_REPAIR", False)))
def portfolio_events(check: Check) -> Outcome:
    """Every sampled portfolio's rows equal the fold of its events, outside the window."""
    upto, cutoff = checkpoint(), timezone.now() - dt.timedelta(seconds=check.window)
    everyone = portfolio_user_ids()
    chosen = sample(everyone, int(_setting("PORTFOLIO_RECONCILE_SAMPLE", 1000)))
    results = {user_id: compare(user_id, upto, cutoff) for user_id in chosen}
    differing = [r for r in results.values() if isinstance(r, dict)]
    skipped = sorted(user_id for user_id, r in results.items() if r == SKIPPED)
    details = {"portfolios": len(everyone), "sampled": len(chosen), "checked": len(chosen) - len(skipped),
               "skipped_recent": len(skipped), "checkpoint": upto, "window_seconds": check.window,
               "differing": len(differing), "examples": differing[:MAX_LISTED]}
    return Outcome(not differing, details, rebuild=[PROJECTION] if differing else [])
