"""A saga driven by a real Celery worker process: each step is its own task on the broker.

Services only, like ``tests/projections/test_worker.py``, whose worker helpers are reused.
"""
from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from cqrs_core.sagas import start_saga, sweep_sagas
from cqrs_core.sagas.models import SagaInstance
from cqrs_core.models import StoredEvent
from tests.bus_app.sagas import KillableTransferSaga, TransferSaga
from tests.projections.test_worker import Workers, wait_for, workers  # noqa: F401  (fixture)

from .conftest import balance, funded_account, money_events, saga_events, transfer_data

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")) or connection.vendor != "postgresql",
        reason="needs a real broker and PostgreSQL (the worker is another process)",
    ),
]


def _status(saga_id: object) -> str:
    return SagaInstance.objects.filter(pk=saga_id).values_list("status", flat=True).first() or ""


def test_a_saga_completes_on_a_real_worker(workers: Workers) -> None:  # noqa: F811
    workers.start()
    a, b = funded_account(), funded_account()
    ok = start_saga(TransferSaga, transfer_data(a, b))
    failing = start_saga(TransferSaga, transfer_data(a, b, amount="5", fail_confirm="yes"))

    done = (SagaInstance.Status.COMPLETED, SagaInstance.Status.COMPENSATED)
    wait_for(lambda: _status(ok) in done and _status(failing) in done, "the sagas to end", workers,
             every=sweep_sagas)
    assert (_status(ok), _status(failing)) == (SagaInstance.Status.COMPLETED, SagaInstance.Status.COMPENSATED)
    assert (balance(a), balance(b)) == (70, 130)
    assert set(money_events(a, b).values()) == {1}
    assert [kind for kind, _ in saga_events(ok)][-1] == "saga.SagaCompleted"


def test_a_worker_killed_mid_step_is_finished_by_the_sweep_with_every_effect_once(workers: Workers) -> None:  # noqa: F811
    first = workers.start()
    a, b = funded_account(), funded_account()
    saga_id = start_saga(KillableTransferSaga, transfer_data(a, b, pause_after="deposit", pause_seconds="30"))

    def deposited() -> bool:
        return StoredEvent.objects.filter(stream_id=f"bus_app.account-{b}", stream_version__gt=2).exists()

    wait_for(deposited, "the deposit step's command to commit", workers)
    assert _status(saga_id) == SagaInstance.Status.RUNNING
    workers.kill(first)  # the whole worker, between the deposit's effect and the saga recording it

    workers.start()
    done = (SagaInstance.Status.COMPLETED, SagaInstance.Status.COMPENSATED)
    wait_for(lambda: _status(saga_id) in done, "the sweep to finish the saga", workers, every=sweep_sagas)

    assert _status(saga_id) == SagaInstance.Status.COMPLETED
    assert (balance(a), balance(b)) == (70, 130)
    assert set(money_events(a, b).values()) == {1}, money_events(a, b)
    kinds = saga_events(saga_id)
    assert kinds[-1][0] == "saga.SagaCompleted"
    completed_steps = [step for kind, step in kinds if kind == "saga.StepCompleted"]
    assert completed_steps == ["withdraw", "deposit", "confirm"], kinds
