"""Replay equals live for the rebalances read model, with plans, completed and compensated executions."""
from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal

import pytest

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from cqrs_core.projections import Status, rebuild
from portfolio.commands import DepositFunds, ExecuteRebalance, RebalancePortfolio, WithdrawFunds
from portfolio.models import Rebalance, RebalanceTimelineEntry
from tests.portfolio.support import ExecuteTradeFactory

# Fresh positions per test: a flushed store otherwise starts above 1, a hole the gap-free reader
# only passes once every older transaction on the server has ended (slow beside other suites).
pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)


def rebalance_rows() -> Counter:
    return Counter(Rebalance.objects.values_list(
        "rebalance_id", "user_id", "status", "total_value", "estimated_cost", "trade_count", "saga_id", "reason",
        "planned_at", "updated_at", "position"))


def plans() -> dict[uuid.UUID, tuple[object, object]]:
    return {r.rebalance_id: (r.targets, r.plan) for r in Rebalance.objects.all()}


def timeline_rows() -> Counter:
    return Counter(RebalanceTimelineEntry.objects.values_list(
        "rebalance_id", "position", "at", "kind", "step", "trade_index", "trade_id", "pair", "side", "amount", "price",
        "notional", "fee", "detail"))


def rebalance(user_id: int, targets: dict[str, str], *, execute: bool = False) -> uuid.UUID:
    rebalance_id = uuid.uuid4()
    command_bus.dispatch(RebalancePortfolio(user_id=user_id, rebalance_id=rebalance_id, execute=execute,
                                            targets={a: Decimal(w) for a, w in targets.items()}),
                         actor=Actor(user_id=user_id))
    return rebalance_id


def test_rebuild_from_zero_equals_live_row_for_row() -> None:
    for user_id in (7001, 7002):
        actor = Actor(user_id=user_id)
        command_bus.dispatch(DepositFunds(user_id=user_id, amount=Decimal("15005")), actor=actor)
        command_bus.dispatch(ExecuteTradeFactory(user_id=user_id, amount=Decimal("0.1")), actor=actor)
    rebalance(7001, {"ETH": "50", "USD": "50"})  # planned only
    rebalance(7001, {"ETH": "50", "SOL": "20", "USD": "30"}, execute=True)  # completed
    failing = rebalance(7002, {"ETH": "50", "SOL": "50"})
    command_bus.dispatch(WithdrawFunds(user_id=7002, amount=Decimal("5000")), actor=Actor(user_id=7002))
    command_bus.dispatch(ExecuteRebalance(user_id=7002, rebalance_id=failing), actor=Actor(user_id=7002))

    live = (rebalance_rows(), plans(), timeline_rows())
    statuses = Counter(Rebalance.objects.values_list("status", flat=True))
    assert statuses == Counter({"planned": 1, "completed": 1, "compensated": 1})
    assert RebalanceTimelineEntry.objects.filter(kind="reversal").count() == 2
    assert rebuild("portfolio.rebalances").status == Status.RUNNING
    assert (rebalance_rows(), plans(), timeline_rows()) == live
