"""Promise 3 in the runner: an open writer transaction holds the checkpoint below its position."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from cqrs_core.models import ProjectionState
from cqrs_core.projections import run_projection

from .conftest import LEDGER, deposit, ledger_counts_per_position, open_account

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer: positions commit in order"),
]


def test_the_runner_waits_for_a_held_position_then_applies_both_once(no_wakeups: None) -> None:
    held_account, later_account = open_account(), open_account()
    run_projection(LEDGER)
    held, release = threading.Event(), threading.Event()
    result: dict[str, int] = {}
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                result["held"] = deposit(held_account, "7")
                held.set()
                assert release.wait(timeout=30), "never released"
        except BaseException as exc:
            errors.append(exc)
            held.set()
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert held.wait(timeout=30) and not errors, errors
        later = deposit(later_account, "5")  # commits now, above the open transaction's position
        assert later > result["held"]

        for _ in range(2):  # each run waits out GAP_WAIT_SECONDS on the hole, then yields
            report = run_projection(LEDGER)
            state = ProjectionState.objects.get(name=LEDGER)
            assert state.position < result["held"], "the checkpoint passed an uncommitted position"
            assert report.applied == 0 and later not in ledger_counts_per_position()
        # A worker's run with its slice over stops the same way, without asking to be woken again:
        # a long transaction must not become a loop of self wake-ups that starves the other tasks.
        sliced = run_projection(LEDGER, slice_seconds=0)
        assert not sliced.yielded and sliced.applied == 0
    finally:
        release.set()
        thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors

    run_projection(LEDGER)
    assert ProjectionState.objects.get(name=LEDGER).position == later
    assert ledger_counts_per_position() == {result["held"]: 1, later: 1}
