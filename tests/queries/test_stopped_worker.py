"""Read-your-writes with a real broker and no worker: the answer says it is stale, never waits forever."""
from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from cqrs_core.projections import run_projection
from cqrs_core.queries import query_bus
from tests.bus_app.queries import GetAccountBalance

from .conftest import ALICE, BALANCES, deposit, open_account

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")),
                       reason="needs a real broker: wake-ups must queue up with no worker to take them"),
]


@pytest.mark.django_db(transaction=True)
def test_min_position_reports_stale_while_no_worker_runs_then_fresh_once_projected() -> None:
    celery_app.control.purge()
    account = open_account()
    run_projection(BALANCES)
    position = deposit(account, "7")  # its wake-up goes to the broker; no worker is running

    started = time.monotonic()
    stale = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE, min_position=position, timeout=0.5)
    assert stale.stale is True and stale.position < position
    assert time.monotonic() - started < 2.0, "the wait is bounded by its timeout"

    run_projection(BALANCES)  # what a worker would do when it comes back
    fresh = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE, min_position=position, timeout=0.5)
    assert fresh.stale is False and fresh.position >= position
    assert str(fresh.data["balance"]).startswith("7")
    celery_app.control.purge()
    connection.close()
