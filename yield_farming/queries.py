"""Yield farming queries: the catalogue, a strategy's status and timeline, and positions with accrued yield.

Accrued yield is computed when asked, never stored: simple interest by whole days at the APY
recorded when the position opened, ``principal x apy / 100 x days / 365`` with ``days`` the whole
days from opening to closing (or to now while open), rounded half-even to 18 places.
"""
from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from cqrs_core.commands import MONEY_CONTEXT
from cqrs_core.queries import CachePolicy, Query, QueryContext, query_handler
from cqrs_core.sagas.models import SagaInstance
from cqrs_core.store import read_stream
from portfolio.errors import PortfolioNotFound
from portfolio.queries import may_read

from .errors import StrategyNotFound
from .models import Protocol, YieldPosition, YieldStrategy
from .projections import FIGURES, PROTOCOLS_SCOPE

MONEY_PLACES = Decimal("1e-18")
DAYS_PER_YEAR = 365
PROTOCOLS, STRATEGIES = "yield_farming.protocols", "yield_farming.strategies"
POSITION_FIELDS = ("position_id", "user_id", "strategy_id", "protocol", "principal", "apy", "opened_at",
                   "closed_at", "close_reason")


@dataclass(frozen=True, kw_only=True)
class ListProtocols(Query, name="yield_farming.ListProtocols"):
    chain: str | None = None
    asset: str | None = None
    audited: bool | None = None
    max_risk: int | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, kw_only=True)
class GetYieldStrategy(Query, name="yield_farming.GetYieldStrategy"):
    strategy_id: UUID


@dataclass(frozen=True, kw_only=True)
class ListYieldPositions(Query, name="yield_farming.ListYieldPositions"):
    """``user_id`` None lists everyone's positions (staff only)."""

    user_id: int | None
    strategy_id: UUID | None = None
    open_only: bool = False
    limit: int = 50
    offset: int = 0


@query_handler(ListProtocols, projections=[PROTOCOLS], cache=CachePolicy(ttl=300),
               scope=lambda q, actor: PROTOCOLS_SCOPE)
def list_protocols(query: ListProtocols, ctx: QueryContext) -> dict[str, Any]:
    """The catalogue by slug, filtered; anyone signed in may read it."""
    rows = Protocol.objects.all()
    if query.chain is not None:
        rows = rows.filter(chain=query.chain)
    if query.asset is not None:
        rows = rows.filter(asset=query.asset)
    if query.audited is not None:
        rows = rows.filter(audited=query.audited)
    if query.max_risk is not None:
        rows = rows.filter(risk_score__lte=query.max_risk)
    page = list(rows.values("slug", *FIGURES, "updated_at")[query.offset:query.offset + query.limit])
    return {"count": rows.count(), "limit": query.limit, "offset": query.offset, "results": page}


@query_handler(GetYieldStrategy, projections=[STRATEGIES])
def get_yield_strategy(query: GetYieldStrategy, ctx: QueryContext) -> dict[str, Any]:
    """The strategy, its saga's status and step timeline, and its positions; someone else's is not found."""
    row = YieldStrategy.objects.filter(pk=query.strategy_id).first()
    if row is None or not may_read(ctx.actor, row.user_id):
        raise StrategyNotFound(strategy_id=str(query.strategy_id))
    saga = SagaInstance.objects.filter(pk=row.saga_id).first()
    positions = [_position(p, ctx.now) for p in YieldPosition.objects.filter(strategy_id=row.strategy_id)]
    return {
        "strategy_id": row.strategy_id, "user_id": row.user_id, "protocols": row.protocols, "amount": row.amount,
        "risk_tolerance": row.risk_tolerance, "requested_at": row.requested_at, "allocated": row.allocated,
        "released": row.released, "reserved": row.amount - row.allocated - row.released,
        **_status(saga), "timeline": _timeline(row.saga_id) if saga is not None else [], "positions": positions,
    }


@query_handler(ListYieldPositions, projections=[STRATEGIES])
def list_yield_positions(query: ListYieldPositions, ctx: QueryContext) -> dict[str, Any]:
    """Positions newest first with yield accrued up to now; another user's list is 404 unless staff."""
    if not may_read(ctx.actor, query.user_id):
        raise PortfolioNotFound(user_id=query.user_id)
    rows = YieldPosition.objects.all()
    if query.user_id is not None:
        rows = rows.filter(user_id=query.user_id)
    if query.strategy_id is not None:
        rows = rows.filter(strategy_id=query.strategy_id)
    if query.open_only:
        rows = rows.filter(closed_at__isnull=True)
    page = [_position(p, ctx.now) for p in rows[query.offset:query.offset + query.limit]]
    return {"count": rows.count(), "limit": query.limit, "offset": query.offset, "results": page}


def accrued_yield(principal: Decimal, apy: Decimal, opened_at: dt.datetime, until: dt.datetime) -> Decimal:
    """Simple interest for the whole days between ``opened_at`` and ``until`` (see the module docstring)."""
    days = max(0, (until - opened_at).days)
    with decimal.localcontext(MONEY_CONTEXT):
        return (principal * apy / 100 * days / DAYS_PER_YEAR).quantize(MONEY_PLACES)


def _position(row: YieldPosition, now: dt.datetime) -> dict[str, Any]:
    until = row.closed_at or now
    data = {name: getattr(row, name) for name in POSITION_FIELDS}
    return {**data, "status": "closed" if row.closed_at else "open",
            "days": max(0, (until - row.opened_at).days),
            "accrued_yield": accrued_yield(row.principal, row.apy, row.opened_at, until)}


def _status(saga: SagaInstance | None) -> dict[str, Any]:
    """``status`` of the saga (``pending`` before it starts) and the ``outcome`` once it ended."""
    if saga is None:
        return {"status": "pending", "outcome": None, "reason": ""}
    outcome = None
    if saga.status == SagaInstance.Status.COMPLETED:
        outcome = "ended_early" if saga.reason else "positions_opened"
    elif saga.status in (SagaInstance.Status.COMPENSATED, SagaInstance.Status.FAILED):
        outcome = str(saga.status)
    return {"status": str(saga.status), "outcome": outcome, "reason": saga.reason}


def _timeline(saga_id: UUID) -> list[dict[str, Any]]:
    """The saga's own events, oldest first: which step did what, when, with what result or error."""
    steps = []
    for recorded in read_stream(f"saga-{saga_id}"):
        data = recorded.data
        entry: dict[str, Any] = {"event": recorded.event_type.split(".", 1)[1], "at": recorded.recorded_at}
        for key in ("step", "attempt", "result", "error", "will_retry", "reason"):
            if key in data:
                entry[key] = data[key]
        steps.append(entry)
    return steps
