"""The demo plans a rebalance through commands, once, without executing it."""
from __future__ import annotations

import io

import pytest

from portfolio import demo
from portfolio.models import Rebalance
from trading.models import Trade

# Fresh positions per test: a flushed store otherwise starts above 1, a hole the gap-free reader
# only passes once every older transaction on the server has ended (slow beside other suites).
pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)


def test_demo_plans_a_rebalance_for_ada_once_and_does_not_execute_it() -> None:
    out = io.StringIO()
    demo.load(out)
    assert "rebalance plan refused" not in out.getvalue() and "planned (" in out.getvalue(), out.getvalue()
    (row,) = Rebalance.objects.all()
    assert row.status == "planned" and row.trade_count > 0 and not row.timeline.exists()
    trades = Trade.objects.count()
    demo.load(io.StringIO())
    assert Rebalance.objects.count() == 1 and Trade.objects.count() == trades
