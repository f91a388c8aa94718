"""The strategy demo loader goes through commands, is idempotent and shows both outcomes."""
from __future__ import annotations

import io

import pytest

from cqrs_core.models import StoredEvent
from portfolio import demo as portfolio_demo
from trading import demo
from trading.models import Strategy, StrategySignal, Trade

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_creates_a_strategy_with_an_accepted_and_a_rejected_signal_once() -> None:
    portfolio_demo.load(io.StringIO())
    out = io.StringIO()
    demo.load(out)
    assert "created, accepted, rejected" in out.getvalue(), out.getvalue()
    [strategy] = Strategy.objects.all()
    assert strategy.signals_accepted == 1 and strategy.signals_rejected == 1
    assert StrategySignal.objects.get(outcome="rejected").reason == "pair_not_allowed"
    assert Trade.objects.filter(strategy_id=strategy.strategy_id).count() == 1
    events = StoredEvent.objects.count()
    demo.load(io.StringIO())
    assert StoredEvent.objects.count() == events
