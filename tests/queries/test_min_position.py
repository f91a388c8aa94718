"""Read-your-writes: ``min_position`` waits, bounded, for the projections of the query."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from cqrs_core import queries
from cqrs_core.projections import pause, resume, run_projection
from cqrs_core.queries import query_bus
from tests.bus_app.queries import GetAccountBalance

from .conftest import ALICE, BALANCES, deposit, open_account


@pytest.mark.django_db(transaction=True)
def test_min_position_right_after_a_command_answers_with_the_write() -> None:
    account = open_account()
    query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)  # cache the empty account
    position = deposit(account, "7")  # eager wake-up: the projection runs on commit
    result = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE, min_position=position)
    assert result.stale is False and result.cached is False
    assert result.position >= position and result.data["balance"] == Decimal("7")
    assert result.waited_ms < 1000


@pytest.mark.django_db(transaction=True)
def test_min_position_beyond_the_projection_answers_stale_with_the_older_position() -> None:
    account = open_account()
    run_projection(BALANCES)
    before = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)
    pause(BALANCES)
    position = deposit(account, "7")
    started = time.monotonic()
    result = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE, min_position=position, timeout=0.3)
    elapsed = time.monotonic() - started
    assert result.stale is True and result.position == before.position < position
    assert result.data["balance"] == Decimal("0")
    assert 250 <= result.waited_ms and elapsed < 1.5


@pytest.mark.django_db(transaction=True)
def test_min_position_already_reached_does_not_wait() -> None:
    account = open_account()
    position = deposit(account, "7")
    run_projection(BALANCES)
    result = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE, min_position=position, timeout=5)
    assert result.stale is False and result.position == position and result.waited_ms < 500


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_waiting_reader_is_woken_by_the_runners_notify(monkeypatch: pytest.MonkeyPatch) -> None:
    account = open_account()
    pause(BALANCES)
    position = deposit(account, "7")  # the wake-up finds the projection paused: nothing moves
    resume(BALANCES)
    checks: list[float] = []
    reached = queries._reached

    def counting(names: list[str], wanted: int) -> bool:
        checks.append(time.monotonic())
        return reached(names, wanted)

    monkeypatch.setattr(queries, "_reached", counting)

    def run_later() -> None:
        try:
            time.sleep(0.2)
            run_projection(BALANCES)
        finally:
            connection.close()

    runner = threading.Thread(target=run_later)
    runner.start()
    try:
        result = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE, min_position=position, timeout=2.0)
    finally:
        runner.join(5)
    assert result.stale is False and result.data["balance"] == Decimal("7")
    assert 150 <= result.waited_ms < 1500
    # Woken by the NOTIFY, not by polling: before LISTEN, after LISTEN, after the notification.
    assert len(checks) <= 4
