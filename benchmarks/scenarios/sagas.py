"""Scenario 6: sagas completed per second with real workers.

Two sagas: the test app's ``TransferSaga`` (three steps: withdraw, deposit, confirm; each a Celery
task sending a command through the bus), the engine's bare cost per saga; and the
``YieldFarmingSaga`` (hold funds, analyse, assess risks, open positions), started from the
``YieldStrategyExecutionRequested`` event of a command sent through the bus, as the API does.
"""
from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

from ..report import Figure, percentile

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from ..run import Run

TIMEOUT_SECONDS = 120.0


def sagas(run: Run) -> None:
    from cqrs_core.bus import command_bus
    from cqrs_core.sagas import start_saga
    from cqrs_core.sagas.models import SagaInstance
    from tests.bus_app.commands import Deposit, OpenAccount
    from tests.bus_app.sagas import TransferSaga

    accounts = [uuid.uuid4() for _ in range(2 * run.mode.sagas)]
    for account in accounts:
        command_bus.dispatch(OpenAccount(account_id=account))
        command_bus.dispatch(Deposit(account_id=account, amount=Decimal(100)))
    ids = [start_saga(TransferSaga, {"source": str(a), "target": str(b), "amount": "1"})
           for a, b in zip(accounts[::2], accounts[1::2], strict=True)]
    run.add(_completed(SagaInstance.objects.filter(pk__in=ids), len(ids), "s6.sagas.transfer",
                       "TransferSaga (test app, 3 steps) completed, real workers"))
    run.add(_yield_sagas(run.mode.sagas))


def _yield_sagas(count: int) -> Figure:
    """``count`` users each request a yield strategy through the bus; their sagas run on the workers."""
    from django.contrib.auth import get_user_model

    from cqrs_core.bus import command_bus
    from cqrs_core.commands import Actor
    from cqrs_core.sagas.models import SagaInstance
    from portfolio.commands import DepositFunds
    from yield_farming.commands import ExecuteYieldStrategy
    from yield_farming.feed import load_protocols
    from yield_farming.sagas import YieldFarmingSaga

    load_protocols()
    started = SagaInstance.objects.filter(saga_type=YieldFarmingSaga.saga_type).count()
    for n in range(count):
        user, _ = get_user_model().objects.get_or_create(username=f"bench_yield_{n}")
        actor = Actor(user_id=user.pk)
        command_bus.dispatch(DepositFunds(user_id=user.pk, amount=Decimal(5000)), actor=actor)
        command_bus.dispatch(ExecuteYieldStrategy(user_id=user.pk, strategy_id=uuid.uuid4(), protocols=("any",),
                                                  amount=Decimal(2000), risk_tolerance="moderate"), actor=actor)
    rows = SagaInstance.objects.filter(saga_type=YieldFarmingSaga.saga_type).order_by("started_at")
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline and rows.count() < started + count:
        time.sleep(0.05)  # sagas start from the event, after its commit
    ids = list(rows.values_list("id", flat=True))[started:]
    return _completed(SagaInstance.objects.filter(pk__in=ids), count, "s6.sagas.yield",
                      "YieldFarmingSaga (4 steps) completed, real workers")


def _completed(rows: QuerySet, expected: int, key: str, title: str) -> Figure:
    """Waits for the sagas of ``rows`` to end; the figure is completions per second over their span."""
    from cqrs_core.sagas.models import SagaInstance

    done = (SagaInstance.Status.COMPLETED, SagaInstance.Status.COMPENSATED, SagaInstance.Status.FAILED)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline and (rows.count() < expected or rows.exclude(status__in=done).exists()):
        time.sleep(0.05)
    ended = list(rows.filter(status=SagaInstance.Status.COMPLETED).values_list("started_at", "ended_at"))
    others = expected - len(ended)
    durations = [(end - begin).total_seconds() * 1000 for begin, end in ended]
    span = (max(e for _, e in ended) - min(b for b, _ in ended)).total_seconds() if ended else 0.0
    return Figure(key, "6", title, len(ended) / span if span else 0.0, "sagas/s", percentile(durations, 50),
                  percentile(durations, 99),
                  note=f"{len(ended)} of {expected} completed" + (f", {others} not completed in time" if others else ""),
                  extra={"started": expected, "completed": len(ended)})
