"""Lag: how far each projection is behind the head, in events and seconds."""
from __future__ import annotations

import pytest

from cqrs_core.projections import lag, pause, resume, run_projection
from cqrs_core.store import head_position

from .conftest import BALANCES, LEDGER, OWNERS, deposit, open_account

pytestmark = pytest.mark.django_db(transaction=True)


def by_name() -> dict:
    return {item.name: item for item in lag()}


def test_a_paused_projection_lags_until_it_runs() -> None:
    account = open_account()
    deposit(account, "1")
    assert by_name()[BALANCES].events_behind == 0
    pause(BALANCES)
    for amount in ("2", "3", "4"):
        deposit(account, amount)

    item = by_name()[BALANCES]
    assert item.status == "paused"
    assert item.head == head_position() and item.events_behind == 3 == item.head - item.position
    assert item.seconds_behind > 0
    assert by_name()[LEDGER].events_behind == 0, "the ledger ran live"
    owners = by_name()[OWNERS]
    assert owners.mode == "immediate" and owners.events_behind == 0 and owners.seconds_behind == 0

    resume(BALANCES)
    run_projection(BALANCES)
    item = by_name()[BALANCES]
    assert item.status == "running" and item.events_behind == 0 and item.seconds_behind == 0


@pytest.mark.django_db
def test_lag_counts_every_pending_dead_letter_of_a_projection() -> None:
    from cqrs_core.models import DeadLetter

    for position in (7, 9):
        DeadLetter.objects.create(projection=BALANCES, position=position, stream_id="s", event_type="t", error="boom")
    DeadLetter.objects.create(projection=BALANCES, position=11, stream_id="s", event_type="t", error="old",
                              status=DeadLetter.Status.SKIPPED)
    assert {item.name: item.pending_dead_letters for item in lag()}[BALANCES] == 2
