"""Promise 4: racing runners and a live writer apply every event exactly once."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from cqrs_core.models import DeadLetter, ProjectionState
from cqrs_core.projections import run_projection
from cqrs_core.store import head_position
from tests.bus_app.models import AccountBalance

from .conftest import BALANCES, LEDGER, deposit, ledger_counts_per_position, money_positions, open_account

pytestmark = pytest.mark.django_db(transaction=True)

RUNNERS = 3
WRITERS = 2


def drain(*names: str, timeout: float = 30.0) -> None:
    """Run the projections until each checkpoint reaches the head (bounded)."""
    deadline = time.monotonic() + timeout
    head = head_position()
    for name in names:
        while ProjectionState.objects.get(name=name).position < head:
            assert time.monotonic() < deadline, f"{name} did not catch up with {head}"
            run_projection(name)


def test_racing_runners_apply_every_money_event_exactly_once(no_wakeups: None) -> None:
    deposits = 60 if connection.vendor == "sqlite" else 100
    accounts = [open_account() for _ in range(WRITERS)]
    stop = threading.Event()
    start = threading.Barrier(RUNNERS + WRITERS, timeout=30)
    errors: list[BaseException] = []
    runs = {"batches": 0, "busy": 0}
    lock = threading.Lock()

    def writer(account) -> None:
        try:
            start.wait()
            for i in range(deposits):
                deposit(account, Decimal(i % 7 + 1))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    def runner(index: int) -> None:
        try:
            start.wait()
            names = (LEDGER, BALANCES) if index % 2 else (BALANCES, LEDGER)
            while not stop.is_set():
                for name in names:
                    report = run_projection(name, max_batches=3)
                    with lock:
                        runs["batches"] += report.batches
                        runs["busy"] += report.busy
                # Let writers in between runs: on SQLite every run takes the one write lock.
                stop.wait(0.002)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    writers = [threading.Thread(target=writer, args=(a,)) for a in accounts]
    runners = [threading.Thread(target=runner, args=(i,)) for i in range(RUNNERS)]
    for thread in writers + runners:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    stop.set()
    for thread in runners:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in writers + runners), "a thread did not finish"
    assert not errors, errors

    drain(LEDGER, BALANCES)

    counts = ledger_counts_per_position()
    positions = money_positions()
    assert len(positions) == WRITERS * deposits
    assert set(counts) == set(positions), list(DeadLetter.objects.values("position", "projection", "error"))
    assert set(counts.values()) == {1}, {p: n for p, n in counts.items() if n != 1}
    expected = sum(Decimal(i % 7 + 1) for i in range(deposits))
    for account in accounts:
        row = AccountBalance.objects.get(account_id=account)
        assert row.balance == expected
        assert row.transactions == deposits
    assert ProjectionState.objects.get(name=LEDGER).events_applied == WRITERS * deposits
    assert runs["batches"] > 0
