"""Rebalance queries: one rebalance with its plan and timeline, and the list; owners see theirs, staff all."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cqrs_core.queries import Query, QueryContext, query_handler

from .errors import PortfolioNotFound
from .models import Rebalance
from .queries import may_read
from .rebalance import RebalanceNotFound

REBALANCES = "portfolio.rebalances"
SUMMARY = ("rebalance_id", "user_id", "status", "reason", "total_value", "estimated_cost", "trade_count", "saga_id",
           "planned_at", "updated_at", "position")
TIMELINE = ("position", "at", "kind", "step", "trade_index", "trade_id", "pair", "side", "amount", "price", "notional",
            "fee", "detail")


@dataclass(frozen=True, kw_only=True)
class GetRebalance(Query, name="portfolio.GetRebalance"):
    rebalance_id: UUID


@dataclass(frozen=True, kw_only=True)
class ListRebalances(Query, name="portfolio.ListRebalances"):
    """``user_id`` None lists everyone's rebalances (staff only)."""

    user_id: int | None
    status: str | None = None
    limit: int = 50
    offset: int = 0


@query_handler(GetRebalance, projections=[REBALANCES])
def get_rebalance(query: GetRebalance, ctx: QueryContext) -> dict[str, Any]:
    """The rebalance, its targets, plan and timeline; someone else's is not found (staff see all)."""
    row = Rebalance.objects.filter(pk=query.rebalance_id).first()
    if row is None or not may_read(ctx.actor, row.user_id):
        raise RebalanceNotFound(rebalance_id=str(query.rebalance_id))
    data = {name: getattr(row, name) for name in SUMMARY}
    data.update(targets=row.targets, plan=row.plan, timeline=list(row.timeline.values(*TIMELINE)))
    return data


@query_handler(ListRebalances, projections=[REBALANCES])
def list_rebalances(query: ListRebalances, ctx: QueryContext) -> dict[str, Any]:
    """Newest first, without plans; another user's list is 404 unless staff."""
    if not may_read(ctx.actor, query.user_id):
        raise PortfolioNotFound(user_id=query.user_id)
    rows = Rebalance.objects.all()
    if query.user_id is not None:
        rows = rows.filter(user_id=query.user_id)
    if query.status is not None:
        rows = rows.filter(status=query.status)
    page = list(rows.values(*SUMMARY)[query.offset:query.offset + query.limit])
    return {"count": rows.count(), "limit": query.limit, "offset": query.offset, "results": page}
