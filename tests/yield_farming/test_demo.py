"""The yield demo: a demo user's strategy through the command bus, run by the saga, idempotent."""
from __future__ import annotations

import io

import pytest

from cqrs_core.models import StoredEvent
from cqrs_core.sagas.models import SagaInstance
from portfolio import demo as portfolio_demo
from yield_farming import demo
from yield_farming.models import YieldPosition, YieldStrategy

from .conftest import projected

pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)


def test_demo_runs_one_yield_strategy_for_a_demo_user_once() -> None:
    portfolio_demo.load(io.StringIO())
    out = io.StringIO()
    demo.load(out)
    assert "demo_grace: 2000 USD yield strategy" in out.getvalue() and "requested" in out.getvalue(), out.getvalue()
    projected()
    [strategy] = YieldStrategy.objects.all()
    assert SagaInstance.objects.get(pk=strategy.saga_id).status == SagaInstance.Status.COMPLETED
    assert sum(p.principal for p in YieldPosition.objects.filter(strategy_id=strategy.strategy_id)) == strategy.amount
    events = StoredEvent.objects.count()

    again = io.StringIO()
    demo.load(again)
    assert "replayed" in again.getvalue()
    assert StoredEvent.objects.count() == events


def test_without_the_demo_users_the_loader_only_lists_protocols() -> None:
    out = io.StringIO()
    demo.load(out)
    assert "no user demo_grace" in out.getvalue()
    assert not YieldStrategy.objects.exists()
