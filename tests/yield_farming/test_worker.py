"""YieldFarmingSaga on a real Celery worker process: each step a task on the broker, projections too.

Services only, like ``tests/sagas/test_worker.py``, whose worker helpers are reused.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

from cqrs_core.projections import sweep
from cqrs_core.sagas import sweep_sagas
from cqrs_core.sagas.models import SagaInstance
from tests.projections.test_worker import Workers, wait_for, workers  # noqa: F401  (fixture)
from yield_farming.models import YieldPosition, YieldStrategy

from .conftest import deposit, portfolio_events, portfolio_state, request

pytestmark = [
    pytest.mark.django_db(transaction=True, reset_sequences=True),
    pytest.mark.services,
    pytest.mark.usefixtures("catalogue"),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")) or connection.vendor != "postgresql",
        reason="needs a real broker and PostgreSQL (the worker is another process)",
    ),
]
DONE = (SagaInstance.Status.COMPLETED, SagaInstance.Status.COMPENSATED)


def _status(strategy_id: object) -> str:
    row = YieldStrategy.objects.filter(pk=strategy_id).first()
    if row is None:
        return ""
    return SagaInstance.objects.filter(pk=row.saga_id).values_list("status", flat=True).first() or ""


def _nudge() -> None:
    sweep()
    sweep_sagas()


def test_strategies_end_on_a_real_worker_with_positions_or_the_cash_back(workers: Workers) -> None:  # noqa: F811
    workers.start()
    deposit(21, "10000")
    placed = request(21, "5000")
    refused = request(21, "2000", protocols=("wild-d",), tolerance="conservative")  # nothing acceptable

    wait_for(lambda: _status(placed) in DONE and _status(refused) in DONE, "the sagas to end", workers, every=_nudge)
    wait_for(lambda: YieldPosition.objects.filter(strategy_id=placed).count() == 2, "the positions", workers,
             every=_nudge)
    assert (_status(placed), _status(refused)) == (SagaInstance.Status.COMPLETED,) * 2
    state = portfolio_state(21)
    assert (state.cash, state.reserved, state.yield_principal) == (Decimal("5000"), 0, Decimal("5000.00"))
    events = portfolio_events(21)
    assert (events["YieldPositionOpened"], events["ReservationReleased"]) == (2, 1)
