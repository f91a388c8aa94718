"""The demo loader goes through commands and is idempotent."""
from __future__ import annotations

import io

import pytest

from cqrs_core.models import StoredEvent
from portfolio import demo
from portfolio.models import Portfolio
from trading.models import Trade

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_loads_users_deposits_and_trades_once() -> None:
    out = io.StringIO()
    demo.load(out)
    assert "0 refused" in out.getvalue(), out.getvalue()
    events = StoredEvent.objects.count()
    assert Portfolio.objects.count() == len(demo.USERS) and Trade.objects.count() == 6
    demo.load(io.StringIO())
    assert StoredEvent.objects.count() == events


def test_demo_plans_a_rebalance_for_ada_once_and_does_not_execute_it() -> None:
    from portfolio.models import Rebalance

    out = io.StringIO()
    demo.load(out)
    assert "rebalance plan refused" not in out.getvalue() and "planned (" in out.getvalue(), out.getvalue()
    (row,) = Rebalance.objects.all()
    assert row.status == "planned" and row.trade_count > 0 and not row.timeline.exists()
    trades = Trade.objects.count()
    demo.load(io.StringIO())
    assert Rebalance.objects.count() == 1 and Trade.objects.count() == trades
