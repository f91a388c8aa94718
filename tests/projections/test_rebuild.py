"""Promise 7: a rebuild from position 0 gives exactly the rows live processing gave."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from cqrs_core.models import ProjectionState, StoredEvent
from cqrs_core.projections import (
    REBUILD_HEARTBEAT_TIMEOUT, Progress, RebuildAlreadyRunning, Status, ensure_states, rebuild, request_cancel,
)
from cqrs_core.store import head_position
from tests.bus_app.events import AccountOpened
from tests.bus_app.models import LedgerEntry

from .conftest import (
    BALANCES, LEDGER, OWNERS, balances_rows, deposit, ledger_counts_per_position, ledger_rows, money_positions, open_account, owners_rows, withdraw,
)

pytestmark = pytest.mark.django_db(transaction=True)


def live_history(accounts: int = 3, rounds: int = 6) -> list:
    """Commands through the bus; wake-ups run the async projections live (eagerly)."""
    opened = [open_account() for _ in range(accounts)]
    for i in range(rounds):
        for n, account in enumerate(opened):
            deposit(account, f"{10 + i}.{n}5")
            if i % 2:
                withdraw(account, "3.10")
    return opened


def state(name: str) -> ProjectionState:
    return ProjectionState.objects.get(name=name)


def test_rebuild_from_zero_equals_live_row_for_row() -> None:
    live_history()
    live = {BALANCES: balances_rows(), LEDGER: ledger_rows(), OWNERS: owners_rows()}
    assert all(live.values()), "live processing produced rows"
    assert state(LEDGER).position == head_position()

    for name, rows in ((BALANCES, balances_rows), (LEDGER, ledger_rows), (OWNERS, owners_rows)):
        generation = state(name).generation
        report = rebuild(name)
        assert report.status == Status.RUNNING and not report.cancelled
        assert rows() == live[name], name
        after = state(name)
        assert after.status == Status.RUNNING and after.position == head_position()
        assert after.generation == generation + 1 and after.rebuild_target is None


def test_rebuild_of_the_immediate_projection_under_concurrent_commands_misses_nothing() -> None:
    """Commands applying ``bus_app.owners`` in their own transaction race a rebuild of it."""
    for _ in range(5):
        open_account()
    go = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            go.wait()
            for _ in range(30):
                open_account()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    go.wait()
    for _ in range(3):
        rebuild(OWNERS, batch_size=2)
    thread.join(timeout=60)
    assert not thread.is_alive() and not errors, errors

    opened = StoredEvent.objects.filter(event_type=AccountOpened.event_type).values_list("data", flat=True)
    expected = {(str(d["account_id"]), d["owner_id"]) for d in opened}
    rows = owners_rows()
    assert set(rows.values()) == {1}
    assert {(str(a), o) for a, o in rows} == expected
    assert len(expected) == 35


def test_dry_run_counts_and_changes_nothing() -> None:
    live_history(accounts=2, rounds=3)
    before = (balances_rows(), ledger_rows(), list(ProjectionState.objects.values()))
    report = rebuild(LEDGER, dry_run=True)
    money = StoredEvent.objects.filter(event_type__in=["bus_app.FundsDeposited", "bus_app.FundsWithdrawn"]).count()
    assert report.dry_run and report.events == money
    assert rebuild(BALANCES, dry_run=True).events == StoredEvent.objects.count()
    assert (balances_rows(), ledger_rows(), list(ProjectionState.objects.values())) == before


def test_a_second_rebuild_is_refused_while_one_is_alive_but_a_dead_one_is_taken_over() -> None:
    live_history(accounts=1, rounds=2)
    live = ledger_rows()
    ensure_states()
    ProjectionState.objects.filter(name=LEDGER).update(
        status=Status.REBUILDING, rebuild_heartbeat_at=timezone.now(), rebuild_started_at=timezone.now())
    with pytest.raises(RebuildAlreadyRunning):
        rebuild(LEDGER)
    assert ledger_rows() == live, "a refused rebuild resets nothing"

    stale = timezone.now() - dt.timedelta(seconds=REBUILD_HEARTBEAT_TIMEOUT + 5)
    ProjectionState.objects.filter(name=LEDGER).update(rebuild_heartbeat_at=stale)
    report = rebuild(LEDGER)
    assert report.status == Status.RUNNING
    assert ledger_rows() == live


def test_progress_reaches_100_percent() -> None:
    live_history(accounts=2, rounds=5)
    seen: list[Progress] = []
    rebuild(LEDGER, batch_size=3, progress=seen.append)
    assert len(seen) > 3
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    last = seen[-1]
    assert last.percent == 100.0 and last.done == last.total == head_position()
    assert last.applied == LedgerEntry.objects.count()
    assert last.rate > 0 and last.eta_seconds == 0


def test_cancel_pauses_the_rebuild_and_it_resumes_from_its_checkpoint() -> None:
    live_history(accounts=2, rounds=6)
    live = ledger_rows()

    def cancel_once_it_moved(progress: Progress) -> None:
        # Not simply after the first batch: on PostgreSQL a first batch may only note the holes
        # below the first row (the sequence is not reset between tests) and wait for them to settle.
        if progress.done > 0:
            request_cancel(LEDGER)

    report = rebuild(LEDGER, batch_size=4, progress=cancel_once_it_moved)
    paused = state(LEDGER)
    assert report.cancelled and report.status == Status.PAUSED
    assert paused.status == Status.PAUSED and not paused.rebuild_cancel_requested
    assert 0 < paused.position < head_position()
    # A batch is 4 positions of any type: the ledger holds exactly the money events up to the checkpoint.
    assert paused.position == list(StoredEvent.objects.order_by("position").values_list("position", flat=True))[3]
    assert set(ledger_counts_per_position()) == {p for p in money_positions() if p <= paused.position}

    resumed = rebuild(LEDGER, from_position=paused.position)
    assert resumed.status == Status.RUNNING
    assert ledger_rows() == live
